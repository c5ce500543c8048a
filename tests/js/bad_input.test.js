// Bad input over Socket.IO: a clear error in the ack, the socket stays usable, and nobody else
// notices; oversized payloads and floods are cut off.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useServer, connect, call, waitFor, withTimeout, room } from "./helpers.js";

let bystander;
const ctx = useServer(["--drones", "3"], {
  setup: async (c) => {
    bystander = (await c.open({ name: "bystander", encoding: "json" })).socket;
    await call(bystander, "room:create", room("calm", 8));
  },
});
const open = ctx.open;

/** Fails unless the bystander still gets fresh snapshots and answers. */
async function bystanderStillPlaying() {
  const first = await waitFor(bystander, "snapshot", () => true, "a bystander snapshot");
  const later = await waitFor(bystander, "snapshot", (s) => s.tick > first.tick + 5, "later bystander snapshots");
  assert.ok(later.tick > first.tick);
  assert.equal((await call(bystander, "rooms:list", {})).ok, true);
}

test("malformed and wrongly typed payloads get bad_request and the socket stays usable", async () => {
  const { socket } = await open({ name: "sloppy" });
  const cases = [
    ["room:create", { name: 42 }],
    ["room:create", "just a string"],
    ["room:create"],
    ["room:join", { roomId: "seven" }],
    ["room:join", {}],
    ["room:ready", { ready: "yes" }],
    ["room:chat", { text: ["not", "text"] }],
    ["room:chat", { text: "" }],
    ["rooms:list", { mode: 5 }],
    ["room:quick", { mode: "arena", extra: true }],
  ];
  for (const [event, ...data] of cases) {
    const reply = await call(socket, event, ...data);
    assert.equal(reply.ok, false, `${event} ${JSON.stringify(data)}`);
    assert.equal(reply.error.code, "bad_request", `${event}: ${JSON.stringify(reply)}`);
    assert.equal(typeof reply.error.message, "string");
  }
  assert.equal((await call(socket, "room:join", { roomId: 999999 })).error.code, "not_found");
  assert.equal((await call(socket, "room:quick", { mode: "chess" })).error.code, "unknown_mode");
  const bad = await call(socket, "input", { seq: "one", move: "left" });
  assert.equal(bad.error.code, "bad_request");
  // Still usable.
  const made = await call(socket, "room:create", room("after errors", 2));
  assert.equal(made.ok, true);
  await call(socket, "room:leave");
  await bystanderStillPlaying();
});

test("a bad handshake is refused with a connect_error", async () => {
  await assert.rejects(connect(ctx.server.url, { name: "" }), /bad_request/);
  await assert.rejects(connect(ctx.server.url, { name: "ok", extraAuth: { protocol: 99 } }), /version_mismatch/);
  await assert.rejects(connect(ctx.server.url, { name: "ok", encoding: "xml" }), /bad_request/);
  await bystanderStillPlaying();
});

test("a payload over the limit disconnects only its sender", async () => {
  const { socket } = await open({ name: "huge", transports: ["websocket"] });
  const gone = new Promise((r) => socket.once("disconnect", r));
  socket.emit("room:chat", { text: "x".repeat(100_000) }, () => {});
  await withTimeout("the oversized sender to be disconnected", gone);
  await bystanderStillPlaying();
});

test("a flood of events is refused, then cut off, without affecting others", async () => {
  const { socket } = await open({ name: "flood", transports: ["websocket"] });
  // A burst past the allowance: the excess is refused with rate_limited, the socket stays.
  const burst = await Promise.all(Array.from({ length: 40 }, () => call(socket, "rooms:list", {})));
  const refused = burst.filter((r) => r.ok === false && r.error.code === "rate_limited").length;
  assert.ok(refused >= 10, `refused ${refused} of 40`);
  assert.ok(burst.filter((r) => r.ok).length >= 20);
  assert.ok(socket.connected);
  // Keeping it up gets the socket cut off, counted once however many events it sent.
  const before = await floodDisconnects();
  const gone = new Promise((r) => socket.once("disconnect", r));
  let refusals = 0;
  const counted = (reply) => { if (reply.error?.code === "rate_limited") refusals++; };
  for (let i = 0; i < 400; i++) socket.emit("rooms:list", {}, counted);
  // A clean disconnect, after every refusal up to the limit has been answered.
  assert.equal(await withTimeout("the flooder to be cut off", gone), "io server disconnect");
  assert.ok(refused + refusals >= 200, `${refused} + ${refusals} refusals answered before the disconnect`);
  assert.equal(await floodDisconnects(), before + 1);
  await bystanderStillPlaying();
});

test("unknown events are answered bad_request and count against the flood limit", async () => {
  const { socket } = await open({ name: "prober", transports: ["websocket"] });
  const reply = await call(socket, "admin:shutdown", {});
  assert.equal(reply.ok, false);
  assert.equal(reply.error.code, "bad_request");
  assert.match(reply.error.message, /unknown event/);
  assert.equal((await call(socket, "ping")).ok, true, "still usable after one");
  const gone = new Promise((r) => socket.once("disconnect", r));
  for (let i = 0; i < 300; i++) socket.emit(`probe:${i}`, {});
  assert.equal(await withTimeout("the prober to be cut off", gone), "io server disconnect");
  await bystanderStillPlaying();
});

/** The server's tickwire_flood_disconnects_total for Socket.IO. */
async function floodDisconnects() {
  const text = await (await fetch(`${ctx.server.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("tickwire_flood_disconnects_total") && l.includes('transport="socketio"'));
  return line ? Number(line.split(" ").pop()) : 0;
}
