// The web client's costs in Chromium (docs/BENCHMARKS.md, "In the browser"): how long the
// library takes to decode a 1,000-entity room's snapshots, and the frame rate and per-frame
// work of the web client in an arena room with server bots. Not a test: figures, printed as
// one JSON object on the last line. Run by scripts/web-bench.
import { chromium } from "playwright-core";
import { connect } from "@tickwire/client";
import { startServer } from "../helpers.js";

const executablePath = process.env.TICKWIRE_CHROMIUM ?? "/usr/bin/chromium";
const SNAPSHOTS = 300;
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

// 1. Record a 1,000-entity room's binary snapshots at 30 Hz as a player receives them.
const server = await startServer(["--drones", "984", "--snapshot-rate", "30", "--per-address-connections", "256"]);
const client = await connect(server.url, { name: "recorder", reconnect: false });
const room = await client.create({ name: "thousand", maxPlayers: 16, bots: 15 });
const packets = [];
client.socket.on("snapshot", (buf) => { if (packets.length < SNAPSHOTS) packets.push([...new Uint8Array(buf)]); });
room.setInput({ move: [0, 0], aim: 0, buttons: false });
await new Promise((resolve) => { const t = setInterval(() => { if (packets.length >= SNAPSHOTS) { clearInterval(t); resolve(); } }, 50); });
const entities = room.entities.size;
const schema = room.schema;
const bytes = packets.reduce((n, p) => n + p.length, 0) / packets.length;

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
const page = await browser.newPage();
await page.goto(`${server.url}/`);

// 2. Decode the recording in the page, the whole sequence 30 times; per snapshot, the median run.
const decode = await page.evaluate(async ({ schema, packets }) => {
  const { SnapshotStream } = await import("/client/decoder.js");
  const bufs = packets.map((p) => Uint8Array.from(p));
  const runs = [];
  let full = [];
  for (let run = 0; run < 30; run++) {
    const stream = new SnapshotStream(schema);
    const t0 = performance.now();
    const f0 = performance.now();
    stream.apply(bufs[0]);
    full.push(performance.now() - f0);
    for (let i = 1; i < bufs.length; i++) stream.apply(bufs[i]);
    runs.push((performance.now() - t0) / bufs.length);
  }
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  return { perSnapshotMs: median(runs), fullMs: median(full) };
}, { schema, packets });
client.close();

// 3. The web client in an arena room with three server bots (the default 20 drones): frames a
// second and the work of one frame (the library's frame, the input, drawing), over 10 s.
const arena = await startServer();
await page.goto(`${arena.url}/`);
await page.waitForFunction(() => window.tickwire?.screen === "lobby");
await page.fill("#bots", "3");
await page.click("#create-room");
await page.waitForFunction(() => window.tickwire.view?.me);
await page.click("#ready");
await page.waitForFunction(() => window.tickwire.view.drawn >= 24, null, { timeout: 15000 });
const frames = await page.evaluate(() => new Promise((resolve) => {
  const t = window.tickwire;
  const f0 = t.frames;
  const t0 = performance.now();
  t.view.work = [];
  setTimeout(() => resolve({ fps: ((t.frames - f0) * 1000) / (performance.now() - t0), work: t.view.work }), 10000);
}));
await browser.close();
await server.stop();
await arena.stop();

console.log(JSON.stringify({
  decode_entities: entities,
  decode_snapshots: packets.length,
  decode_avg_snapshot_bytes: Math.round(bytes),
  decode_ms_per_snapshot_median: Number(decode.perSnapshotMs.toFixed(4)),
  decode_full_snapshot_ms_median: Number(decode.fullMs.toFixed(3)),
  arena_fps: Number(frames.fps.toFixed(1)),
  arena_frame_work_ms_median: Number(median(frames.work).toFixed(3)),
  arena_frame_work_ms_p99: Number([...frames.work].sort((a, b) => a - b)[Math.floor(frames.work.length * 0.99)].toFixed(3)),
}));
