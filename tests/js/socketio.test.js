// tickwire's Socket.IO contract (../../shared/DESIGN.md, "External contract"), exercised with
// the official socket.io-client against a real tickwire-server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { useServer, call, waitFor, withTimeout, binaryHeader, room, botsBin } from "./helpers.js";

const ctx = useServer(["--drones", "5"]);
const open = ctx.open;

test("default transports connect by polling, then upgrade to websocket", async () => {
  const { socket, welcome } = await open({ name: "upgrader" });
  assert.equal(welcome.protocol, 8);
  assert.equal(welcome.tickRate, 60);
  assert.ok(welcome.playerId > 0);
  const engine = socket.io.engine;
  if (engine.transport.name !== "websocket") {
    assert.equal(engine.transport.name, "polling");
    await withTimeout("the websocket upgrade", new Promise((r) => engine.once("upgrade", r)));
  }
  assert.equal(engine.transport.name, "websocket");
  const list = await call(socket, "rooms:list", {});
  assert.equal(list.ok, true);
  assert.ok(Array.isArray(list.rooms));
});

test("websocket-only and polling-only clients both work", async () => {
  for (const transports of [["websocket"], ["polling"]]) {
    const { socket } = await open({ name: `only-${transports[0]}`, transports });
    assert.equal(socket.io.engine.transport.name, transports[0]);
    const made = await call(socket, "room:create", room(`only ${transports[0]}`, 2));
    assert.equal(made.ok, true, JSON.stringify(made));
    const snap = await waitFor(socket, "snapshot", () => true, `a snapshot over ${transports[0]}`);
    assert.ok(binaryHeader(snap).tick > 0);
    assert.deepEqual(await call(socket, "room:leave"), { ok: true });
  }
});

test("list, create, join by id, quick-join, ready, leave", async () => {
  const { socket: a } = await open({ name: "alice" });
  const { socket: b } = await open({ name: "bob" });
  const made = await call(a, "room:create", room("lobby test", 4));
  assert.equal(made.ok, true);
  assert.equal(made.room.name, "lobby test");
  assert.equal(made.room.maxPlayers, 4);
  assert.equal(made.room.mode, "arena");
  assert.equal(made.room.private, false);
  assert.ok(made.playerId > 0 && made.reconnectToken.length >= 16);

  const listed = await call(b, "rooms:list", { mode: "arena" });
  const mine = listed.rooms.find((r) => r.id === made.room.id);
  assert.deepEqual(Object.keys(mine).sort(), ["id", "maxPlayers", "mode", "name", "players", "private", "state"]);
  assert.equal(mine.players, 1);
  assert.equal((await call(b, "rooms:list", { mode: "nothing" })).rooms.length, 0);

  const joinedEvent = waitFor(a, "room:event", (e) => e.type === "player_joined" && e.name === "bob");
  const joined = await call(b, "room:join", { roomId: made.room.id });
  assert.equal(joined.ok, true);
  assert.equal(joined.room.players, 2);
  await joinedEvent;

  const readyEvent = waitFor(a, "room:event", (e) => e.type === "player_ready" && e.playerId === joined.playerId);
  assert.deepEqual(await call(b, "room:ready", { ready: true }), { ok: true });
  assert.equal((await readyEvent).ready, true);

  const leftEvent = waitFor(a, "room:event", (e) => e.type === "player_left" && e.playerId === joined.playerId);
  assert.deepEqual(await call(b, "room:leave"), { ok: true });
  await leftEvent;
  assert.equal((await call(b, "room:leave")).error.code, "not_in_room");

  // Quick-join picks the fullest open room of the mode: alice's holds a player, and every
  // other room these tests made is empty by now.
  const quick = await call(b, "room:quick", { mode: "arena" });
  assert.equal(quick.ok, true, JSON.stringify(quick));
  assert.equal(quick.room.mode, "arena");
  assert.ok(quick.room.players >= 1);
  assert.equal(quick.room.id, made.room.id, "the fullest open arena room is alice's");
  assert.deepEqual(await call(a, "room:leave"), { ok: true });
  assert.deepEqual(await call(b, "room:leave"), { ok: true });
});

test("chat reaches the room and only the room", async () => {
  const { socket: a } = await open({ name: "talker" });
  const { socket: b } = await open({ name: "listener" });
  const { socket: c } = await open({ name: "elsewhere" });
  const r1 = await call(a, "room:create", room("chat 1", 4));
  await call(b, "room:join", { roomId: r1.room.id });
  await call(c, "room:create", room("chat 2", 4));
  const heardByC = [];
  c.on("room:event", (e) => { if (e.type === "chat") heardByC.push(e.text); });
  const heard = waitFor(b, "room:event", (e) => e.type === "chat");
  const echoed = waitFor(a, "room:event", (e) => e.type === "chat");
  assert.deepEqual(await call(a, "room:chat", { text: "hello room" }), { ok: true });
  const msg = await heard;
  assert.equal(msg.text, "hello room");
  assert.equal(msg.name, "talker");
  assert.equal(msg.playerId, r1.playerId);
  await echoed;
  // c is in another room: a chat there proves its events flow, and a's never arrived.
  const own = waitFor(c, "room:event", (e) => e.type === "chat");
  await call(c, "room:chat", { text: "other room" });
  assert.equal((await own).text, "other room");
  assert.deepEqual(heardByC, ["other room"], "chat from another room never reached c");
  c.off("room:event");
  for (const s of [a, b, c]) await call(s, "room:leave");
});

test("JSON snapshots show the player's own entity moving after inputs", async () => {
  const { socket } = await open({ name: "mover", encoding: "json" });
  const made = await call(socket, "room:create", room("json view", 2));
  const me = made.playerId;
  const first = await waitFor(socket, "snapshot", (s) => s.entities.some((e) => e.owner === me && e.kind === "player"));
  assert.deepEqual(Object.keys(first).sort(), ["entities", "inputAck", "tick"]);
  const start = first.entities.find((e) => e.owner === me && e.kind === "player");
  assert.deepEqual(Object.keys(start).sort(), ["aim", "health", "id", "kind", "owner", "pos", "vel"]);
  const dir = start.pos[0] < 500 ? 1 : -1;
  let seq = 0;
  const timer = setInterval(() => {
    seq += 1;
    socket.emit("input", { seq, ackTick: null, move: [dir, 0], aim: 0, buttons: 0 });
  }, 1000 / 30);
  try {
    const moved = await waitFor(socket, "snapshot", (s) => {
      const e = s.entities.find((x) => x.id === start.id);
      return e && Math.abs(e.pos[0] - start.pos[0]) > 50;
    }, "the own entity to move");
    const e = moved.entities.find((x) => x.id === start.id);
    assert.equal(Math.sign(e.pos[0] - start.pos[0]), dir);
    assert.ok(moved.inputAck > 0);
    assert.ok(moved.tick > first.tick);
  } finally {
    clearInterval(timer);
  }
  await call(socket, "room:leave");
});

test("binary snapshots arrive with increasing ticks and become deltas once acked", async () => {
  const { socket } = await open({ name: "binary" });
  await call(socket, "room:create", room("binary", 2));
  const ticks = [];
  const seen = new Map();
  let deltas = 0;
  await withTimeout("30 binary snapshots", new Promise((resolve) => {
    let seq = 0;
    socket.on("snapshot", (buf) => {
      const h = binaryHeader(buf, seen);
      ticks.push(h.tick);
      if (h.hasBaseline) deltas += 1;
      seq += 1;
      socket.emit("input", { seq, ackTick: h.tick, move: [0, 0], aim: 0, buttons: 0 });
      if (ticks.length >= 30) { socket.off("snapshot"); resolve(); }
    });
  }));
  for (let i = 1; i < ticks.length; i++) assert.ok(ticks[i] > ticks[i - 1], `ticks increase: ${ticks}`);
  assert.ok(deltas > 0, "acked snapshots are followed by deltas");
  await call(socket, "room:leave");
});

test("a Socket.IO player and a Rust QUIC bot share a room", async () => {
  const { socket } = await open({ name: "mixed", encoding: "json" });
  const made = await call(socket, "room:create", room("mixed", 4));
  const botJoined = waitFor(socket, "room:event", (e) => e.type === "player_joined" && e.name.startsWith("bot-"));
  const bot = spawn(botsBin, [
    "--server", ctx.server.quic, "--cert-sha256", ctx.server.cert,
    "--join", String(made.room.id), "--bots", "1", "--duration", "4", "--json",
  ], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  bot.stdout.on("data", (d) => { out += d; });
  const exited = new Promise((r) => bot.once("exit", r));
  const joined = await botJoined;
  // The bot's avatar shows up in this player's view and moves.
  const seen = await waitFor(socket, "snapshot", (s) => s.entities.some((e) => e.owner === joined.playerId));
  const start = seen.entities.find((e) => e.owner === joined.playerId && e.kind === "player");
  await waitFor(socket, "snapshot", (s) => {
    const e = s.entities.find((x) => x.id === start.id);
    return e && (e.pos[0] !== start.pos[0] || e.pos[1] !== start.pos[1]);
  }, "the QUIC bot to move");
  const code = await withTimeout("the bot to finish", exited);
  assert.equal(code, 0);
  const report = JSON.parse(out.trim().split("\n").pop());
  assert.equal(report.connected, 1);
  assert.equal(report.errors, 0);
  assert.ok(report.snapshots > 0);
  await call(socket, "room:leave");
});
