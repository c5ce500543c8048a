// A second implementation of the snapshot packet and its delta body (format 4), written from
// docs/PROTOCOL.md alone, so the tests can hold that document to "precise enough to write a
// decoder from". It knows no game: it compiles the schema a join reply carries (its JSON form)
// and decodes any room's snapshots with it. Entities stay in quantised slots (PROTOCOL.md,
// "Schemas"), so a decoded world compares exactly with the server's; `view` dequantises.

const MAX_BASELINE_AGE = 128;
const MAX_ENTITIES = 65536;
const ESCAPE = 16;
const MAX_RICE = 24;
const ATAN_TABLE = [
  536870912, 316933406, 167458907, 85004756, 42667331, 21354465, 10679838, 5340245, 2670163,
  1335087, 667544, 333772, 166886, 83443, 41722, 20861, 10430, 5215, 2608, 1304, 652, 326, 163,
  81, 41, 20, 10, 5,
];
const TURN = 2 ** 32;

/** Reads bits least-significant first, as docs/PROTOCOL.md packs them. */
export class BitReader {
  constructor(bytes) { this.bytes = bytes; this.pos = 0; }
  remaining() { return this.bytes.length * 8 - this.pos; }
  bit() {
    if (this.pos >= this.bytes.length * 8) throw new Error("out of bits");
    const b = (this.bytes[this.pos >> 3] >> (this.pos & 7)) & 1;
    this.pos += 1;
    return b;
  }
  /** Zero bits before a one (the one read too), or `limit` when that many zeros come first. */
  unary(limit) {
    const bytes = this.bytes;
    let pos = this.pos;
    let q = 0;
    for (;;) {
      if (pos >= bytes.length * 8) throw new Error("out of bits");
      const b = (bytes[pos >> 3] >> (pos & 7)) & 1;
      pos += 1;
      if (b) break;
      q += 1;
      if (q === limit) break;
    }
    this.pos = pos;
    return q;
  }
  bits(n) {
    // Up to 24 bits a byte at a time; wider (or past the end, to throw there) bit by bit.
    if (n <= 24 && this.pos + n <= this.bytes.length * 8) {
      let v = 0;
      let got = 0;
      while (got < n) {
        const off = this.pos & 7;
        const take = Math.min(8 - off, n - got);
        v |= ((this.bytes[this.pos >> 3] >> off) & ((1 << take) - 1)) << got;
        got += take;
        this.pos += take;
      }
      return v;
    }
    let v = 0;
    for (let i = 0; i < n; i++) v += this.bit() * 2 ** i;
    return v;
  }
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

const bitsFor = (count) => (count <= 1 ? 0 : (count - 1).toString(2).length);

/** The Rice shift for `count` listed among `len`: ⌊log2(⌊11·len / (16·max(count, 1))⌋)⌋, 0 for 0. */
function riceShift(len, count) {
  const q = Math.floor((11 * len) / (16 * Math.max(count, 1)));
  return q === 0 ? 0 : q.toString(2).length - 1;
}

/** `count` ascending positions below `len`, as Rice-coded gaps. */
function readGaps(r, len, count) {
  const k = riceShift(len, count);
  const listed = [];
  let next = 0;
  for (let i = 0; i < count; i++) {
    const idx = next + r.rice(k, len - next - 1);
    listed.push(idx);
    next = idx + 1;
  }
  return listed;
}

/** `num / den` rounded half away from zero, exactly (`den` > 0). */
function roundDiv(num, den) {
  const a = 2 * Math.abs(num) + den;
  const b = 2 * den;
  if (Number.isSafeInteger(a) && Number.isSafeInteger(b * (a / b + 1))) {
    let q = Math.floor(a / b);
    while (q * b > a) q -= 1;
    while ((q + 1) * b <= a) q += 1;
    return Math.sign(num) * q;
  }
  const q = (2n * BigInt(Math.abs(num)) + BigInt(den)) / (2n * BigInt(den));
  return Math.sign(num) * Number(q);
}

/**
 * The direction of (x, y) in `2^bits` steps of a turn, exactly as PROTOCOL.md's integer CORDIC
 * (`headingCordic`) gives it, but from `Math.atan2` where that cannot round differently: the
 * CORDIC's angle is within 3·10⁻⁸ of a turn of the true one (28 steps of at most 2⁻²⁸ rad each
 * from truncation, 7·10⁻⁹ rad left over, 14 units of 2⁻³² in the table), so a true angle
 * farther than that from a rounding boundary rounds the same. Nearer ones (about 0.1% at 10
 * bits, all at 24) take the CORDIC.
 */
export function heading(x, y, bits) {
  if (x === 0 && y === 0) return null;
  const steps = 2 ** bits;
  let t = Math.atan2(y, x) / (2 * Math.PI);
  if (t < 0) t += 1;
  const at = t * steps;
  const frac = at - Math.floor(at);
  if (Math.abs(frac - 0.5) > 4e-7 * steps + 1e-6) {
    return Math.floor(at + 0.5) % steps;
  }
  return headingCordic(x, y, bits);
}

/** PROTOCOL.md's Heading: the integer CORDIC, step for step. */
export function headingCordic(x, y, bits) {
  const m = Math.max(Math.abs(x), Math.abs(y));
  if (m === 0) return null;
  let base = 0;
  if (x < 0) { x = -x; y = -y; base = TURN / 2; }
  const top = m < 2 ** 32 ? 31 - Math.clz32(m) : m.toString(2).length - 1;
  const shift = 28 - top;
  if (shift >= 0) { x *= 2 ** shift; y *= 2 ** shift; } else { x = Math.floor(x / 2 ** -shift); y = Math.floor(y / 2 ** -shift); }
  // Scaled so the larger is in [2^28, 2^29): x, y and z stay below 2^31 through every step, so
  // `>>` (an arithmetic shift of an int32) is the floor division by 2^i the document asks for.
  let z = 0;
  for (let i = 0; i < ATAN_TABLE.length; i++) {
    const dx = y >> i;
    const dy = x >> i;
    if (y > 0) { x += dx; y -= dy; z += ATAN_TABLE[i]; } else { x -= dx; y += dy; z -= ATAN_TABLE[i]; }
  }
  const turns = (((base + z) % TURN) + TURN) % TURN;
  return Math.floor((turns + 2 ** (31 - bits)) / 2 ** (32 - bits)) % 2 ** bits;
}

/** A field type's slot bounds and absolute width. */
function typeInfo(f) {
  switch (f.type) {
    case "fixed": return { max: f.count - 1, bits: bitsFor(f.count), zero: Math.min(Math.max(-f.minQ, 0), f.count - 1), residual: true };
    case "int": return { max: f.max - f.min, bits: bitsFor(f.max - f.min + 1), zero: Math.min(Math.max(0, f.min), f.max) - f.min, residual: true };
    case "angle": return { max: 2 ** f.bits - 1, bits: f.bits, zero: 0, residual: true };
    case "enum": return { max: f.variants.length - 1, bits: bitsFor(f.variants.length), zero: 0, residual: false };
    case "bool": return { max: 1, bits: 1, zero: 0, residual: false };
    case "entity": return { max: 2 ** 32 - 1, bits: 32, zero: 0, residual: false };
    default: throw new Error(`unknown field type ${f.type}`);
  }
}

/** Whole units of a fixed-point field in steps of 1/den: {den, lowest, bits}, or null. */
function wholeUnits(f) {
  if (f.type !== "fixed" || f.step.num !== 1 || f.step.den < 2) return null;
  const den = f.step.den;
  const mod = ((f.minQ % den) + den) % den;
  const lowest = Math.floor(f.minQ / den) + (mod !== 0 ? 1 : 0);
  const highest = Math.floor((f.minQ + f.count - 1) / den);
  return highest >= lowest ? { den, lowest, bits: bitsFor(highest - lowest + 1) } : null;
}

const gcd = (a, b) => (b === 0 ? Math.max(a, 1) : gcd(b, a % b));

/** Compiles a schema's JSON form into what decoding needs. */
export function compileSchema(schema) {
  const kinds = schema.kinds.map((k) => {
    let at = 0;
    const fields = k.fields.map((f, index) => {
      const field = { ...f, index, at, info: typeInfo(f), whole: wholeUnits(f), predict: f.predict ?? { type: "hold" } };
      at += f.dims;
      return field;
    });
    for (const f of fields) {
      if (f.predict.type === "hold") continue;
      const v = fields[f.predict.from];
      f.source = v.at;
      f.zero = -v.minQ;
      if (f.predict.type === "integrate") {
        const kn = v.step.num * f.step.den;
        const kd = v.step.den * f.step.num;
        const g = gcd(kn, kd);
        f.kn = kn / g;
        f.kd = kd / g;
      }
    }
    const order = fields.filter((f) => f.predict.type === "hold").concat(fields.filter((f) => f.predict.type !== "hold"));
    return { name: k.name, fields, order, slots: at };
  });
  const stride = Math.max(0, ...kinds.map((k) => k.slots));
  const zeros = kinds.map((k) => {
    const z = new Array(stride).fill(0);
    for (const f of k.fields) for (let a = 0; a < f.dims; a++) z[f.at + a] = f.info.zero;
    return z;
  });
  return { kinds, stride, zeros, kindBits: bitsFor(kinds.length) };
}

/** Fills the predicted fields of `out` from baseline slots `base` and new slots `out` (held fields final). */
function predictFields(kind, base, out, from, to, rate) {
  for (const f of kind.fields) {
    if (f.predict.type === "integrate") {
      if (rate === 0) continue;
      const den = 2 * f.kd * rate;
      for (let a = 0; a < f.dims; a++) {
        const v = base[f.source + a] - f.zero + (out[f.source + a] - f.zero);
        const moved = roundDiv(v * to * f.kn, den) - roundDiv(v * from * f.kn, den);
        out[f.at + a] = Math.min(Math.max(base[f.at + a] + moved, 0), f.info.max);
      }
    } else if (f.predict.type === "heading") {
      const h = heading(out[f.source] - f.zero, out[f.source + 1] - f.zero, f.bits);
      if (h !== null) out[f.at] = h;
    }
  }
}

function inRange(v, max) {
  if (!(v >= 0 && v <= max)) throw new Error("value out of its declared range");
  return v;
}

function readAbsolute(r, f, out) {
  if (f.type === "bool") { out[f.at] ^= 1; return; }
  if (f.type === "entity") { for (let a = 0; a < f.dims; a++) out[f.at + a] = r.ugamma(); return; }
  if (f.whole && r.bit()) {
    for (let a = 0; a < f.dims; a++) out[f.at + a] = inRange((f.whole.lowest + r.bits(f.whole.bits)) * f.whole.den - f.minQ, f.info.max);
    return;
  }
  for (let a = 0; a < f.dims; a++) out[f.at + a] = inRange(r.bits(f.info.bits), f.info.max);
}

function readField(r, f, coding, out) {
  if (coding === "absolute") return readAbsolute(r, f, out);
  const k = coding;
  for (let a = 0; a < f.dims; a++) {
    const q = r.unary(ESCAPE);
    if (q === ESCAPE) { out[f.at + a] = inRange(r.bits(f.info.bits), f.info.max); continue; }
    const z = q * 2 ** k + r.bits(k);
    const d = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    const p = out[f.at + a];
    out[f.at + a] = f.type === "angle" ? (((p + d) % 2 ** f.bits) + 2 ** f.bits) % 2 ** f.bits : inRange(p + d, f.info.max);
  }
}

/** A section's masks (per record, one bool per field) and codings (per kind, per field). */
function readSectionPlan(r, s, kinds, first) {
  const expected = (kind) => kind.fields.map((f) => first === "all" || f.predict.type !== "hold");
  const readMask = (kind, previous) => (r.bit() ? previous ?? expected(kind) : kind.fields.map(() => r.bit() === 1));
  const count = s.kinds.map(() => 0);
  for (const ki of kinds) {
    if (ki >= s.kinds.length) throw new Error("unknown entity kind");
    count[ki] += 1;
  }
  // Kinds with two or more records may share one mask; each of its fields is sent by every
  // record of the kind, or by the records listed (positions among the kind's records).
  const shared = s.kinds.map((kind, ki) => {
    if (count[ki] < 2 || !r.bit()) return null;
    const mask = readMask(kind, null);
    const listed = [];
    mask.forEach((m, f) => {
      if (!m || !r.bit()) return;
      const n = r.ugamma();
      if (n > count[ki]) throw new Error("more records listed than the section holds");
      listed.push([f, new Set(readGaps(r, count[ki], n))]);
    });
    return { mask, listed };
  });
  const masks = [];
  const last = new Map();
  const used = s.kinds.map((k) => new Array(k.fields.length).fill(false));
  const position = s.kinds.map(() => 0);
  for (const ki of kinds) {
    let mask;
    if (shared[ki]) {
      const i = position[ki]++;
      mask = shared[ki].mask.slice();
      for (const [f, sends] of shared[ki].listed) mask[f] = sends.has(i);
    } else {
      mask = readMask(s.kinds[ki], last.get(ki));
    }
    last.set(ki, mask);
    masks.push(mask);
    mask.forEach((m, i) => { used[ki][i] ||= m; });
  }
  const codings = s.kinds.map((kind, ki) => kind.fields.map((f, i) => {
    if (!used[ki][i] || !f.info.residual) return "absolute";
    if (r.bit()) return "absolute";
    const k = r.ugamma();
    if (k > MAX_RICE) throw new Error("Rice parameter too large");
    return k;
  }));
  return { masks, codings };
}

function readRecord(r, kind, mask, codings, values, afterHeld) {
  let predicted = false;
  for (const f of kind.order) {
    if (f.predict.type !== "hold" && !predicted) { afterHeld(values); predicted = true; }
    if (mask[f.index]) readField(r, f, codings[f.index], values);
  }
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
 * Decodes one delta body in the shape of compiled schema `s` against `baseline` ({tick,
 * tickRate, entities} or null for a full snapshot). Returns {tick, tickRate, entities, shape}:
 * entities ({id, kind, owner, slots}) sorted by id; shape says how the body listed its changes
 * ({bitmap, changed, removed, spawned}).
 */
export function decodeBody(s, body, baseline) {
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
  const from = baseline?.tick ?? tick;

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
    const changed = r.ugamma();
    if (changed > base.length) throw new Error("too many changes");
    // More than half changed: the gaps listed are those of the unchanged.
    const inverted = 2 * changed > base.length;
    const count = inverted ? base.length - changed : changed;
    const listed = readGaps(r, base.length, count);
    if (inverted) {
      const skip = new Set(listed);
      for (let i = 0; i < base.length; i++) if (!skip.has(i)) changedAt.push(i);
    } else {
      changedAt.push(...listed);
    }
  }
  // Every baseline entity carried forward by its predictions, then the listed ones corrected
  // (they are predicted from their new held fields instead, so not carried first).
  const listed = new Uint8Array(base.length);
  for (const i of changedAt) listed[i] = 1;
  const entities = base.map((e, i) => {
    const slots = e.slots.slice();
    if (!listed[i]) predictFields(s.kinds[e.kind], e.slots, slots, from, tick, tickRate);
    return { id: e.id, kind: e.kind, owner: e.owner, slots };
  });
  if (changedAt.length > 0) {
    const plan = readSectionPlan(r, s, changedAt.map((i) => base[i].kind), "predicted");
    changedAt.forEach((idx, n) => {
      const b = base[idx];
      const kind = s.kinds[b.kind];
      const values = entities[idx].slots;
      readRecord(r, kind, plan.masks[n], plan.codings[b.kind], values, (v) => predictFields(kind, b.slots, v, from, tick, tickRate));
    });
  }

  // Removed ids must be in the baseline and not also changed.
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
  const kept = gone.size > 0 ? entities.filter((e) => !gone.has(e.id)) : entities;

  // Spawned: heads, then values against the one of their kind before them (or zeros).
  const count = r.ugamma();
  if (count > MAX_ENTITIES || count > r.remaining()) throw new Error("too many entities");
  const heads = [];
  let next = 0;
  for (let i = 0; i < count; i++) {
    const id = next + r.ugamma();
    next = id + 1;
    const kind = r.bits(s.kindBits);
    if (kind >= s.kinds.length) throw new Error("unknown entity kind");
    const owner = r.bit() ? r.ugamma() : null;
    heads.push({ id, kind, owner });
  }
  const spawned = new Map();
  if (count > 0) {
    const plan = readSectionPlan(r, s, heads.map((h) => h.kind), "all");
    const lastOfKind = new Map();
    heads.forEach((h, n) => {
      const kind = s.kinds[h.kind];
      const values = (lastOfKind.get(h.kind) ?? s.zeros[h.kind]).slice();
      readRecord(r, kind, plan.masks[n], plan.codings[h.kind], values, () => {});
      lastOfKind.set(h.kind, values);
      spawned.set(h.id, { ...h, slots: values });
    });
  }
  // The baseline is in id order; only spawns need merging in.
  let all = kept;
  if (spawned.size > 0) {
    all = kept.filter((e) => !spawned.has(e.id)).concat([...spawned.values()]);
    all.sort((a, b) => a.id - b.id);
  }
  if (all.length > MAX_ENTITIES) throw new Error("too many entities");
  const shape = { bitmap: listedByBitmap, changed: changedAt.length, removed: removed.length, spawned: count };
  return { tick, tickRate, entities: all, shape };
}

/** An entity's fields by name, dequantised as the JSON snapshot face writes them. */
export function view(s, e) {
  const kind = s.kinds[e.kind];
  const out = { id: e.id, kind: kind.name, owner: e.owner };
  for (const f of kind.fields) {
    const values = e.slots.slice(f.at, f.at + f.dims).map((q) => dequantise(f, q));
    out[f.name] = f.dims === 1 ? values[0] : values;
  }
  return out;
}

export function dequantise(f, q) {
  switch (f.type) {
    case "fixed": return ((f.minQ + q) * f.step.num) / f.step.den;
    case "int": return f.min + q;
    case "angle": { const a = (q / 2 ** f.bits) * 2 * Math.PI; return a >= Math.PI ? a - 2 * Math.PI : a; }
    case "enum": return f.variants[q];
    case "bool": return q !== 0;
    default: return q === 0 ? null : q;
  }
}

/** Rounds as the server does (half away from zero). */
const roundHalfAway = (x) => Math.sign(x) * Math.round(Math.abs(x));

/** A JSON-face value back to its slot (PROTOCOL.md, "Schemas"). */
export function quantise(f, v) {
  switch (f.type) {
    case "fixed": return roundHalfAway((v * f.step.den) / f.step.num) - f.minQ;
    case "int": return v - f.min;
    case "angle": { const steps = 2 ** f.bits; const t = (((v % (2 * Math.PI)) + 2 * Math.PI) % (2 * Math.PI)) / (2 * Math.PI); return Math.round(t * steps) % steps; }
    case "enum": return typeof v === "number" ? v : f.variants.indexOf(v);
    case "bool": return v ? 1 : 0;
    default: return v ?? 0;
  }
}

/** A JSON-face entity in the slots a decoder holds. */
export function fromView(s, v) {
  const kindIndex = s.kinds.findIndex((k) => k.name === v.kind);
  const kind = s.kinds[kindIndex];
  const slots = new Array(s.stride).fill(0);
  for (const f of kind.fields) {
    const vals = f.dims === 1 ? [v[f.name]] : v[f.name];
    vals.forEach((x, a) => { slots[f.at + a] = quantise(f, x); });
  }
  return { id: v.id, kind: kindIndex, owner: v.owner, slots };
}

/**
 * A client's side of the snapshot stream in the shape of a room's schema (its JSON form, from
 * the join reply): decodes snapshot packets (`0x02` + input ack + body) in arrival order,
 * keeping every decoded snapshot up to 128 ticks older than the newest so any baseline the
 * server may pick is held.
 */
export class SnapshotStream {
  constructor(schema) { this.schema = compileSchema(schema); this.held = []; }
  get current() { return this.held[this.held.length - 1] ?? null; }

  /** Returns {inputAck, snapshot, delta} for a newer snapshot, or null for a stale one. */
  apply(packet) {
    const { inputAck, body } = splitPacket(packet);
    const header = readHeader(new BitReader(body));
    const delta = !header.full;
    const baseline = delta ? this.held.findLast((s) => (s.tick & 0xff) === header.baselineLow) ?? null : null;
    const snapshot = decodeBody(this.schema, body, baseline);
    if (this.current && snapshot.tick <= this.current.tick) return null;
    this.held.push(snapshot);
    this.held = this.held.filter((s) => s.tick + MAX_BASELINE_AGE >= snapshot.tick);
    return { inputAck, snapshot, delta };
  }
}
