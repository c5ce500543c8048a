// Helpers for the Socket.IO contract tests: a real tickwire-server process on 127.0.0.1, real
// socket.io-client sockets, and waits that always end (each has a timeout).
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { before, after } from "node:test";
import { io } from "socket.io-client";
import { BitReader, readHeader, splitPacket } from "@tickwire/client/decoder";

const here = path.dirname(fileURLToPath(import.meta.url));
const targetDir = process.env.TICKWIRE_TARGET_DIR ?? path.join(here, "..", "..", "target", "debug");
export const serverBin = process.env.TICKWIRE_SERVER_BIN ?? path.join(targetDir, "tickwire-server");
export const botsBin = process.env.TICKWIRE_BOTS_BIN ?? path.join(targetDir, "tickwire-bots");
export const bevyBin = process.env.TICKWIRE_BEVY_BIN ?? path.join(targetDir, "tickwire-client-bevy");

export const WAIT_MS = 15000;

/** Starts tickwire-server on port 0 and resolves with its addresses once it prints `listening`. */
export function startServer(args = []) {
  const child = spawn(serverBin, ["--http", "127.0.0.1:0", "--quic", "127.0.0.1:0", ...args], {
    cwd: mkdtempSync(path.join(tmpdir(), "tickwire-js-")),
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" },
  });
  return withTimeout("the server's listening line", new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) => {
      const field = (k) => line.split(" ").find((f) => f.startsWith(`${k}=`))?.slice(k.length + 1);
      resolve({
        url: `http://${field("http")}`,
        http: field("http"),
        quic: field("quic"),
        cert: field("cert-sha256"),
        child,
        stop: () => new Promise((done) => {
          child.removeAllListeners("exit");
          child.once("exit", () => done());
          child.kill("SIGTERM");
        }),
      });
    });
  }));
}

export function withTimeout(what, promise, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Connects and resolves with {socket, welcome}. */
export function connect(url, { name = "js", encoding, transports, token, extraAuth } = {}) {
  const auth = { name, ...(encoding ? { encoding } : {}), ...(token ? { token } : {}), ...extraAuth };
  const socket = io(url, { auth, transports, reconnection: false, forceNew: true });
  return withTimeout(`welcome for ${name}`, new Promise((resolve, reject) => {
    socket.once("welcome", (welcome) => resolve({ socket, welcome }));
    socket.once("connect_error", (e) => reject(e));
  }));
}

/** Emits a call event and resolves with its ack payload. */
export function call(socket, event, ...data) {
  return withTimeout(`the ack of ${event}`, new Promise((resolve) => {
    socket.emit(event, ...data, (reply) => resolve(reply));
  }));
}

/** Resolves with the first `event` payload for which `pred` holds. */
export function waitFor(socket, event, pred = () => true, what = event) {
  return withTimeout(what, new Promise((resolve) => {
    const handler = (payload) => {
      if (pred(payload)) {
        socket.off(event, handler);
        resolve(payload);
      }
    };
    socket.on(event, handler);
  }));
}

/**
 * Reads a binary snapshot packet's header (docs/PROTOCOL.md): the input ack, and either the full
 * snapshot's tick or the delta's baseline (by low byte) and age. `ticks` maps the low byte of
 * each tick seen so far to the tick, to resolve a delta's tick.
 */
export function binaryHeader(buf, ticks = new Map()) {
  const { inputAck, body } = splitPacket(buf);
  const header = readHeader(new BitReader(body));
  let tick = header.tick;
  if (!header.full) {
    const base = ticks.get(header.baselineLow);
    if (base === undefined) throw new Error(`unknown baseline ${header.baselineLow}`);
    tick = base + header.age;
  }
  ticks.set(tick & 0xff, tick);
  return { inputAck, tick, hasBaseline: !header.full };
}

export const room = (name, maxPlayers = 8, extra = {}) => ({ name, mode: "arena", maxPlayers, private: false, ...extra });

/**
 * One server for a test file: started before its tests, stopped after them, with the sockets
 * the tests open closed too. With `matchLog`, the server writes its match log to a fresh file
 * (`ctx.logPath`); `setup(ctx)` runs once the server is up.
 */
export function useServer(args = [], { matchLog = false, setup } = {}) {
  const ctx = { server: null, logPath: null, sockets: [] };
  ctx.open = async (opts) => {
    const c = await connect(ctx.server.url, opts);
    ctx.sockets.push(c.socket);
    return c;
  };
  before(async () => {
    const extra = [];
    if (matchLog) {
      ctx.logPath = path.join(mkdtempSync(path.join(tmpdir(), "tickwire-log-")), "matches.jsonl");
      extra.push("--match-log", ctx.logPath);
    }
    ctx.server = await startServer([...args, ...extra]);
    if (setup) await setup(ctx);
  });
  after(async () => {
    for (const s of ctx.sockets) s.close();
    await ctx.server.stop();
  });
  return ctx;
}
