// One room as a player (or a spectator) sees it: the schema from the join reply, the snapshot
// stream decoded with it, the entities of the newest snapshot with callbacks when they appear,
// change or go, the world drawn between two snapshots a little in the past (the render clock),
// the player's own entity predicted from the inputs the server has not applied yet, and the
// room's events and game messages. The client (`client.js`) owns the socket and feeds it.

import { SnapshotStream, view, fromView } from "./decoder.js";
import { RenderClock } from "./clock.js";
import { blend, extrapolate } from "./blend.js";
import { checkValues } from "./values.js";
import { InputLog, inputSlots, encodeInputPacket } from "./input.js";
import { TickwireError } from "./errors.js";
import { Callbacks } from "./callbacks.js";

/** Snapshots kept for drawing between (at 30 Hz about two seconds). */
const BUFFER_LEN = 64;
/** How far past the newest snapshot entities are carried along their velocity, seconds. */
const MAX_EXTRAPOLATION = 0.1;

export class Room {
  /**
   * @param {object} joined the join reply (`room`, `playerId`, `entity`, `code`, `schema`)
   * @param {object} schema the room's schema (its JSON form)
   * @param {object} options `{spectator, predict, tickRate, inputRate, send}`; `send(event, data)` emits
   */
  constructor(joined, schema, options) {
    this.info = joined.room;
    this.id = joined.room.id;
    this.playerId = joined.playerId;
    this.entity = joined.entity || null;
    this.code = joined.code ?? null;
    this.schema = schema;
    this.spectator = options.spectator;
    this.predict = options.predict ?? null;
    this.send = options.send;
    this.tickRate = options.tickRate ?? 60;
    this.inputRate = options.inputRate ?? this.tickRate;
    this.stream = new SnapshotStream(schema);
    this.compiled = this.stream.schema;
    this.clock = new RenderClock();
    this.inputs = new InputLog();
    this.snapshots = [];
    this.inputAck = 0;
    this.input = null;
    this.left = false;
    this.stats = { snapshots: 0, deltas: 0, bytes: 0, corrupt: 0, stale: 0, inputsSent: 0 };
    this.cb = {
      add: new Callbacks(), remove: new Callbacks(), change: new Callbacks(),
      snapshot: new Callbacks(), event: new Callbacks(), message: new Callbacks(),
      error: new Callbacks(), leave: new Callbacks(),
    };
    this.fieldListeners = new Map();
    this.views = new Map();
  }

  // ---- the newest snapshot ----

  /** The newest decoded snapshot's tick, or null. */
  get tick() { return this.snapshots.at(-1)?.tick ?? null; }

  /** The entities of the newest snapshot, dequantised: a Map of id → `{id, kind, owner, ...fields}`. */
  get entities() {
    const newest = this.snapshots.at(-1);
    if (!newest) return new Map();
    return this.viewsOf(newest);
  }

  /** The player's own entity in the newest snapshot (none for a spectator or a game without one). */
  get me() { return this.entity === null ? null : this.entities.get(this.entity) ?? null; }

  viewsOf(snapshot) {
    let views = this.views.get(snapshot.tick);
    if (!views) {
      views = new Map(snapshot.entities.map((e) => [e.id, view(this.compiled, e)]));
      this.views.set(snapshot.tick, views);
      if (this.views.size > 4) this.views.delete(this.views.keys().next().value);
    }
    return views;
  }

  // ---- callbacks ----

  /** `cb(entity)` for each entity that appears (those of the first snapshot included). */
  onAdd(cb) { return this.cb.add.add(cb); }
  /** `cb(entity)` with the entity's last view when it goes. */
  onRemove(cb) { return this.cb.remove.add(cb); }
  /** `cb(entity, fields)`: the names of the fields that changed between two snapshots. */
  onChange(cb) { return this.cb.change.add(cb); }
  /** `cb(entity, value, previous)` when `field` of any entity (of `kind`, if given) changes. */
  listen(field, cb, { kind } = {}) {
    if (!this.fieldListeners.has(field)) this.fieldListeners.set(field, new Callbacks());
    return this.fieldListeners.get(field).add((e, value, previous) => {
      if (kind === undefined || e.kind === kind) cb(e, value, previous);
    });
  }
  /** `cb({tick, entities})` after each newer snapshot. */
  onSnapshot(cb) { return this.cb.snapshot.add(cb); }
  /** `cb(event)` for each room event (`{type, ...}`, PROTOCOL.md). */
  onEvent(cb) { return this.cb.event.add(cb); }
  /** `cb(name, values)` for each game message to this player (`messages.toPlayer`). */
  onMessage(cb) { return this.cb.message.add(cb); }
  /** `cb(error)` for a snapshot that could not be decoded (it is skipped). */
  onError(cb) { return this.cb.error.add(cb); }
  /** `cb(reason)` once the player is out of the room (left, closed, seat lost). */
  onLeave(cb) { return this.cb.leave.add(cb); }

  // ---- fed by the client ----

  /** A `snapshot` event's payload; `now` in seconds. Never throws on what the server sent. */
  receive(payload, now) {
    let snapshot;
    try {
      if (payload instanceof ArrayBuffer || ArrayBuffer.isView(payload)) {
        this.stats.bytes += payload.byteLength;
        const out = this.stream.apply(payload);
        if (!out) { this.stats.stale += 1; return; }
        this.inputAck = out.inputAck;
        if (out.delta) this.stats.deltas += 1;
        snapshot = out.snapshot;
      } else {
        snapshot = this.fromJson(payload);
        if (!snapshot) { this.stats.stale += 1; return; }
      }
    } catch (e) {
      // Skipped and not acknowledged: the server keeps sending deltas against the last
      // snapshot acknowledged (still held), or a full one once that is too old.
      this.stats.corrupt += 1;
      this.cb.error.call(e);
      return;
    }
    this.stats.snapshots += 1;
    this.clock.observe(snapshot.tick, snapshot.tickRate, now);
    const previous = this.snapshots.at(-1) ?? null;
    this.snapshots.push(snapshot);
    if (this.snapshots.length > BUFFER_LEN) this.snapshots.shift();
    this.inputs.applied(this.inputAck);
    this.notify(previous, snapshot);
    // Without inputs to carry it (a spectator, a game with no input), the ack goes at once.
    if (!this.sendsInputs) this.sendAck();
  }

  fromJson(p) {
    if (!p || typeof p !== "object" || !Number.isInteger(p.tick) || !Array.isArray(p.entities)) {
      throw new Error("a JSON snapshot needs a tick and entities");
    }
    if (this.tick !== null && p.tick <= this.tick) return null;
    this.inputAck = p.inputAck ?? 0;
    const tickRate = this.tickRate;
    const entities = p.entities.map((v) => fromView(this.compiled, v)).sort((a, b) => a.id - b.id);
    return { tick: p.tick, tickRate, entities };
  }

  notify(previous, next) {
    const wanted = this.cb.add.size + this.cb.remove.size + this.cb.change.size + this.fieldListeners.size;
    if (wanted > 0) this.diff(previous, next);
    if (this.cb.snapshot.size > 0) this.cb.snapshot.call({ tick: next.tick, entities: this.viewsOf(next) });
  }

  diff(previous, next) {
    const before = new Map((previous?.entities ?? []).map((e) => [e.id, e]));
    const nextViews = this.viewsOf(next);
    for (const e of next.entities) {
      const old = before.get(e.id);
      before.delete(e.id);
      if (!old || old.kind !== e.kind) {
        if (old) this.cb.remove.call(view(this.compiled, old));
        this.cb.add.call(nextViews.get(e.id));
        continue;
      }
      const kind = this.compiled.kinds[e.kind];
      let changed = null;
      for (const f of kind.fields) {
        for (let a = f.at; a < f.at + f.dims; a++) {
          if (old.slots[a] !== e.slots[a]) { (changed ??= []).push(f.name); break; }
        }
      }
      if (!changed) continue;
      const now = nextViews.get(e.id);
      this.cb.change.call(now, changed);
      if (this.fieldListeners.size === 0) continue;
      const was = view(this.compiled, old);
      for (const name of changed) {
        this.fieldListeners.get(name)?.call(now, now[name], was[name]);
      }
    }
    for (const gone of before.values()) this.cb.remove.call(view(this.compiled, gone));
  }

  /** A `room:event` payload for this room. */
  event(e) {
    if (e.type === "message") this.cb.message.call(e.name, e.values ?? {});
    this.cb.event.call(e);
  }

  /**
   * The seat resumed on a new connection (`resumed` from its welcome): the server sends a full
   * snapshot again and numbers inputs from 1; the entities held stay, so callbacks see only
   * what changed meanwhile.
   */
  resume(joined) {
    this.playerId = joined.playerId;
    this.entity = joined.entity || null;
    this.stream = new SnapshotStream(this.schema);
    this.inputs.reset();
    this.inputAck = 0;
    this.clock.reset();
  }

  /** The room is over for this player. */
  close(reason) {
    if (this.left) return;
    this.left = true;
    this.cb.leave.call(reason);
  }

  // ---- inputs ----

  get sendsInputs() {
    return !this.spectator && (this.schema.input ?? []).length > 0;
  }

  /**
   * The input the player holds from now on, checked against the schema's `input` (throws a
   * `bad_request` TickwireError naming the field). The client sends it at its input rate,
   * each batch with the ack of the newest snapshot.
   */
  setInput(values) {
    if (this.spectator) throw new TickwireError("not_in_room", "a spectator sends no input");
    const checked = checkValues("input", this.schema.input ?? [], values);
    this.input = { values: checked, slots: inputSlots(this.schema.input ?? [], checked) };
  }

  /** Sends the held input as the next one (called on the client's input timer). */
  sendInput() {
    if (this.left || !this.sendsInputs || !this.input) return;
    this.inputs.push(this.input.values, this.input.slots);
    this.send("input", encodeInputPacket(this.tick, this.inputs.recent()));
    this.stats.inputsSent += 1;
  }

  sendAck() {
    if (this.left || this.tick === null) return;
    this.send("input", encodeInputPacket(this.tick, []));
  }

  // ---- drawing ----

  /**
   * The world to draw at `now` (seconds, the clock `receive` was given): each entity between
   * the two snapshots around the render clock, blended as its fields allow; the player's own
   * entity predicted (with a `predict` hook) or as the newest snapshot has it. An array of
   * views; empty before the first snapshot.
   */
  frame(now) {
    const at = this.clock.advance(now);
    if (at === null || this.snapshots.length === 0) return [];
    const { from, to, t } = this.around(at);
    const fromViews = this.viewsOf(from);
    const toViews = to ? this.viewsOf(to) : null;
    // Past the newest snapshot (a late or lost one): along their velocity for a little while.
    const ahead = to ? 0 : Math.min(Math.max((at - from.tick) / (from.tickRate || this.tickRate), 0), MAX_EXTRAPOLATION);
    const out = [];
    for (const [id, a] of fromViews) {
      if (id === this.entity) continue;
      const b = toViews?.get(id);
      if (b && b.kind === a.kind) out.push(blend(this.kindOf(a), a, b, t));
      else out.push(ahead > 0 ? extrapolate(this.kindOf(a), a, ahead) : a);
    }
    const me = this.predicted();
    if (me) out.push(me);
    return out;
  }

  kindOf(v) { return this.compiled.kinds.find((k) => k.name === v.kind); }

  /** The snapshots either side of fractional tick `at` and the fraction between them. */
  around(at) {
    const s = this.snapshots;
    let i = s.length - 1;
    while (i >= 0 && s[i].tick > at) i -= 1;
    if (i < 0) return { from: s[0], to: null, t: 0 };
    if (i === s.length - 1) return { from: s[i], to: null, t: 0 };
    const a = s[i];
    const b = s[i + 1];
    return { from: a, to: b, t: (at - a.tick) / (b.tick - a.tick) };
  }

  /**
   * The player's own entity: the newest snapshot's, then, with a `predict(entity, input, dt)`
   * hook, each input the server had not applied replayed over it, each for the ticks it is held
   * (the server applies one input a tick, and holds the last between inputs).
   */
  predicted() {
    const own = this.me;
    if (!own || !this.predict) return own;
    const state = structuredClone(own);
    const tickRate = this.snapshots.at(-1).tickRate || this.tickRate;
    const dt = 1 / tickRate;
    const held = Math.max(1, Math.round(tickRate / this.inputRate));
    for (const input of this.inputs.pending) {
      for (let k = 0; k < held; k++) this.predict(state, input.values, dt);
    }
    return state;
  }

  /**
   * A game message to the room (`messages.toRoom`), checked against the schema: the
   * `room:message` payload (`values` left out for a kind without fields).
   */
  message(name, values = {}) {
    const kind = (this.schema.messages?.toRoom ?? []).find((k) => k.name === name);
    if (!kind) throw new TickwireError("bad_request", `no message ${name} to the room in this game`);
    const checked = checkValues(`message ${name}`, kind.fields, values);
    return kind.fields.length > 0 ? { name, values: checked } : { name };
  }
}
