// The web client in a real browser: Debian's Chromium, headless, driven by playwright-core
// (which never downloads a browser of its own), against a live server. Through the page:
// the lobby lists a room and joins it, a match runs with server bots and the canvas draws
// entities that move, the keyboard moves the local player, a second page joins a private room
// by its code, a reload within the grace resumes the same seat, a page whose network is cut
// reconnects, a Bevy client (headless, over QUIC) plays in the page's room, the board game is played by clicks, and a page of another origin connects only
// where --cors-origin lets it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { connect } from "@tickwire/client";
import { spawn } from "node:child_process";
import { useServer, startServer, withTimeout, bevyBin, WAIT_MS } from "./helpers.js";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

const executablePath = process.env.TICKWIRE_CHROMIUM ?? "/usr/bin/chromium";
const ctx = useServer(["--drones", "20", "--countdown-secs", "1"]);
let browser;

test.before(async () => {
  assert.ok(existsSync(executablePath), `${executablePath}: install Debian's chromium (scripts/test does)`);
  // Root in a container has no user namespace for Chromium's sandbox.
  browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
});
test.after(async () => { await browser?.close(); });

/** A fresh browser profile with the web client open in the lobby. */
async function lobbyPage(name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  await context.addInitScript((n) => localStorage.setItem("tickwire.name", n), name);
  await page.goto(`${ctx.server.url}/`);
  await until(page, () => window.tickwire.screen === "lobby" && window.tickwire.client?.playerId > 0);
  page.errors = errors;
  return page;
}

/** Waits for `fn` to hold in the page. */
function until(page, fn, arg) {
  return page.waitForFunction(fn, arg, { timeout: WAIT_MS, polling: 50 });
}

/** Creates a private room through the page's form; resolves with its code. */
async function createPrivate(page, name, mode) {
  if (mode) await page.selectOption("#create-mode", mode);
  await page.fill("#room-name", name);
  await page.check("#private");
  await page.click("#create-room");
  await until(page, () => window.tickwire.screen === "room" && window.tickwire.room.code);
  return page.evaluate(() => window.tickwire.room.code);
}

const state = (page) => page.evaluate(() => {
  const t = window.tickwire;
  return {
    screen: t.screen,
    playerId: t.client?.playerId,
    roomId: t.room?.id ?? null,
    entity: t.room?.entity ?? null,
    me: t.view?.me?.pos ?? null,
    drawn: t.view?.drawn ?? 0,
  };
});

test("the lobby lists a room and joins it; a match with bots draws moving entities; keys move the player", async () => {
  // A room made elsewhere shows in the list.
  const host = await connect(ctx.server.url, { name: "listed", reconnect: false });
  const other = await host.create({ name: "from node", maxPlayers: 4 });
  const page = await lobbyPage("walker");
  await until(page, (id) => document.querySelector(`#rooms tr[data-room="${id}"]`) !== null, other.id);
  await page.click(`#rooms tr[data-room="${other.id}"] button.join`);
  await until(page, () => window.tickwire.screen === "room");
  assert.equal((await state(page)).roomId, other.id);
  await page.click("#leave");
  await until(page, () => window.tickwire.screen === "lobby");
  // Quick join finds the same room: the fullest public one of the mode with a free seat.
  await page.click("#quick-join");
  await until(page, () => window.tickwire.screen === "room");
  assert.equal((await state(page)).roomId, other.id);
  await page.click("#leave");
  await until(page, () => window.tickwire.screen === "lobby");
  host.close();

  // A room of its own with three server bots; ready starts the match.
  await page.fill("#room-name", "bots");
  await page.fill("#bots", "3");
  await page.click("#create-room");
  await until(page, () => window.tickwire.screen === "room" && window.tickwire.view?.me);
  await page.click("#ready");
  await until(page, () => window.tickwire.room?.info && document.querySelector("#chat").textContent.includes("started"));

  // Entities drawn (the player, bots, drones) and moving between frames.
  await until(page, () => window.tickwire.view.drawn >= 24);
  const before = await page.evaluate(() => window.tickwire.view.last.filter((e) => e.kind === "drone").map((e) => [e.id, e.pos]));
  await until(page, (b) => {
    const now = new Map(window.tickwire.view.last.map((e) => [e.id, e.pos]));
    return b.filter(([id, p]) => now.has(id) && Math.hypot(now.get(id)[0] - p[0], now.get(id)[1] - p[1]) > 5).length >= 10;
  }, before);
  // The canvas holds something other than its background.
  const painted = await page.evaluate(() => {
    const c = document.getElementById("canvas");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let lit = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 200) lit += 1;
    return lit;
  });
  assert.ok(painted > 500, `${painted} bright pixels`);

  // Holding D moves the player right (predicted at once, confirmed by the server's snapshots).
  const start = (await state(page)).me;
  await page.keyboard.down("KeyD");
  await until(page, (x) => {
    const t = window.tickwire;
    const server = t.room.me?.pos;
    return t.view.me.pos[0] > x + 60 && server && server[0] > x + 40;
  }, start[0]);
  await page.keyboard.up("KeyD");
  assert.deepEqual(page.errors, []);
  await page.screenshot({ path: process.env.TICKWIRE_SCREENSHOT ?? "/tmp/tickwire-web.png" });
  await page.context().close();
});

test("a second page joins a private room by its code; a reload resumes the seat; a cut network reconnects", async () => {
  const host = await lobbyPage("host");
  const code = await createPrivate(host, "secret");
  assert.match(await host.textContent("#room-code"), new RegExp(code));

  const guest = await lobbyPage("guest");
  await guest.fill("#code", code.toLowerCase());
  await guest.click("#join-code");
  await until(guest, () => window.tickwire.screen === "room");
  await until(host, () => [...window.tickwire.players.values()].includes("guest"));
  const seat = await state(guest);

  // A reload within the grace: the same player, the same entity, no new join.
  await guest.reload();
  await until(guest, () => window.tickwire.screen === "room" && window.tickwire.view?.me);
  const again = await state(guest);
  assert.equal(again.roomId, seat.roomId);
  assert.equal(again.playerId, seat.playerId);
  assert.equal(again.entity, seat.entity);

  // Offline: the socket drops; back online, socket.io-client reconnects and the seat resumes.
  await guest.context().setOffline(true);
  await until(guest, () => document.getElementById("status").dataset.state === "offline");
  await guest.context().setOffline(false);
  await until(guest, () => window.tickwire.reconnected >= 1 && document.getElementById("status").dataset.state === "online");
  const tick = await guest.evaluate(() => window.tickwire.room.tick);
  await until(guest, (t) => window.tickwire.room.tick > t + 30, tick);
  assert.equal((await state(guest)).entity, seat.entity);
  assert.deepEqual(guest.errors, []);
  await host.context().close();
  await guest.context().close();
});

test("the board game is played by clicks, its refusals shown", async () => {
  const red = await lobbyPage("red");
  const code = await createPrivate(red, "four", "board");
  const yellow = await lobbyPage("yellow");
  await yellow.fill("#code", code);
  await yellow.click("#join-code");
  await until(yellow, () => window.tickwire.screen === "room");
  await red.click("#ready");
  await yellow.click("#ready");
  await until(red, () => window.tickwire.view.turn === "red");
  // Out of turn: refused, and the page says why.
  await yellow.click('#board .cell[data-row="5"][data-column="2"]');
  await until(yellow, () => document.getElementById("room-error").textContent.startsWith("refused"));
  await red.click('#board .cell[data-row="5"][data-column="2"]');
  await until(yellow, () => document.querySelector('#board .cell[data-row="0"][data-column="2"]').dataset.disc === "red");
  await until(yellow, () => window.tickwire.view.turn === "yellow");
  // Red stacks column 2 while yellow answers in column 3: four in a row, and both pages show
  // the result.
  const disc = (row, column) => `#board .cell[data-row="${row}"][data-column="${column}"]`;
  for (let row = 1; row <= 3; row++) {
    await yellow.click(disc(5, 3));
    await until(red, () => window.tickwire.view.turn === "red");
    await red.click(disc(5, 2));
    if (row < 3) await until(yellow, () => window.tickwire.view.turn === "yellow");
  }
  for (const page of [red, yellow]) {
    await until(page, () => !document.getElementById("results").hidden);
    assert.match(await page.textContent("#result-list"), /red: .*winner/);
  }
  assert.deepEqual(red.errors, []);
  await red.context().close();
  await yellow.context().close();
});

/**
 * A site of its own origin (another port on 127.0.0.1) whose page connects to `site.target`,
 * with the library served from the site too, so the only cross-origin request is the socket.
 */
async function foreignSite() {
  const site = { target: null };
  const server = createServer((req, res) => {
    if (req.url === "/") {
      res.setHeader("content-type", "text/html");
      res.end(`<!doctype html><script type="importmap">{"imports": {"socket.io-client": "/vendor/socket.io.esm.min.js"}}</script>
<script type="module">
  const { connect } = await import("/client/index.js");
  window.outcome = await connect(${JSON.stringify(site.target)}, { name: "foreign", reconnect: false })
    .then((c) => { c.close(); return "connected"; }, (e) => "refused " + e.code);
</script>`);
      return;
    }
    const file = req.url === "/vendor/socket.io.esm.min.js"
      ? path.join(root, "web", "vendor", "socket.io.esm.min.js")
      : req.url.startsWith("/client/") && path.join(root, "client-js", "src", path.basename(req.url));
    if (!file || !existsSync(file)) { res.statusCode = 404; res.end(); return; }
    res.setHeader("content-type", "text/javascript");
    res.end(readFileSync(file));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  site.origin = `http://127.0.0.1:${server.address().port}`;
  site.close = () => server.close();
  return site;
}

test("a page of another origin connects only where --cors-origin allows it", async () => {
  const page = await (await browser.newContext()).newPage();
  const site = await foreignSite();
  const visit = async () => {
    await page.goto(`${site.origin}/`);
    await until(page, () => window.outcome !== undefined);
    return page.evaluate(() => window.outcome);
  };
  site.target = ctx.server.url;
  assert.match(await visit(), /^refused /, "the default: the server's own pages only");
  const allowing = await startServer(["--cors-origin", site.origin]);
  site.target = allowing.url;
  assert.equal(await visit(), "connected", "--cors-origin names the site");
  await allowing.stop();
  site.close();
  await page.context().close();
});

test("a player on the web and one on Bevy share a room", async () => {
  const page = await lobbyPage("webber");
  const code = await createPrivate(page, "web and bevy");
  // The Bevy app, headless, its bot at the keys, joins by the code over QUIC.
  const bevy = spawn(bevyBin, ["--server", ctx.server.quic, "--cert-sha256", ctx.server.cert, "--name", "bevy",
    "--code", code, "--headless", "--bot", "--ready", "--duration", "8", "--json"], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  bevy.stdout.on("data", (d) => { out += d; });
  const exited = new Promise((resolve) => bevy.once("exit", resolve));
  await until(page, () => [...window.tickwire.players.values()].includes("bevy"));
  const bevyId = await page.evaluate(() => [...window.tickwire.players].find(([, n]) => n === "bevy")[0]);
  // The page draws the Bevy player's entity, and it moves.
  const at = await until(page, (id) => window.tickwire.view.last.find((e) => e.owner === id)?.pos, bevyId).then((h) => h.jsonValue());
  await until(page, ([id, p]) => {
    const e = window.tickwire.view.last.find((x) => x.owner === id);
    return e && Math.hypot(e.pos[0] - p[0], e.pos[1] - p[1]) > 20;
  }, [bevyId, at]);
  assert.equal(await withTimeout("the Bevy client to finish", exited, WAIT_MS + 10000), 0, out);
  const report = JSON.parse(out.trim().split("\n").at(-1));
  assert.ok(report.snapshots > 100, `the Bevy client decoded ${report.snapshots} snapshots`);
  assert.equal(report.error, null);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
