// A server that asks for tickets, over Socket.IO with the official client: the handshake is
// refused with `unauthorized` unless auth.ticket is a JWT (HS256) the game's backend signed
// with the server's key; a good ticket names the player. The key reaches the server through
// the TICKWIRE_AUTH_KEY environment variable, as a deployment would pass it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { startServer, connect, call, waitFor, room } from "./helpers.js";

const KEY = "a key the game's backend shares with tickwire";

/** What a game's backend does: sign the player's claims with the shared key. */
function sign(claims, key = KEY) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  return `${body}.${createHmac("sha256", key).update(body).digest("base64url")}`;
}
const inAMinute = () => Math.floor(Date.now() / 1000) + 60;

let server;
const sockets = [];
before(async () => {
  process.env.TICKWIRE_AUTH_KEY = KEY;
  try {
    server = await startServer(["--drones", "0"]);
  } finally {
    delete process.env.TICKWIRE_AUTH_KEY;
  }
});
after(async () => {
  for (const s of sockets) s.close();
  await server.stop();
});

async function open(opts) {
  const c = await connect(server.url, opts);
  sockets.push(c.socket);
  return c;
}

async function refusal(opts) {
  const e = await connect(server.url, opts).then(
    ({ socket }) => { socket.close(); assert.fail("expected the handshake to be refused"); },
    (e) => e,
  );
  assert.match(e.message, /^unauthorized: /);
  return e.message;
}

test("the handshake needs a ticket signed with the server's key, in force", async () => {
  assert.match(await refusal({ name: "ada" }), /needs a ticket/);
  const expired = sign({ sub: "u1", exp: Math.floor(Date.now() / 1000) - 120 });
  assert.match(await refusal({ name: "ada", extraAuth: { ticket: expired } }), /expired/);
  const forged = sign({ sub: "u1", exp: inAMinute() }, "somebody else's key, long enough");
  assert.match(await refusal({ name: "ada", extraAuth: { ticket: forged } }), /signature/);
  const unsigned = sign({ sub: "u1", exp: inAMinute() }).replace(/\.[^.]*$/, ".");
  assert.match(await refusal({ name: "ada", extraAuth: { ticket: unsigned } }), /unauthorized/);
  const { welcome } = await open({ name: "ada", extraAuth: { ticket: sign({ sub: "u1", exp: inAMinute() }) } });
  assert.ok(welcome.playerId > 0);
});

test("a ticket's name is the name the room shows, over polling too", async () => {
  const { socket: host } = await open({
    name: "host",
    encoding: "json",
    extraAuth: { ticket: sign({ sub: "u2", name: "Host", exp: inAMinute() }) },
  });
  const created = await call(host, "room:create", room("named", 4));
  assert.equal(created.ok, true, JSON.stringify(created));
  const { socket: guest, welcome } = await open({
    name: "mallory",
    transports: ["polling"],
    extraAuth: { ticket: sign({ sub: "u3", name: "Ada", exp: inAMinute() }) },
  });
  const joined = waitFor(host, "room:event", (e) => e.type === "player_joined" && e.playerId === welcome.playerId, "Ada's arrival");
  assert.equal((await call(guest, "room:join", { roomId: created.room.id })).ok, true);
  assert.equal((await joined).name, "Ada");
});
