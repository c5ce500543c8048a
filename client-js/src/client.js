// A player's connection to a tickwire server over the official socket.io-client: the handshake,
// the lobby calls as promises (rejected with a TickwireError carrying the server's code), the
// room the player is in (`room.js`) fed with its snapshots and events, inputs sent on a timer,
// a ping for the round trip, and reconnection within the seat's grace with the reconnect token.
// A server of several machines may answer a join with `moved` (the room is on another
// machine, a seat held there): the client moves its connection there by itself.

import { io } from "socket.io-client";
import { TickwireError, fromReply } from "./errors.js";
import { Room } from "./room.js";
import { Callbacks } from "./callbacks.js";

const DEFAULT_TIMEOUT_MS = 10000;
const PING_EVERY_MS = 2000;
/** Schemas remembered by hash, so a later join need not carry the schema again. */
const MAX_SCHEMAS = 16;

const now = () => performance.now() / 1000;

/** A refused handshake: `connect_error`'s message starts with the server's code. */
function handshakeError(e) {
  const m = /^([a-z_]+): (.*)$/s.exec(e?.message ?? "");
  if (m) return new TickwireError(m[1], m[2]);
  return new TickwireError("unreachable", e?.message ?? "could not connect");
}

/**
 * Connects to the server at `url` (its HTTP port, e.g. `http://127.0.0.1:8080`) and resolves
 * once it has said `welcome`.
 *
 * options: `name` (default "player"), `token` (a reconnect token: resume that seat),
 * `ticket` (when the server wants one), `encoding` ("binary", the default, or "json"),
 * `transports` (socket.io-client's; default polling then websocket), `reconnect` (default
 * true: follow a cut connection and resume the seat within its grace), `inputRate` (inputs a
 * second; default the room's tick rate), `timeoutMs` for calls (10 s), `schemas` (schemas held
 * from earlier joins, by hash).
 */
export async function connect(url, options = {}) {
  const client = new Client(url, options);
  await client.opened;
  return client;
}

export class Client {
  constructor(url, options) {
    this.url = url;
    this.options = options;
    this.name = options.name ?? "player";
    this.encoding = options.encoding ?? "binary";
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.token = options.token ?? null;
    this.schemas = new Map(Object.entries(options.schemas ?? {}));
    this.room = null;
    this.playerId = null;
    this.tickRate = 60;
    this.snapshotRate = 30;
    this.connected = false;
    this.closed = false;
    this.stats = { ping: null, snapshotRate: 0, bytes: 0, bytesPerSecond: 0, reconnects: 0 };
    this.rate = { at: now(), snapshots: 0, bytes: 0 };
    this.cb = {
      event: new Callbacks(), disconnect: new Callbacks(), reconnect: new Callbacks(),
      shutdown: new Callbacks(), room: new Callbacks(),
    };
    this.opened = this.open(url);
  }

  /** Opens the socket to `url`; resolves on its `welcome`, rejects (and closes) on a refusal. */
  open(url) {
    this.socket = io(url, {
      // A function, so a reconnect presents the newest token and the schemas held by then.
      auth: (cb) => cb(this.auth()),
      transports: this.options.transports,
      reconnection: this.options.reconnect ?? true,
      forceNew: true,
    });
    const opened = new Promise((resolve, reject) => {
      const fail = (e) => { this.close(); reject(handshakeError(e)); };
      this.socket.once("connect_error", fail);
      this.socket.once("welcome", (w) => { this.socket.off("connect_error", fail); resolve(w); });
      // A token whose seat is on another machine: the server says where, and closes.
      this.socket.once("moved", (m) => {
        this.socket.off("connect_error", fail);
        this.follow(m).then(() => resolve(null), reject);
      });
    });
    this.listen();
    return opened;
  }

  /**
   * Follows a `moved` reply: connects to the machine it names (its host, or this one's, and
   * its HTTP port) with the reserved seat's token, and leaves the old connection. A spectator
   * holds no seat (an empty token): it asks the new machine again with `event` and `data`.
   */
  async follow(moved, event, data) {
    const here = new URL(this.url);
    const url = `${here.protocol}//${moved.host ?? here.hostname}:${moved.httpPort}`;
    const old = this.socket;
    this.stopTimers();
    this.leaveRoom("moved");
    old.removeAllListeners();
    old.close();
    this.url = url;
    this.token = moved.token || null;
    // The new connection's welcome is a first one: a held seat comes back in it.
    this.connected = false;
    this.playerId = null;
    const w = await this.open(url);
    if (!moved.token) return this.call(event, data);
    if (!w.resumed) throw fromReply({ error: w.lost ?? { code: "room_lost", message: "the reserved seat is gone" } });
    return null;
  }

  /** A call that seats the player: its reply, or, when the server moved it, the room it was moved into. */
  async seat(event, data, spectator) {
    const reply = await this.call(event, data);
    if (!reply.moved) return this.enter(reply, spectator);
    const asked = await this.follow(reply.moved, event, data);
    if (asked) return this.enter(asked, spectator);
    if (!this.room) throw new TickwireError("room_lost", "the reserved seat could not be played");
    return this.room;
  }

  auth() {
    const auth = { name: this.name, encoding: this.encoding, schemas: [...this.schemas.keys()] };
    if (this.token) auth.token = this.token;
    if (this.options.ticket) auth.ticket = this.options.ticket;
    return auth;
  }

  listen() {
    const s = this.socket;
    s.on("welcome", (w) => this.welcome(w));
    s.on("snapshot", (payload) => this.snapshot(payload));
    s.on("room:event", (e) => this.roomEvent(e));
    s.on("server_shutdown", (e) => this.cb.shutdown.call(e?.reason ?? ""));
    s.on("disconnect", (reason) => {
      this.connected = false;
      this.stopTimers();
      // The server let go of this socket on purpose (seat taken, shutdown, flooding): the
      // official client does not reconnect, and the room is gone for this player.
      if (reason === "io server disconnect" || reason === "io client disconnect") this.leaveRoom(reason);
      this.cb.disconnect.call(reason);
    });
  }

  // ---- events ----

  /** `cb(event)` for every room event (`{type, ...}`, PROTOCOL.md); the room's own are on `room.onEvent`. */
  onEvent(cb) { return this.cb.event.add(cb); }
  /** `cb(reason)` when the connection drops (socket.io-client's reason). */
  onDisconnect(cb) { return this.cb.disconnect.add(cb); }
  /** `cb(room)` after a reconnect: `room` the resumed room, or null when its seat was gone. */
  onReconnect(cb) { return this.cb.reconnect.add(cb); }
  /** `cb(reason)` when the server says it is stopping. */
  onShutdown(cb) { return this.cb.shutdown.add(cb); }

  welcome(w) {
    const first = !this.connected && this.playerId === null;
    this.connected = true;
    this.playerId = w.playerId;
    this.tickRate = w.tickRate;
    this.snapshotRate = w.snapshotRate;
    if (first) {
      this.startPing();
      // Connected with a token whose seat was held (a reloaded page): back in that room.
      if (w.resumed) this.resumeInto(w.resumed);
      return;
    }
    this.stats.reconnects += 1;
    this.startPing();
    if (w.resumed && !this.room) {
      this.resumeInto(w.resumed);
      this.cb.reconnect.call(this.room);
    } else if (w.resumed && w.resumed.room?.id === this.room.id) {
      this.token = w.resumed.reconnectToken;
      this.room.resume(w.resumed);
      this.startInputs();
      this.cb.reconnect.call(this.room);
    } else {
      this.leaveRoom("seat_lost");
      this.cb.reconnect.call(null);
    }
  }

  resumeInto(resumed) {
    try {
      this.enter(resumed, false);
    } catch {
      // A reply without a schema this client holds cannot be played: the seat is let go.
      this.token = null;
    }
  }

  snapshot(payload) {
    const bytes = payload?.byteLength ?? 0;
    this.stats.bytes += bytes;
    this.rate.bytes += bytes;
    this.rate.snapshots += 1;
    const t = now();
    if (t - this.rate.at >= 1) {
      this.stats.snapshotRate = this.rate.snapshots / (t - this.rate.at);
      this.stats.bytesPerSecond = this.rate.bytes / (t - this.rate.at);
      this.rate = { at: t, snapshots: 0, bytes: 0 };
    }
    this.room?.receive(payload, t);
  }

  roomEvent(e) {
    if (!e || typeof e !== "object" || typeof e.type !== "string") return;
    this.cb.event.call(e);
    if (!this.room) return;
    this.room.event(e);
    if (e.type === "room_closed") this.leaveRoom("room_closed");
    if (e.type === "seat_taken") this.leaveRoom("seat_taken");
  }

  // ---- calls ----

  /** Emits a call and resolves with its ok reply; rejects with the server's error. */
  async call(event, data) {
    if (this.closed) throw new TickwireError("disconnected", "the client is closed");
    let reply;
    try {
      const timed = this.socket.timeout(this.timeoutMs);
      reply = data === undefined ? await timed.emitWithAck(event) : await timed.emitWithAck(event, data);
    } catch {
      throw new TickwireError("timeout", `no reply to ${event} within ${this.timeoutMs} ms`);
    }
    if (reply?.ok !== true) throw fromReply(reply);
    return reply;
  }

  /** The public rooms (`{mode, hasSpace}` to narrow): `[{id, name, mode, players, maxPlayers, state, private}]`. */
  async listRooms(filter = {}) {
    return (await this.call("rooms:list", filter)).rooms;
  }

  /** Creates a room and takes a seat in it: `{name, mode?, maxPlayers?, private?, bots?, fillBots?}`. */
  async create(room) {
    return this.seat("room:create", { name: "room", ...room }, false);
  }

  /** Joins a public room by id (a number) or a private one by its code (a string). */
  async join(idOrCode) {
    return this.seat("room:join", target(idOrCode), false);
  }

  /** The fullest public room of `mode` with a free seat whose match has not started, or a new one. */
  async quickJoin(mode) {
    return this.seat("room:quick", mode ? { mode } : {}, false);
  }

  /** Watches a room (by id or code) without a seat: snapshots and events, no input. */
  async spectate(idOrCode) {
    return this.seat("room:spectate", target(idOrCode), true);
  }

  async ready(ready = true) { await this.call("room:ready", { ready }); }
  async start() { await this.call("room:start"); }
  async chat(text) { await this.call("room:chat", { text }); }

  async leave() {
    await this.call("room:leave");
    this.leaveRoom("left");
  }

  /** Sends a game message to the room (one of the schema's `messages.toRoom`); resolves once the game took it. */
  async send(name, values = {}) {
    if (!this.room) throw new TickwireError("not_in_room", "join a room first");
    await this.call("room:message", this.room.message(name, values));
  }

  /** Round trip of one `ping` call, in milliseconds. */
  async ping() {
    const t = performance.now();
    await this.call("ping");
    const ms = performance.now() - t;
    this.stats.ping = ms;
    return ms;
  }

  enter(reply, spectator) {
    const schema = reply.schema ?? this.schemas.get(reply.schemaHash);
    if (!schema) throw new TickwireError("bad_reply", "the join reply carries no schema and names none held");
    if (reply.schemaHash && !this.schemas.has(reply.schemaHash)) {
      if (this.schemas.size >= MAX_SCHEMAS) this.schemas.delete(this.schemas.keys().next().value);
      this.schemas.set(reply.schemaHash, schema);
    }
    this.leaveRoom("left");
    this.token = reply.reconnectToken ?? this.token;
    const room = new Room(reply, schema, {
      spectator,
      predict: this.options.predict,
      tickRate: this.tickRate,
      inputRate: this.options.inputRate ?? this.tickRate,
      send: (event, data) => { if (this.connected) this.socket.emit(event, data); },
    });
    room.client = this;
    this.room = room;
    this.startInputs();
    this.cb.room.call(room);
    return room;
  }

  leaveRoom(reason) {
    const room = this.room;
    if (!room) return;
    this.room = null;
    clearInterval(this.inputTimer);
    this.inputTimer = null;
    // The token outlives a connection the client closed itself: a reloaded page resumes with it.
    if (reason === "left" || reason === "room_closed" || reason === "seat_taken") this.token = null;
    room.close(reason);
  }

  // ---- timers ----

  startInputs() {
    clearInterval(this.inputTimer);
    const room = this.room;
    if (!room || !room.sendsInputs) return;
    this.inputTimer = setInterval(() => room.sendInput(), 1000 / room.inputRate);
  }

  startPing() {
    clearInterval(this.pingTimer);
    this.ping().catch(() => {});
    this.pingTimer = setInterval(() => this.ping().catch(() => {}), PING_EVERY_MS);
  }

  stopTimers() {
    clearInterval(this.inputTimer);
    clearInterval(this.pingTimer);
    this.inputTimer = null;
    this.pingTimer = null;
  }

  /** Closes the connection (the seat waits out its grace on the server). */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.stopTimers();
    this.socket.close();
    this.leaveRoom("io client disconnect");
  }
}

function target(idOrCode) {
  if (typeof idOrCode === "number") return { roomId: idOrCode };
  if (typeof idOrCode === "string") return { code: idOrCode };
  throw new TickwireError("bad_request", "a room is named by its id (a number) or its code (a string)");
}
