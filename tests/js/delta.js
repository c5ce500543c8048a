// A second implementation of the snapshot packet and its delta body (format 3), written from
// docs/PROTOCOL.md alone, so the tests can hold that document to "precise enough to write a
// decoder from". A browser client can start from it. Entities stay in quantised integers
// (PROTOCOL.md, Quantisation), so a decoded world compares exactly with the server's.

const MAX_BASELINE_AGE = 128;
const MAX_ENTITIES = 65536;
const POS_MAX = 16383;
const VEL_REST = 8192;
const KINDS = ["player", "drone", "projectile"];
const NEIGHBOURS = [[-1, -1], [0, -1], [1, -1], [-1, 0], [1, 0], [-1, 1], [0, 1], [1, 1]];

/** Reads bits least-significant first, as docs/PROTOCOL.md packs them. */
export class BitReader {
  constructor(bytes) { this.bytes = bytes; this.pos = 0; }
  bit() {
    if (this.pos >= this.bytes.length * 8) throw new Error("out of bits");
    const b = (this.bytes[this.pos >> 3] >> (this.pos & 7)) & 1;
    this.pos += 1;
    return b;
  }
  bits(n) { let v = 0; for (let i = 0; i < n; i++) v += this.bit() * 2 ** i; return v; }
  signed(n) { const v = this.bits(n); return v >= 2 ** (n - 1) ? v - 2 ** n : v; }
  gamma() {
    let len = 0;
    while (!this.bit()) {
      len += 1;
      if (len > 32) throw new Error("gamma code too long");
    }
    return 2 ** len + this.bits(len);
  }
  ugamma() { return this.gamma() - 1; }
  /** rice_k, refusing values over `max` as soon as the leading zeros say so. */
  rice(k, max) {
    let q = 0;
    while (!this.bit()) {
      q += 1;
      if (q * 2 ** k > max) throw new Error("index past the baseline");
    }
    const v = q * 2 ** k + this.bits(k);
    if (v > max) throw new Error("index past the baseline");
    return v;
  }
}

/** Where a velocity carries a position from tick `from` to tick `to` (PROTOCOL.md, Prediction). */
export function predict(pos, vel, from, to, rate) {
  if (rate === 0) return pos;
  const path = (t) => {
    const n = (vel - VEL_REST) * 2 * t;
    return Math.sign(n) * Math.floor((2 * Math.abs(n) + rate) / (2 * rate));
  };
  return Math.min(Math.max(pos + path(to) - path(from), 0), POS_MAX);
}

function advance(e, from, to, rate) {
  return { ...e, pos: [predict(e.pos[0], e.vel[0], from, to, rate), predict(e.pos[1], e.vel[1], from, to, rate)] };
}

function inRange(v, max, what) {
  if (v < 0 || v > max) throw new Error(`${what} out of range`);
  return v;
}

function readAbsolutePosition(r) {
  if (r.bit()) return [inRange(r.bits(10) * 16, POS_MAX, "position"), inRange(r.bits(10) * 16, POS_MAX, "position")];
  return [r.bits(14), r.bits(14)];
}

function readChanges(r, p) {
  const mask = r.bit() ? 1 : r.bits(4);
  const e = { ...p };
  if (mask & 1) {
    const cls = r.bits(2);
    let d = null;
    if (cls === 0) d = NEIGHBOURS[r.bits(3)];
    else if (cls === 1) d = [r.signed(3), r.signed(3)];
    else if (cls === 2) d = [r.signed(7), r.signed(7)];
    e.pos = d === null
      ? readAbsolutePosition(r)
      : [inRange(p.pos[0] + d[0], POS_MAX, "position"), inRange(p.pos[1] + d[1], POS_MAX, "position")];
  }
  if (mask & 2) {
    e.vel = r.bit()
      ? [r.bits(14), r.bits(14)]
      : [inRange(p.vel[0] + r.signed(6), POS_MAX, "velocity"), inRange(p.vel[1] + r.signed(6), POS_MAX, "velocity")];
  }
  if (mask & 4) e.aim = r.bit() ? r.bits(10) : (((p.aim + r.signed(6)) % 1024) + 1024) % 1024;
  if (mask & 8) e.health = r.bits(8);
  return e;
}

function readFull(r, id) {
  const kind = KINDS[r.bits(2)];
  if (kind === undefined) throw new Error("unknown entity kind");
  const owner = r.bit() ? r.ugamma() : null;
  const pos = readAbsolutePosition(r);
  const vel = r.bit() ? [VEL_REST, VEL_REST] : [r.bits(14), r.bits(14)];
  return { id, kind, owner, pos, vel, aim: r.bits(10), health: r.bits(8) };
}

/** Splits a snapshot packet (`0x02` + input ack + body) into {inputAck, body}. */
export function splitPacket(packet) {
  const bytes = new Uint8Array(packet);
  if (bytes[0] !== 0x02 || bytes.length < 5) throw new Error("not a snapshot packet");
  const inputAck = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(1, true);
  return { inputAck, body: bytes.subarray(5) };
}

/**
 * Reads a body's header: {full: true, tick, tickRate} or {full: false, baselineLow, age}.
 */
export function readHeader(r) {
  if (r.bit()) return { full: true, tick: r.bits(32), tickRate: r.bits(8) };
  const baselineLow = r.bits(8);
  const age = r.ugamma() + 1;
  if (age > MAX_BASELINE_AGE) throw new Error("baseline older than allowed");
  return { full: false, baselineLow, age };
}

/**
 * Decodes one delta body against `baseline` ({tick, tickRate, entities} or null for a full
 * snapshot). Returns {tick, tickRate, entities, shape}: entities sorted by id; shape says how
 * the body listed its changes ({bitmap, changed, removed, spawned}).
 */
export function decodeBody(body, baseline) {
  const r = new BitReader(body);
  const header = readHeader(r);
  let tick, tickRate, base = [];
  if (header.full) {
    ({ tick, tickRate } = header);
  } else {
    const low = header.baselineLow;
    if (!baseline || (baseline.tick & 0xff) !== low) throw new Error(`baseline ${low} not held`);
    tick = baseline.tick + header.age;
    tickRate = baseline.tickRate;
    base = baseline.entities;
  }

  const removed = [];
  if (r.bit()) {
    const count = r.ugamma() + 1;
    if (count > base.length) throw new Error("too many removals");
    let next = 0;
    for (let i = 0; i < count; i++) { const id = next + r.ugamma(); removed.push(id); next = id + 1; }
  }

  const changedAt = [];
  const listedByBitmap = r.bit() === 1;
  if (listedByBitmap) {
    for (let i = 0; i < base.length; i++) if (r.bit()) changedAt.push(i);
  } else {
    const count = r.ugamma();
    if (count > base.length) throw new Error("too many changes");
    const q = Math.floor((11 * base.length) / (16 * Math.max(count, 1)));
    const k = q === 0 ? 0 : Math.floor(Math.log2(q));
    let next = 0;
    for (let i = 0; i < count; i++) {
      const idx = next + r.rice(k, base.length - next - 1);
      changedAt.push(idx);
      next = idx + 1;
    }
  }
  const entities = base.map((e) => advance(e, baseline?.tick ?? tick, tick, tickRate));
  for (const idx of changedAt) entities[idx] = readChanges(r, entities[idx]);

  // Removed ids must be in the baseline and not also changed (linear in the baseline's size).
  const gone = new Set(removed);
  if (gone.size > 0) {
    const changed = new Set(changedAt);
    let found = 0;
    base.forEach((e, idx) => {
      if (!gone.has(e.id)) return;
      if (changed.has(idx)) throw new Error(`removes and changes ${e.id}`);
      found += 1;
    });
    if (found !== gone.size) throw new Error("removes an entity the baseline does not hold");
  }
  const kept = entities.filter((e) => !gone.has(e.id));

  const spawned = new Map();
  const count = r.ugamma();
  let next = 0;
  for (let i = 0; i < count; i++) {
    const id = next + r.ugamma();
    next = id + 1;
    spawned.set(id, readFull(r, id));
  }
  const all = kept.filter((e) => !spawned.has(e.id)).concat([...spawned.values()]);
  all.sort((a, b) => a.id - b.id);
  if (all.length > MAX_ENTITIES) throw new Error("too many entities");
  const shape = { bitmap: listedByBitmap, changed: changedAt.length, removed: removed.length, spawned: count };
  return { tick, tickRate, entities: all, shape };
}

/**
 * A client's side of the snapshot stream: decodes snapshot packets (`0x02` + input ack + body)
 * in arrival order, keeping every decoded snapshot up to 128 ticks older than the newest so any
 * baseline the server may pick is held.
 */
export class SnapshotStream {
  constructor() { this.held = []; }
  get current() { return this.held[this.held.length - 1] ?? null; }

  /** Returns {inputAck, snapshot, delta} for a newer snapshot, or null for a stale one. */
  apply(packet) {
    const { inputAck, body } = splitPacket(packet);
    const header = readHeader(new BitReader(body));
    const delta = !header.full;
    const baseline = delta ? this.held.findLast((s) => (s.tick & 0xff) === header.baselineLow) ?? null : null;
    const snapshot = decodeBody(body, baseline);
    if (this.current && snapshot.tick <= this.current.tick) return null;
    this.held.push(snapshot);
    this.held = this.held.filter((s) => s.tick + MAX_BASELINE_AGE >= snapshot.tick);
    return { inputAck, snapshot, delta };
  }
}
