// Inputs on the wire: the binary input packet (PROTOCOL.md, "Input"): `0x01` + bincode
// `InputBatch {ack_tick: Option<Tick>, inputs: Vec<Input {seq, slots}>}`, each batch carrying
// the newest input and the three before it, so a lost or late message loses no input, and the
// acknowledgement of the newest decoded snapshot. The same bytes a QUIC client sends as a
// datagram; over Socket.IO they go as one binary attachment of the `input` event.

import { quantise } from "./decoder.js";

const REDUNDANCY = 4;

/** bincode 2's varint (PROTOCOL.md, "bincode encoding") of a u32, appended to `out`. */
function varint(out, v) {
  if (v < 251) out.push(v);
  else if (v < 0x10000) out.push(251, v & 0xff, v >>> 8);
  else out.push(252, v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
}

/** An input's values (already checked, `values.js`) as the slots the schema's `input` declares. */
export function inputSlots(fields, values) {
  const slots = [];
  for (const f of fields) {
    const v = values[f.name];
    for (const x of f.dims > 1 ? v : [v]) slots.push(quantise(f, x));
  }
  return slots;
}

/** The packet for `ackTick` (or null) and `inputs` ([{seq, slots}], oldest first). */
export function encodeInputPacket(ackTick, inputs) {
  const out = [0x01];
  if (ackTick === null || ackTick === undefined) out.push(0);
  else { out.push(1); varint(out, ackTick); }
  varint(out, inputs.length);
  for (const i of inputs) {
    varint(out, i.seq);
    varint(out, i.slots.length);
    for (const s of i.slots) varint(out, s);
  }
  return Uint8Array.from(out);
}

/**
 * The inputs a player has sent and not yet seen applied: numbered from 1, each kept until a
 * snapshot's `inputAck` covers it (prediction replays those), the newest four sent with each
 * batch.
 */
export class InputLog {
  constructor() { this.seq = 0; this.pending = []; }

  /** Numbers `values` (with their `slots`) as the next input and returns it. */
  push(values, slots) {
    this.seq += 1;
    const input = { seq: this.seq, values, slots };
    this.pending.push(input);
    // A server that applies nothing for a while (a paused room) must not grow this.
    if (this.pending.length > 256) this.pending.shift();
    return input;
  }

  /** Forgets what the server has applied (`inputAck`: the highest seq applied). */
  applied(inputAck) {
    let i = 0;
    while (i < this.pending.length && this.pending[i].seq <= inputAck) i += 1;
    if (i > 0) this.pending.splice(0, i);
  }

  /** The newest inputs to send with a batch, oldest first. */
  recent() { return this.pending.slice(-REDUNDANCY); }

  /** A reconnected player numbers from 1 again (PROTOCOL.md). */
  reset() { this.seq = 0; this.pending = []; }
}
