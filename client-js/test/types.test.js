// index.d.ts and decoder.d.ts describe the library: a client written against them
// (test/example.ts) type-checks under --strict.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");

test("the TypeScript types check a client written against them", () => {
  const run = spawnSync(process.execPath, [tsc, "--noEmit", "--strict", "--target", "es2022", "--module", "nodenext",
    "--moduleResolution", "nodenext", "--lib", "es2022,dom", path.join(here, "example.ts")], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stdout + run.stderr);
});
