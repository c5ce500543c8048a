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

// 1. Record a 1,000-entity room's binary snapshots at 30 Hz as a player receives them: the
// arena (984 drones, flying straight between turns, so most deltas are predicted) and the
// standard workload (984 drones whose every field changes every tick).
async function record(mode, args, input) {
  const server = await startServer([...args, "--snapshot-rate", "30"]);
  const client = await connect(server.url, { name: "recorder", reconnect: false });
  const room = await client.create({ name: "thousand", mode, maxPlayers: 16, bots: 15 });
  const packets = [];
  client.socket.on("snapshot", (buf) => { if (packets.length < SNAPSHOTS) packets.push([...new Uint8Array(buf)]); });
  room.setInput(input);
  await new Promise((resolve) => { const t = setInterval(() => { if (packets.length >= SNAPSHOTS) { clearInterval(t); resolve(); } }, 50); });
  const recorded = { mode, entities: room.entities.size, schema: room.schema, packets };
  client.close();
  await server.stop();
  return recorded;
}
const recordings = [
  await record("arena", ["--drones", "984"], { move: [0, 0], aim: 0, buttons: false }),
  await record("standard", ["--standard-drones", "984"], { dx: 0, dy: 0 }),
];

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
const page = await browser.newPage();
const arena = await startServer();
await page.goto(`${arena.url}/`);

// 2. Decode each recording in the page, the whole sequence 30 times: per snapshot, the median
// run; and the first (full) snapshot alone.
const decoded = [];
for (const { mode, entities, schema, packets } of recordings) {
  const d = await page.evaluate(async ({ schema, packets }) => {
    const { SnapshotStream } = await import("/client/decoder.js");
    const bufs = packets.map((p) => Uint8Array.from(p));
    const runs = [];
    const full = [];
    for (let run = 0; run < 30; run++) {
      const stream = new SnapshotStream(schema);
      const t0 = performance.now();
      stream.apply(bufs[0]);
      full.push(performance.now() - t0);
      for (let i = 1; i < bufs.length; i++) stream.apply(bufs[i]);
      runs.push((performance.now() - t0) / bufs.length);
    }
    const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
    return { perSnapshotMs: median(runs), fullMs: median(full) };
  }, { schema, packets });
  decoded.push({
    mode,
    entities,
    snapshots: packets.length,
    avg_snapshot_bytes: Math.round(packets.reduce((n, p) => n + p.length, 0) / packets.length),
    ms_per_snapshot_median: Number(d.perSnapshotMs.toFixed(4)),
    full_snapshot_ms_median: Number(d.fullMs.toFixed(3)),
  });
}

// 3. The web client in an arena room with three server bots (the default 20 drones): frames a
// second and the work of one frame (the library's frame, the input, drawing), over 10 s.
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
await arena.stop();

console.log(JSON.stringify({
  decode: decoded,
  arena_fps: Number(frames.fps.toFixed(1)),
  arena_frame_work_ms_median: Number(median(frames.work).toFixed(3)),
  arena_frame_work_ms_p99: Number([...frames.work].sort((a, b) => a - b)[Math.floor(frames.work.length * 0.99)].toFixed(3)),
}));
