// Types of @tickwire/client/decoder: the snapshot format (docs/PROTOCOL.md) in JavaScript.

import type { Schema, Field, Entity } from "./index.js";

/** An entity as the decoder holds it: its fields' quantised slots. */
export interface Slotted { id: number; kind: number; owner: number | null; slots: number[] }
export interface Decoded {
  tick: number;
  tickRate: number;
  entities: Slotted[];
  shape: { bitmap: boolean; changed: number; removed: number; spawned: number };
}
export interface Compiled { kinds: { name: string; fields: (Field & { at: number })[] }[]; stride: number }

export class BitReader {
  constructor(bytes: Uint8Array);
  remaining(): number;
  bit(): number;
  bits(n: number): number;
}
export function compileSchema(schema: Schema): Compiled;
export function splitPacket(packet: ArrayBuffer | ArrayBufferView): { inputAck: number; body: Uint8Array };
export function readHeader(r: BitReader): { full: true; tick: number; tickRate: number } | { full: false; baselineLow: number; age: number };
export function decodeBody(s: Compiled, body: Uint8Array, baseline: Decoded | null): Decoded;
export function view(s: Compiled, e: Slotted): Entity;
export function fromView(s: Compiled, v: Entity): Slotted;
export function quantise(f: Field, v: unknown): number;
export function dequantise(f: Field, q: number): unknown;
export function heading(x: number, y: number, bits: number): number | null;

export class SnapshotStream {
  constructor(schema: Schema);
  readonly schema: Compiled;
  readonly current: Decoded | null;
  /** Decodes a snapshot packet; null for one older than the newest held. Throws on a corrupt one. */
  apply(packet: ArrayBuffer | ArrayBufferView): { inputAck: number; snapshot: Decoded; delta: boolean } | null;
}
