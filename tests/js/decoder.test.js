// The snapshot format against a second implementation: client-js/src/decoder.js decodes the binary
// snapshots from docs/PROTOCOL.md alone, with the schema the join reply carries, and must agree
// with the JSON view the server sends of the same ticks: a live room of 200 wandering drones
// (most deltas list their few changed entities by Rice-coded gaps), players who turn, aim, join
// and leave.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useServer, call, withTimeout, room } from "./helpers.js";
import { SnapshotStream, compileSchema, decodeBody, fromView } from "@tickwire/client/decoder";

const ctx = useServer(["--drones", "200"]);

// Waits, woken by `check` from the snapshot handlers, until a condition holds (or `failed()`).
function waiting(failed) {
  const waiters = [];
  const until = (what, cond) => withTimeout(what, new Promise((resolve) => waiters.push({ cond, resolve })));
  const check = () => {
    for (const w of waiters.splice(0)) {
      if (failed() || w.cond()) w.resolve();
      else waiters.push(w);
    }
  };
  return { until, check };
}
const open = ctx.open;

test("the worked example in PROTOCOL.md decodes to what it says", async () => {
  const { socket } = await open({ name: "example" });
  const made = await call(socket, "room:create", room("example", 2));
  await call(socket, "room:leave");
  const s = compileSchema(made.schema);
  const drone = s.kinds.findIndex((k) => k.name === "drone");
  // pos (x·16, 160), at rest (velocity slot 8192 is 0 u/s), aim 0, health 100.
  const atRest = (i) => ({ id: i, kind: drone, owner: null, slots: [i * 16, 160, 8192, 8192, 0, 100] });
  const baseline = { tick: 1000, tickRate: 60, entities: Array.from({ length: 100 }, (_, k) => atRest(k + 1)) };
  const body = Uint8Array.from([0xd0, 0xa3, 0xe5, 0xe9, 0xd3, 0x27]);
  const out = decodeBody(s, body, baseline);
  assert.equal(out.tick, 1001);
  assert.deepEqual(out.shape, { bitmap: false, changed: 1, removed: 0, spawned: 0 });
  const expected = baseline.entities.map((e) => (e.id === 38 ? { ...e, slots: [500 * 16, 250 * 16, 8192, 8192, 0, 100] } : e));
  assert.deepEqual(out.entities, expected);
  // One byte short is an error, not a different world.
  assert.throws(() => decodeBody(s, body.subarray(0, 5), baseline), /out of bits/);
});

test("binary snapshots decoded by a decoder written from PROTOCOL.md equal the JSON view of the same ticks", async () => {
  const { socket: bin } = await open({ name: "binary-view" });
  const made = await call(bin, "room:create", room("two views", 4));
  const { socket: json } = await open({ name: "json-view", encoding: "json" });
  assert.equal((await call(json, "room:join", { roomId: made.room.id })).ok, true);

  // The binary player decodes with client-js/src/decoder.js, acks every snapshot, runs in a circle
  // while sweeping its aim and holds fire now and then. The JSON player is sent the server's
  // own decoding of the same ticks.
  assert.ok(made.schema?.kinds?.length > 0, "the join reply carries the room's schema");
  const stream = new SnapshotStream(made.schema);
  const decoded = new Map();
  const viewed = new Map();
  let deltas = 0;
  let seq = 0;
  const seen = { listed: 0, bitmap: 0, removed: 0, spawned: 0 };
  let failure = null;
  const common = () => [...decoded.keys()].filter((t) => viewed.has(t));
  const { until, check } = waiting(() => failure);
  bin.on("snapshot", (buf) => {
    try {
      const out = stream.apply(buf);
      if (!out) return;
      if (out.delta) {
        deltas += 1;
        const { bitmap, changed, removed, spawned } = out.snapshot.shape;
        if (changed > 0) seen[bitmap ? "bitmap" : "listed"] += 1;
        seen.removed += removed;
        seen.spawned += spawned;
      }
      decoded.set(out.snapshot.tick, out.snapshot.entities);
      seq += 1;
      const a = seq / 8;
      bin.emit("input", {
        seq, ackTick: out.snapshot.tick, move: [Math.cos(a), Math.sin(a)],
        aim: Math.atan2(Math.sin(a * 3), Math.cos(a * 3)), buttons: seq % 16 < 4 ? 1 : 0,
      });
    } catch (e) {
      failure = e;
    }
    check();
  });
  json.on("snapshot", (s) => { viewed.set(s.tick, s.entities); check(); });
  // A third player joins and leaves while the stream runs: its entity is spawned, then removed.
  await until("30 deltas", () => deltas >= 30);
  const { socket: third } = await open({ name: "passer-by", encoding: "json" });
  assert.equal((await call(third, "room:join", { roomId: made.room.id })).ok, true);
  const joinedAt = deltas;
  await until("10 more deltas", () => deltas >= joinedAt + 10);
  await call(third, "room:leave");
  await until("120 deltas decoded and seen by both players", () => deltas >= 120 && common().length >= 120);
  bin.off("snapshot");
  json.off("snapshot");
  assert.equal(failure, null, `decoding failed: ${failure}`);
  console.log("delta shapes decoded:", JSON.stringify(seen));
  assert.ok(seen.listed > 0, "changed entities listed by Rice-coded gaps");
  assert.ok(seen.spawned > 0 && seen.removed > 0, "an entity spawned and one removed");

  // JSON carries dequantised values; quantise them back with the schema (PROTOCOL.md, Schemas).
  const ticks = common().sort((x, y) => x - y);
  for (const t of ticks) {
    assert.deepEqual(decoded.get(t), viewed.get(t).map((v) => fromView(stream.schema, v)), `tick ${t}`);
  }
  // The compared ticks were not a still world.
  const first = decoded.get(ticks[0]);
  const last = decoded.get(ticks[ticks.length - 1]);
  assert.ok(first.length > 2, "the room has drones");
  assert.notDeepEqual(first.map((e) => e.slots), last.map((e) => e.slots), "entities moved");
  for (const s of [bin, json]) await call(s, "room:leave");
});

test("the same decoder, knowing no game, follows a room of another schema: the standard workload", async () => {
  const { socket: bin } = await open({ name: "std-binary" });
  const made = await call(bin, "room:create", room("standard views", 4, { mode: "standard" }));
  assert.equal(made.ok, true);
  assert.deepEqual(made.schema.kinds.map((k) => k.name), ["player", "drone"]);
  const { socket: json } = await open({ name: "std-json", encoding: "json" });
  assert.equal((await call(json, "room:join", { roomId: made.room.id })).ok, true);
  const stream = new SnapshotStream(made.schema);
  const decoded = new Map();
  const viewed = new Map();
  const seen = { inverted: 0, deltas: 0 };
  let failure = null;
  let seq = 0;
  const { until, check } = waiting(() => failure);
  const common = () => [...decoded.keys()].filter((t) => viewed.has(t));
  bin.on("snapshot", (buf) => {
    try {
      const out = stream.apply(buf);
      if (!out) return;
      if (out.delta) {
        seen.deltas += 1;
        // Every drone changes every tick: more than half the baseline is listed.
        if (2 * out.snapshot.shape.changed > out.snapshot.entities.length) seen.inverted += 1;
      }
      decoded.set(out.snapshot.tick, out.snapshot.entities);
      seq += 1;
      const a = seq / 30;
      // The standard mode's declared input: a step {dx, dy} of about 4 units.
      bin.emit("input", { seq, ackTick: out.snapshot.tick, dx: 4 * Math.cos(a), dy: 4 * Math.sin(a) });
    } catch (e) {
      failure = e;
    }
    check();
  });
  json.on("snapshot", (s) => { viewed.set(s.tick, s.entities); check(); });
  await until("60 deltas decoded and seen by both players", () => seen.deltas >= 60 && common().length >= 60);
  bin.off("snapshot");
  json.off("snapshot");
  assert.equal(failure, null, `decoding failed: ${failure}`);
  assert.ok(seen.inverted > 0, "deltas that list most of the room");
  for (const t of common()) {
    assert.deepEqual(decoded.get(t), viewed.get(t).map((v) => fromView(stream.schema, v)), `tick ${t}`);
  }
  const ticks = common().sort((x, y) => x - y);
  const drones = (t) => decoded.get(t).filter((e) => e.kind === 1);
  assert.equal(drones(ticks[0]).length, 50, "50 drones");
  assert.notDeepEqual(drones(ticks[0]).map((e) => e.slots), drones(ticks[ticks.length - 1]).map((e) => e.slots));
  for (const s of [bin, json]) await call(s, "room:leave");
});
