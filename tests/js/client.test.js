// The JavaScript client library (client-js/) against a live server: lobby calls as promises
// with typed rejections, the schema from the join reply, entity callbacks, inputs that move the
// player (sent as binary input packets carrying the ack), interpolation, game messages both
// ways, a corrupt snapshot skipped, reconnection within the grace, and stats.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, TickwireError } from "@tickwire/client";
import { useServer, withTimeout } from "./helpers.js";

const ctx = useServer(["--drones", "10"]);
const clients = [];

async function open(options = {}) {
  const c = await connect(ctx.server.url, { reconnect: false, ...options });
  clients.push(c);
  return c;
}

/** Resolves when `register(cb)` has called back with something `pred` holds for. */
function until(what, register, pred = () => true) {
  return withTimeout(what, new Promise((resolve) => {
    const off = register((...args) => {
      if (pred(...args)) { off(); resolve(args); }
    });
  }));
}

test.after(() => { for (const c of clients) c.close(); });

test("lobby calls resolve, and the server's refusals reject with its code", async () => {
  const c = await open({ name: "lobbyist" });
  assert.ok(c.playerId > 0);
  const room = await c.create({ name: "js lib", maxPlayers: 4 });
  assert.equal(room.info.mode, "arena");
  assert.ok(room.schema.kinds.some((k) => k.name === "drone"), "the schema came with the reply");
  const listed = await c.listRooms({ mode: "arena" });
  assert.ok(listed.some((r) => r.id === room.id));
  await c.ready(true);
  await c.chat("hello");
  await c.leave();
  assert.equal(c.room, null);

  await assert.rejects(c.join("ZZZZZZ"), (e) => e instanceof TickwireError && e.code === "bad_code");
  await assert.rejects(c.join(987654), (e) => e instanceof TickwireError && e.code === "not_found");
  await assert.rejects(c.create({ name: "x", mode: "no such mode" }), (e) => e.code === "unknown_mode");
  await assert.rejects(c.chat("nobody hears"), (e) => e.code === "not_in_room");
  await assert.rejects(connect(ctx.server.url, { name: "" , reconnect: false }), (e) => e instanceof TickwireError && e.code === "bad_request");
});

test("entities appear, change and go through callbacks; inputs move the player; frames interpolate", async () => {
  const c = await open({ name: "mover" });
  const room = await c.create({ name: "moves", maxPlayers: 2 });
  const added = new Map();
  room.onAdd((e) => added.set(e.id, e));
  const removed = [];
  room.onRemove((e) => removed.push(e.id));
  let changes = 0;
  room.onChange(() => { changes += 1; });
  await until("my entity", (cb) => room.onSnapshot(cb), () => room.me !== null);
  assert.ok(added.has(room.entity), "the player's own entity was added");
  assert.ok([...added.values()].filter((e) => e.kind === "drone").length === 10);
  const start = room.me.pos;

  // NaN or out of range never leaves the page.
  assert.throws(() => room.setInput({ move: [NaN, 0], aim: 0, buttons: false }), /input.move/);
  assert.throws(() => room.setInput({ move: [2, 0], aim: 0, buttons: false }), /outside/);

  room.setInput({ move: [1, 0], aim: 0, buttons: false });
  const [moved] = await until("the player moving right", (cb) => room.listen("pos", cb), (e) => e.id === room.entity && e.pos[0] > start[0] + 20);
  assert.ok(Math.abs(moved.pos[1] - start[1]) < 1, "along x only");
  assert.ok(room.inputAck > 0, "the server acknowledged inputs");
  assert.ok(changes > 0);

  // Drawn between two snapshots: drones off the 1/16 grid the snapshots carry.
  const frame = await withTimeout("an interpolated frame", new Promise((resolve) => {
    const t = setInterval(() => {
      const f = room.frame(performance.now() / 1000);
      if (f.some((e) => e.kind === "drone" && e.pos.some((x) => Math.abs(x * 16 - Math.round(x * 16)) > 1e-6))) {
        clearInterval(t);
        resolve(f);
      }
    }, 5);
  }));
  assert.ok(frame.some((e) => e.id === room.entity));
  // The rate is measured over whole seconds.
  await withTimeout("a measured snapshot rate", new Promise((resolve) => {
    const t = setInterval(() => { if (c.stats.snapshotRate > 10) { clearInterval(t); resolve(); } }, 20);
  }));
  assert.ok(c.stats.bytes > 0 && c.stats.ping !== null);
  await c.leave();
});

test("a corrupt snapshot is reported and skipped; the stream goes on", async () => {
  const c = await open({ name: "corrupt" });
  const room = await c.create({ name: "corrupt", maxPlayers: 2 });
  await until("a snapshot", (cb) => room.onSnapshot(cb));
  const errors = [];
  room.onError((e) => errors.push(e));
  const tick = room.tick;
  room.receive(Uint8Array.from([0x02, 0, 0, 0, 0, 0x00, 0xff]), performance.now() / 1000);
  room.receive(Uint8Array.from([0x07]), performance.now() / 1000);
  room.receive({ not: "a snapshot" }, performance.now() / 1000);
  assert.equal(errors.length, 3);
  assert.equal(room.stats.corrupt, 3);
  await until("a later snapshot", (cb) => room.onSnapshot(cb), (s) => s.tick > tick + 10);
  await c.leave();
});

test("a private room by code, chat and events reach the other client", async () => {
  const host = await open({ name: "host" });
  const guest = await open({ name: "guest", encoding: "json" });
  const room = await host.create({ name: "secret", private: true, maxPlayers: 2 });
  assert.match(room.code, /^[A-Z0-9]{6}$/);
  const joined = until("the guest joining", (cb) => room.onEvent(cb), (e) => e.type === "player_joined");
  const theirs = await guest.join(room.code);
  await joined;
  const said = until("the chat", (cb) => theirs.onEvent(cb), (e) => e.type === "chat" && e.text === "psst");
  await host.chat("psst");
  await said;
  // The JSON face feeds the same entities.
  await until("a JSON snapshot with both players", (cb) => theirs.onSnapshot(cb), (s) => [...s.entities.values()].filter((e) => e.kind === "player").length === 2);
  await host.leave();
  await guest.leave();
});

test("game messages both ways on the board game, checked against its schema", async () => {
  const red = await open({ name: "red" });
  const yellow = await open({ name: "yellow" });
  const room = await red.create({ name: "board", mode: "board", maxPlayers: 2 });
  const theirs = await yellow.join(room.id);
  const turns = until("red's turn", (cb) => room.onMessage(cb), (name) => name === "your_turn");
  await red.ready(true);
  await yellow.ready(true);
  await turns;
  await assert.rejects(red.send("drop", { column: 9 }), (e) => e.code === "bad_request" && /column/.test(e.message));
  await assert.rejects(red.send("castle"), (e) => e.code === "bad_request");
  await assert.rejects(yellow.send("drop", { column: 0 }), (e) => e.code === "refused");
  const yours = until("yellow's turn", (cb) => theirs.onMessage(cb), (name) => name === "your_turn");
  await red.send("drop", { column: 3 });
  await yours;
  const [board] = await until("the red disc on the board", (cb) => theirs.onSnapshot(cb), (s) => [...s.entities.values()].some((e) => e.r0c3 === "red"));
  assert.equal([...board.entities.values()][0].turn, "yellow");
  await red.leave();
  await yellow.leave();
});

test("a cut connection reconnects and resumes the same seat", async () => {
  const c = await open({ name: "phoenix", reconnect: true });
  const room = await c.create({ name: "phoenix", maxPlayers: 2 });
  await until("my entity", (cb) => room.onSnapshot(cb), () => room.me !== null);
  const entity = room.entity;
  const back = until("the reconnect", (cb) => c.onReconnect(cb));
  // Closing the engine's transport is a cut connection to socket.io-client (it reconnects).
  c.socket.io.engine.close();
  const [resumed] = await back;
  assert.equal(resumed, room, "the same room object, its callbacks kept");
  assert.equal(room.entity, entity);
  const tick = room.tick;
  await until("snapshots again", (cb) => room.onSnapshot(cb), (s) => s.tick > tick);
  assert.equal(c.stats.reconnects, 1);
  await c.leave();
});

test("a spectator watches without a seat, acknowledging with empty input packets; the owner starts early", async () => {
  const host = await open({ name: "owner" });
  const watcher = await open({ name: "watcher" });
  const room = await host.create({ name: "watched", maxPlayers: 4, bots: 1 });
  const seen = await watcher.spectate(room.id);
  assert.equal(seen.spectator, true);
  assert.equal(seen.entity, null);
  assert.throws(() => seen.setInput({ move: [0, 0], aim: 0, buttons: false }), (e) => e.code === "not_in_room");
  // Its acks (binary input packets with no inputs) turn the full snapshots into deltas.
  await until("deltas for the spectator", (cb) => seen.onSnapshot(cb), () => seen.stats.deltas > 10);
  assert.ok(seen.entities.size >= 10);
  await assert.rejects(watcher.start(), (e) => e.code !== undefined);
  const started = until("the match starting", (cb) => seen.onEvent(cb), (e) => e.type === "match_started");
  await host.start();
  await started;
  await watcher.leave();
  await host.leave();
});
