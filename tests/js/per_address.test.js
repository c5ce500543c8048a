// One address's allowances over Socket.IO with the official client: connections at once, and
// wrong private-room codes however many sockets they come from.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useServer, connect, call, withTimeout, room } from "./helpers.js";

// Two connections at once, a new one a second; wrong codes are the server's fixed 10.
const ctx = useServer(["--drones", "0", "--per-address-connections", "2"]);

/** Connects once the address has room for it; only `rate_limited` refusals are waited out. */
function admitted(name) {
  return withTimeout(`${name} admitted`, (async () => {
    for (;;) {
      try {
        return (await connect(ctx.server.url, { name })).socket;
      } catch (e) {
        assert.match(e.message, /rate_limited/);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  })());
}

test("a third socket from one address is refused until one of two closes", async () => {
  const polling = (await connect(ctx.server.url, { name: "p", transports: ["polling"] })).socket;
  const ws = (await connect(ctx.server.url, { name: "w", transports: ["websocket"] })).socket;
  await assert.rejects(connect(ctx.server.url, { name: "third" }), /rate_limited: too many connections from this address/);
  polling.close();
  // Admitted once the server has seen the socket go and the address has a new connection's
  // allowance again.
  const third = await admitted("third");
  third.close();
  ws.close();
});

test("wrong room codes from fresh sockets run out after ten", async () => {
  const owner = await admitted("owner");
  const made = await call(owner, "room:create", room("secret", 4, { private: true }));
  assert.equal(made.ok, true);
  const wrong = made.code === "ZZZZZZ" ? "YYYYYY" : "ZZZZZZ";
  const answers = [];
  for (let i = 0; i < 4; i++) {
    const guesser = await admitted(`guesser ${i}`);
    for (let k = 0; k < 3; k++) answers.push((await call(guesser, "room:join", { code: wrong })).error);
    guesser.close();
  }
  assert.deepEqual(answers.slice(0, 10).map((e) => e.code), Array(10).fill("bad_code"));
  assert.deepEqual(answers.slice(10).map((e) => e.code), ["rate_limited", "rate_limited"]);
  assert.match(answers[11].message, /wrong room codes/);
  // Other calls from the address go on.
  assert.equal((await call(owner, "rooms:list", {})).ok, true);
  owner.close();
});
