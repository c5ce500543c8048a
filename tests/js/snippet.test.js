// The small game client in client-js/README.md, run exactly as written against a live server:
// the snippet the README promises works.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { useServer, withTimeout } from "./helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const ctx = useServer(["--drones", "5"]);

function readmeSnippet() {
  const readme = readFileSync(path.join(here, "..", "..", "client-js", "README.md"), "utf8");
  const m = /<!-- snippet -->\s*```js\n([\s\S]*?)```\s*<!-- \/snippet -->/.exec(readme);
  assert.ok(m, "client-js/README.md holds the snippet between its markers");
  return m[1];
}

test("the README's game client is under 40 lines and plays", async () => {
  const code = readmeSnippet();
  assert.ok(code.trim().split("\n").length < 40, "under 40 lines");
  // Run from this folder, so `@tickwire/client` resolves as it would in a game's own package.
  const child = spawn(process.execPath, ["--input-type=module", "-e", code], {
    cwd: here,
    env: { ...process.env, TICKWIRE_URL: ctx.server.url },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (d) => { out += d; });
  const code_ = await withTimeout("the snippet to finish", new Promise((resolve) => child.once("exit", resolve)));
  assert.equal(code_, 0, out);
  assert.match(out, /^in room .+ as player \d+$/m);
  assert.match(out, /^spawned drone \d+$/m);
  assert.match(out, /^spawned player \d+$/m);
  const positions = [...out.matchAll(/^me at (\d+),(\d+), drawing (\d+), ping [\d.]+ ms$/gm)];
  assert.ok(positions.length >= 2, out);
  assert.ok(positions.every((p) => Number(p[3]) >= 6), "draws the drones and the player");
  const [first, last] = [positions[0], positions.at(-1)];
  assert.ok(first[1] !== last[1] || first[2] !== last[2], "the player moved");
});
