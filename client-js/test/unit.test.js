// The library's pure parts, stepped without a server or a clock: the render clock, blending,
// what a value may be, the input packet's bytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { RenderClock, blend, checkValues, encodeInputPacket, inputSlots, TickwireError } from "../src/index.js";

const move = { name: "move", dims: 2, type: "fixed", step: { num: 1, den: 4096 }, minQ: -4096, count: 8193 };
const aim = { name: "aim", dims: 1, type: "angle", bits: 16 };
const fire = { name: "buttons", dims: 1, type: "bool" };
const input = [move, aim, fire];

test("the render clock shows the world one interval and a tick behind, and eases instead of jumping", () => {
  const clock = new RenderClock();
  assert.equal(clock.advance(0), null, "nothing to show before a snapshot");
  // Snapshots every 2 ticks at 60 Hz (30 Hz), arriving on time.
  for (let k = 0; k <= 60; k++) clock.observe(1000 + 2 * k, 60, k / 30);
  const at = clock.advance(2);
  // Newest is tick 1120 at t = 2; delay ≈ 1/30 + 1/60 s ≈ 3 ticks.
  assert.ok(at > 1115 && at < 1119, `shows tick ${at}`);
  // A tenth of a frame's worth of error is all it corrects at once.
  clock.offset += 0.05;
  const next = clock.advance(2 + 1 / 60);
  assert.ok(next - at > 0.99 && next - at < 1.11, `moved ${next - at} ticks in one 60 Hz frame`);
  // A quarter second off resets.
  clock.offset += 1;
  assert.ok(clock.advance(2 + 2 / 60) - next > 50);
});

test("blend interpolates fixed fields, turns angles the short way and holds the rest", () => {
  const kind = { fields: [
    { name: "pos", dims: 2, type: "fixed" },
    { name: "aim", dims: 1, type: "angle" },
    { name: "health", dims: 1, type: "int" },
  ] };
  const a = { id: 1, kind: "drone", pos: [0, 10], aim: 3.0, health: 100 };
  const b = { id: 1, kind: "drone", pos: [10, 20], aim: -3.0, health: 75 };
  const mid = blend(kind, a, b, 0.5);
  assert.deepEqual(mid.pos, [5, 15]);
  assert.ok(Math.abs(Math.abs(mid.aim) - Math.PI) < 1e-9, `aim ${mid.aim} goes through π, not 0`);
  assert.equal(mid.health, 100);
  assert.equal(blend(kind, a, b, 1).health, 75);
});

test("values outside their declaration are refused, naming the field", () => {
  const ok = checkValues("input", input, { move: [0.5, -1], aim: 7, buttons: true });
  assert.deepEqual(ok, { move: [0.5, -1], aim: 7, buttons: true });
  for (const [values, what] of [
    [{ move: [NaN, 0], aim: 0, buttons: false }, /input.move: NaN/],
    [{ move: [1.5, 0], aim: 0, buttons: false }, /input.move: 1.5 is outside \[-1, 1\]/],
    [{ move: [0], aim: 0, buttons: false }, /input.move: needs an array of 2/],
    [{ move: [0, 0], aim: Infinity, buttons: false }, /input.aim/],
    [{ move: [0, 0], aim: 0 }, /input.buttons: missing/],
    [{ move: [0, 0], aim: 0, buttons: false, jump: 1 }, /no field named jump/],
    [{ move: [0, 0], aim: 0, buttons: "yes" }, /input.buttons/],
  ]) {
    assert.throws(() => checkValues("input", input, values), (e) => e instanceof TickwireError && e.code === "bad_request" && what.test(e.message));
  }
  const column = { name: "column", dims: 1, type: "int", min: 0, max: 6 };
  assert.throws(() => checkValues("message drop", [column], { column: 1.5 }), /message drop.column/);
  assert.throws(() => checkValues("message drop", [column], { column: 7 }), /0..=6/);
});

test("the input packet is 0x01 and bincode InputBatch with varints", () => {
  const slots = inputSlots(input, { move: [1, -1], aim: 0, buttons: true });
  assert.deepEqual(slots, [8192, 0, 0, 1]);
  const bytes = encodeInputPacket(300, [{ seq: 7, slots }]);
  // 0x01, Some(300) = 1 251 44 1, one input, seq 7, 4 slots: 8192 = 251 0 32, 0, 0, 1.
  assert.deepEqual([...bytes], [1, 1, 251, 44, 1, 1, 7, 4, 251, 0, 32, 0, 0, 1]);
  assert.deepEqual([...encodeInputPacket(null, [])], [1, 0, 0]);
  assert.deepEqual([...encodeInputPacket(70000, [])], [1, 1, 252, 0x70, 0x11, 0x01, 0x00, 0]);
});

test("the heading from atan2 equals PROTOCOL.md's integer CORDIC, at rounding boundaries too", async () => {
  const { heading, headingCordic } = await import("../src/decoder.js");
  let seed = 12345;
  const random = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
  let checked = 0;
  for (const bits of [1, 6, 10, 16, 24]) {
    for (let i = 0; i < 20000; i++) {
      const r = 2 ** Math.floor(random() * 31);
      const x = Math.round((random() * 2 - 1) * r);
      const y = Math.round((random() * 2 - 1) * r);
      assert.equal(heading(x, y, bits), headingCordic(x, y, bits), `(${x}, ${y}) at ${bits} bits`);
      checked += 1;
    }
    // Points as near as integers get to the half-step boundaries, where the two could differ.
    for (let k = 0; k < 2 ** Math.min(bits, 10); k++) {
      for (const radius of [1000, 65536, 1e6, 2 ** 31 - 1]) {
        const angle = (2 * Math.PI * (k + 0.5)) / 2 ** bits;
        const x = Math.round(radius * Math.cos(angle));
        const y = Math.round(radius * Math.sin(angle));
        assert.equal(heading(x, y, bits), headingCordic(x, y, bits), `(${x}, ${y}) at ${bits} bits`);
        checked += 1;
      }
    }
  }
  for (const [x, y] of [[1, 0], [0, 1], [-1, 0], [0, -1], [1, 1], [-5, -5], [2 ** 31, -1], [-(2 ** 31), 1]]) {
    assert.equal(heading(x, y, 10), headingCordic(x, y, 10), `(${x}, ${y})`);
  }
  assert.equal(heading(0, 0, 10), null);
  assert.ok(checked > 100000);
});

test("past the newest snapshot a room carries entities along their velocity, for 100 ms at most", async () => {
  const { Room } = await import("../src/room.js");
  const schema = { kinds: [{ name: "drone", fields: [
    { name: "pos", dims: 2, type: "fixed", step: { num: 1, den: 16 }, minQ: 0, count: 16384, predict: { type: "integrate", from: 1 } },
    { name: "vel", dims: 2, type: "fixed", step: { num: 1, den: 8 }, minQ: -2048, count: 4096 },
  ] }] };
  const joined = { room: { id: 1, name: "r", mode: "test" }, playerId: 1, entity: 0, code: null };
  const room = new Room(joined, schema, { spectator: true, tickRate: 60, send: () => {} });
  const drone = (pos) => ({ id: 1, kind: "drone", owner: null, pos, vel: [30, 0] });
  // Two snapshots two ticks apart, on time: the clock shows 3 ticks (50 ms) behind the newest.
  room.receive({ tick: 100, inputAck: 0, entities: [drone([100, 100])] }, 0);
  room.receive({ tick: 102, inputAck: 0, entities: [drone([101, 100])] }, 2 / 60);
  const x = (now) => room.frame(now)[0].pos[0];
  const close = (a, b) => Math.abs(a - b) < 1e-6;
  // 0.1 s later the clock is at tick 103: a tick past the newest, 30 u/s × 1/60 s on.
  assert.ok(close(x(0.1), 101.5), `${x(0.1)}`);
  // Much later: 100 ms at most, then the drone waits.
  room.clock.reset();
  room.clock.observe(102, 60, 2 / 60);
  assert.ok(close(x(1), 104), `${x(1)}`);
});
