// Types of @tickwire/client (src/ is plain JavaScript; these describe it).

import type { Socket } from "socket.io-client";

/** A room's schema, as the join reply carries it (docs/PROTOCOL.md, "Schemas"). */
export interface Schema {
  kinds: { name: string; fields: Field[] }[];
  input?: Field[];
  messages?: { toRoom?: MessageKind[]; toPlayer?: MessageKind[] };
}
export interface MessageKind { name: string; fields: Field[] }
export type Field = {
  name: string;
  dims: number;
  predict?: { type: "hold" } | { type: "integrate"; from: number } | { type: "heading"; from: number };
} & (
  | { type: "fixed"; step: { num: number; den: number }; minQ: number; count: number }
  | { type: "int"; min: number; max: number }
  | { type: "angle"; bits: number }
  | { type: "enum"; variants: string[] }
  | { type: "bool" }
  | { type: "entity" }
);

/** A field's value: a number, an enum's variant name, a bool, an entity id or null; an array when dims > 1. */
export type Value = number | string | boolean | null | Value[];
export type Values = Record<string, Value>;

/** An entity, dequantised: its fields by name. */
export interface Entity {
  id: number;
  kind: string;
  owner: number | null;
  [field: string]: Value;
}

export interface RoomInfo {
  id: number;
  name: string;
  mode: string;
  players: number;
  maxPlayers: number;
  state: "waiting" | "countdown" | "playing" | "finished";
  private: boolean;
}

/** A room event (docs/PROTOCOL.md, Socket.IO): `player_joined`, `chat`, `match_ended`, `message`, ... */
export interface RoomEvent { type: string; [key: string]: unknown }

export class TickwireError extends Error {
  /** The server's error code (`room_full`, `not_found`, `bad_request`, `refused`, ...) or the library's (`timeout`, `disconnected`, `unreachable`). */
  readonly code: string;
  readonly reason: string;
  constructor(code: string, message: string);
}

export interface ConnectOptions {
  name?: string;
  /** A reconnect token from an earlier join: resumes that seat within its grace. */
  token?: string;
  ticket?: string;
  encoding?: "binary" | "json";
  transports?: ("polling" | "websocket")[];
  /** Follow a cut connection and resume the seat (default true). */
  reconnect?: boolean;
  /** Inputs sent a second (default: the server's tick rate). */
  inputRate?: number;
  /** Calls time out after this long (default 10 000 ms). */
  timeoutMs?: number;
  /** Schemas held from earlier joins, by hash. */
  schemas?: Record<string, Schema>;
  /** Each room's `predict` hook to start with (see `Room.predict`). */
  predict?: (entity: Entity, input: Values, dt: number) => void;
}

export interface ClientStats {
  /** Round trip of the last ping, ms. */
  ping: number | null;
  snapshotRate: number;
  bytes: number;
  bytesPerSecond: number;
  reconnects: number;
}

export function connect(url: string, options?: ConnectOptions): Promise<Client>;

type Off = () => void;

export class Client {
  readonly socket: Socket;
  readonly playerId: number | null;
  readonly tickRate: number;
  readonly snapshotRate: number;
  readonly room: Room | null;
  /** The current seat's reconnect token (keep it to resume after a reload). */
  readonly token: string | null;
  readonly schemas: Map<string, Schema>;
  readonly stats: ClientStats;
  listRooms(filter?: { mode?: string; hasSpace?: boolean }): Promise<RoomInfo[]>;
  create(room: { name?: string; mode?: string; maxPlayers?: number; private?: boolean; bots?: number; fillBots?: boolean }): Promise<Room>;
  join(idOrCode: number | string): Promise<Room>;
  quickJoin(mode?: string): Promise<Room>;
  spectate(idOrCode: number | string): Promise<Room>;
  ready(ready?: boolean): Promise<void>;
  start(): Promise<void>;
  leave(): Promise<void>;
  chat(text: string): Promise<void>;
  send(name: string, values?: Values): Promise<void>;
  ping(): Promise<number>;
  onEvent(cb: (e: RoomEvent) => void): Off;
  onDisconnect(cb: (reason: string) => void): Off;
  onReconnect(cb: (room: Room | null) => void): Off;
  onShutdown(cb: (reason: string) => void): Off;
  close(): void;
}

/** Snapshots decoded (of which deltas), their bytes, those skipped as corrupt or older than the newest, inputs sent. */
export interface RoomStats { snapshots: number; deltas: number; bytes: number; corrupt: number; stale: number; inputsSent: number }

export class Room {
  readonly id: number;
  readonly info: RoomInfo;
  readonly playerId: number;
  /** The player's own entity id (null for a spectator or a game without one). */
  readonly entity: number | null;
  readonly code: string | null;
  readonly schema: Schema;
  readonly spectator: boolean;
  readonly tick: number | null;
  /** The highest input seq the server had applied at the newest snapshot. */
  readonly inputAck: number;
  readonly entities: Map<number, Entity>;
  readonly me: Entity | null;
  readonly stats: RoomStats;
  /** Moves the player's own entity by one held input over one tick of `dt` seconds (mutating it); set it to predict. */
  predict: ((entity: Entity, input: Values, dt: number) => void) | null;
  onAdd(cb: (e: Entity) => void): Off;
  onRemove(cb: (e: Entity) => void): Off;
  onChange(cb: (e: Entity, fields: string[]) => void): Off;
  listen(field: string, cb: (e: Entity, value: Value, previous: Value) => void, options?: { kind?: string }): Off;
  onSnapshot(cb: (s: { tick: number; entities: Map<number, Entity> }) => void): Off;
  onEvent(cb: (e: RoomEvent) => void): Off;
  onMessage(cb: (name: string, values: Values) => void): Off;
  onError(cb: (e: Error) => void): Off;
  onLeave(cb: (reason: string) => void): Off;
  /** Holds `values` as the input from now on (throws a `bad_request` TickwireError for a value the schema does not allow). */
  setInput(values: Values): void;
  /** The world to draw at `now` (seconds, `performance.now() / 1000`): interpolated, the own entity predicted. */
  frame(now: number): Entity[];
  /** Feeds one `snapshot` payload (the client does this); never throws. */
  receive(payload: ArrayBuffer | ArrayBufferView | object, now: number): void;
}

export class RenderClock {
  delay: number;
  jitter: number;
  interval: number;
  observe(tick: number, tickRate: number, arrived: number): void;
  advance(now: number): number | null;
  reset(): void;
}

export function blend(kind: { fields: Field[] }, a: Entity, b: Entity, t: number): Entity;
/** `v` carried `seconds` along the velocity each integrating field declares. */
export function extrapolate(kind: { fields: Field[] }, v: Entity, seconds: number): Entity;
export function checkValues(where: string, fields: Field[], values: Values): Values;
export function encodeInputPacket(ackTick: number | null, inputs: { seq: number; slots: number[] }[]): Uint8Array;
export function inputSlots(fields: Field[], values: Values): number[];
export * from "./decoder.js";
