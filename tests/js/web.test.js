// The web client's files and the origin check, over plain HTTP (the page itself is tested in
// Chromium by browser.test.js): `/` serves the page, `/client/` the library, `/vendor/` the
// official socket.io-client's ES module build (the one the lockfile installs), `/api/modes`
// the modes; a page of a foreign origin is refused, on polling and on the websocket upgrade,
// unless `--cors-origin` lets it in.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { startServer, withTimeout } from "./helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

let plain, open;
test.before(async () => {
  plain = await startServer();
  open = await startServer(["--cors-origin", "http://game.example", "--cors-origin", "https://other.example"]);
});
test.after(async () => { await plain.stop(); await open.stop(); });

test("the page, the library and socket.io-client's ES module build are served", async () => {
  const page = await fetch(`${plain.url}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type"), /^text\/html/);
  const html = await page.text();
  assert.match(html, /<script type="importmap">/);
  // Scripts only from the server and the import map by its hash; browser.test.js shows the
  // page works under it.
  const policy = page.headers.get("content-security-policy");
  const map = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html)[1];
  const hash = createHash("sha256").update(map).digest("base64");
  assert.match(policy, new RegExp(`script-src 'self' 'sha256-${hash.replace(/[+/]/g, "\\$&")}'`));
  assert.match(policy, /frame-ancestors 'none'/);
  for (const file of ["/app.js", "/style.css", "/views/canvas.js", "/client/index.js", "/client/decoder.js"]) {
    const res = await fetch(`${plain.url}${file}`);
    assert.equal(res.status, 200, file);
    const tag = res.headers.get("etag");
    assert.ok(tag, `${file} has an ETag`);
    assert.equal((await fetch(`${plain.url}${file}`, { headers: { "if-none-match": tag } })).status, 304);
  }
  const library = await (await fetch(`${plain.url}/client/decoder.js`)).text();
  assert.equal(library, readFileSync(path.join(here, "..", "..", "client-js", "src", "decoder.js"), "utf8"));
  const vendored = await (await fetch(`${plain.url}/vendor/socket.io.esm.min.js`)).text();
  const installed = readFileSync(path.join(path.dirname(require.resolve("socket.io-client/package.json")), "dist", "socket.io.esm.min.js"), "utf8");
  assert.equal(vendored, installed, "web/vendor holds the socket.io-client the lockfile installs");
  assert.equal((await fetch(`${plain.url}/no-such-file.js`)).status, 404);
  assert.equal((await fetch(`${plain.url}/client/%2e%2e/package.json`)).status, 404);
});

test("/api/modes lists the modes, the default first-registered", async () => {
  const modes = await (await fetch(`${plain.url}/api/modes`)).json();
  assert.deepEqual(modes.map((m) => m.name).sort(), ["arena", "board", "standard"]);
  assert.deepEqual(modes.filter((m) => m.default).map((m) => m.name), ["arena"]);
  assert.equal(modes.find((m) => m.name === "arena").bots, true);
  assert.equal(modes.find((m) => m.name === "board").bots, false);
});

const poll = (server, origin) =>
  fetch(`${server.url}/socket.io/?EIO=4&transport=polling`, { headers: origin ? { origin } : {} });

function upgrade(server, origin) {
  return withTimeout(`a websocket from ${origin}`, new Promise((resolve) => {
    const ws = new WebSocket(`ws://${server.http}/socket.io/?EIO=4&transport=websocket`, origin ? { origin } : {});
    ws.once("open", () => { ws.close(); resolve("open"); });
    ws.once("unexpected-response", (_, res) => resolve(res.statusCode));
    ws.once("error", () => {});
  }));
}

test("a page of another origin is refused by default; the server's own and non-browsers get in", async () => {
  assert.equal((await poll(plain)).status, 200, "no Origin: not a browser");
  assert.equal((await poll(plain, plain.url)).status, 200, "the server's own page");
  const refused = await poll(plain, "http://evil.example");
  assert.equal(refused.status, 403);
  assert.match(await refused.text(), /--cors-origin/);
  assert.equal(await upgrade(plain, "http://evil.example"), 403, "websockets are checked too");
  assert.equal(await upgrade(plain, plain.url), "open");
  assert.equal(await upgrade(plain), "open");
  assert.equal((await fetch(`${plain.url}/api/rooms`, { headers: { origin: "http://evil.example" } })).status, 403);
  const metrics = await (await fetch(`${plain.url}/metrics`)).text();
  assert.match(metrics, /tickwire_origin_refusals_total \d+/);
});

test("--cors-origin lets the listed origins in, with the headers a browser needs", async () => {
  const res = await poll(open, "http://game.example");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("access-control-allow-origin"), "http://game.example");
  assert.equal(res.headers.get("access-control-allow-credentials"), "true");
  const preflight = await fetch(`${open.url}/socket.io/?EIO=4&transport=polling`, {
    method: "OPTIONS",
    headers: { origin: "https://other.example", "access-control-request-method": "POST" },
  });
  assert.equal(preflight.status, 204);
  assert.match(preflight.headers.get("access-control-allow-methods"), /POST/);
  assert.equal(await upgrade(open, "https://other.example"), "open");
  assert.equal((await poll(open, "http://evil.example")).status, 403);
});
