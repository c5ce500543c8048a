// Two machines sharing one lobby through a real redis-server (started here on a loopback port
// of its own; ./scripts/test installs Debian's when missing): the JavaScript library, connected
// to one machine, joins by code a room the other hosts, and follows the server's `moved` to it
// by itself; a page that comes back with its token through the other machine is sent on too.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import net from "node:net";
import { connect, TickwireError } from "@tickwire/client";
import { startServer, withTimeout } from "./helpers.js";

let redis;
const machines = [];
const clients = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once redis-server on `port` answers a PING. */
function answers(port) {
  return withTimeout("redis-server to answer", new Promise((resolve) => {
    const attempt = () => {
      const s = net.connect(port, "127.0.0.1", () => s.write("PING\r\n"));
      s.once("data", (d) => { s.destroy(); if (String(d).startsWith("+PONG")) resolve(); else setTimeout(attempt, 50); });
      s.once("error", () => setTimeout(attempt, 50));
    };
    attempt();
  }));
}

before(async () => {
  const port = await freePort();
  redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  redis.once("error", (e) => { throw new Error(`redis-server is not installed (./scripts/test installs it): ${e.message}`); });
  await answers(port);
  const args = ["--nodes", "1", "--drones", "5", "--redis", `redis://127.0.0.1:${port}/`];
  machines.push(await startServer(args), await startServer(args));
});

after(async () => {
  for (const c of clients) c.close();
  for (const m of machines) await m.stop();
  redis?.kill();
});

async function open(machine, name) {
  const c = await connect(machine.url, { name, reconnect: false });
  clients.push(c);
  return c;
}

test("a room on one machine is joined by code through the other, and the client follows", async () => {
  const [a, b] = machines;
  const host = await open(a, "host");
  const made = await host.create({ name: "far away", maxPlayers: 4, private: true });
  const guest = await open(b, "guest");
  const room = await withTimeout("b to know the code", (async () => {
    for (;;) {
      try {
        return await guest.join(made.code);
      } catch (e) {
        if (!(e instanceof TickwireError) || e.code !== "bad_code") throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  })());
  assert.equal(room.id, made.id);
  assert.equal(new URL(guest.url).port, new URL(a.url).port, "the guest's connection moved to a");
  // Snapshots may have come before this line: the newest one is looked at too.
  await withTimeout("the guest's own entity in a snapshot from a", new Promise((resolve) => {
    const check = () => { if (room.me) resolve(); };
    room.onSnapshot(check);
    check();
  }));
  // The moved client plays on: its chat reaches the host.
  const heard = withTimeout("the host to hear the guest", new Promise((resolve) => {
    host.onEvent((e) => { if (e.type === "chat" && e.text === "over here") resolve(); });
  }));
  await guest.chat("over here");
  await heard;

  // A reloaded page comes back through b with its token, and is sent to a again.
  const token = guest.token;
  guest.close();
  const back = await connect(b.url, { name: "guest", token, reconnect: false });
  clients.push(back);
  assert.equal(back.room?.id, made.id, "back in the room on a");
  assert.equal(new URL(back.url).port, new URL(a.url).port);
});
