// The web client the server serves at `/`: a lobby (rooms, quick join, create, join by code)
// and a room (players, ready, start, chat, results) around the game's view — the arena and any
// game with 2-d positions drawn on a canvas, the board game as a grid. It is written on
// @tickwire/client alone; `window.tickwire` exposes its state for the browser tests.

import { connect } from "@tickwire/client";
import { canvasView } from "./views/canvas.js";
import { boardView } from "./views/board.js";

const $ = (id) => document.getElementById(id);
const TOKEN = "tickwire.token";
const NAME = "tickwire.name";

const page = { client: null, room: null, view: null, players: new Map(), modes: [], fps: 0, frames: 0, results: null };
window.tickwire = page;

function show(screen) {
  $("lobby").hidden = screen !== "lobby";
  $("room").hidden = screen !== "room";
  page.screen = screen;
}

function status(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

function randomName() {
  const n = new Uint32Array(1);
  crypto.getRandomValues(n);
  return `web-${n[0] % 10000}`;
}

/** Runs a call from a button, showing its refusal where the player looks. */
async function attempt(where, f) {
  $(where).textContent = "";
  try {
    await f();
  } catch (e) {
    $(where).textContent = e.code ? `${e.code}: ${e.reason}` : String(e.message ?? e);
  }
}

// ---- connection ----

async function open() {
  const name = localStorage.getItem(NAME) || randomName();
  $("name").value = name;
  const token = sessionStorage.getItem(TOKEN) || undefined;
  status("connecting", "connecting…");
  const client = await connect(location.origin, { name, token });
  page.client = client;
  status("online", `online as ${name} (player ${client.playerId})`);
  client.onDisconnect((reason) => status("offline", `offline (${reason}), reconnecting…`));
  client.onReconnect((room) => {
    status("online", `online as ${name} (player ${client.playerId})`);
    if (room) page.reconnected = (page.reconnected ?? 0) + 1;
    else left("your seat was given up");
  });
  client.onShutdown((reason) => status("offline", `the server is stopping: ${reason}`));
  if (client.room) entered(client.room);
  else show("lobby");
}

// ---- lobby ----

async function loadModes() {
  const res = await fetch("/api/modes");
  page.modes = await res.json();
  for (const select of [$("quick-mode"), $("create-mode")]) {
    select.replaceChildren(...page.modes.map((m) => new Option(m.name, m.name, m.default, m.default)));
  }
}

async function refreshRooms() {
  if (!page.client || page.screen !== "lobby") return;
  const rooms = await page.client.listRooms().catch(() => null);
  if (!rooms) return;
  const rows = rooms.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.room = r.id;
    for (const text of [r.name, r.mode, `${r.players}/${r.maxPlayers}`, r.state]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    const join = document.createElement("button");
    join.textContent = "Join";
    join.className = "join";
    join.onclick = () => attempt("lobby-error", async () => entered(await page.client.join(r.id)));
    const spectate = document.createElement("button");
    spectate.textContent = "Watch";
    spectate.onclick = () => attempt("lobby-error", async () => entered(await page.client.spectate(r.id)));
    const td = document.createElement("td");
    td.append(join, " ", spectate);
    tr.append(td);
    return tr;
  });
  $("rooms").tBodies[0].replaceChildren(...rows);
  page.listed = rooms.length;
}

$("quick").onsubmit = (e) => {
  e.preventDefault();
  attempt("lobby-error", async () => entered(await page.client.quickJoin($("quick-mode").value)));
};
$("by-code").onsubmit = (e) => {
  e.preventDefault();
  attempt("lobby-error", async () => entered(await page.client.join($("code").value.trim().toUpperCase())));
};
$("create").onsubmit = (e) => {
  e.preventDefault();
  attempt("lobby-error", async () => {
    const mode = page.modes.find((m) => m.name === $("create-mode").value);
    const bots = Number($("bots").value) || 0;
    entered(await page.client.create({
      name: $("room-name").value || "room",
      mode: mode?.name,
      maxPlayers: Number($("max-players").value) || 8,
      private: $("private").checked,
      ...(bots > 0 && mode?.bots ? { bots } : {}),
    }));
  });
};
$("who").onsubmit = (e) => e.preventDefault();
$("name").onchange = async () => {
  localStorage.setItem(NAME, $("name").value.trim());
  if (page.room) return;
  page.client?.close();
  await open().catch((e) => status("offline", e.message));
};

// ---- room ----

function entered(room) {
  page.room = room;
  page.players = new Map();
  page.results = null;
  sessionStorage.setItem(TOKEN, page.client.token ?? "");
  $("room-title").textContent = `${room.info.name} (${room.info.mode})`;
  $("room-code").textContent = room.code ? `code ${room.code}` : "";
  $("room-state").textContent = room.info.state;
  $("chat").replaceChildren();
  $("results").hidden = true;
  $("ready").hidden = room.spectator;
  const board = room.schema.kinds.some((k) => k.name === "board");
  $("canvas").hidden = board;
  $("board").hidden = !board;
  page.view = board ? boardView(room, page, $("board")) : canvasView(room, page, $("canvas"));
  room.onEvent(roomEvent);
  room.onLeave((reason) => left(reason === "left" ? "" : `left the room: ${reason}`));
  if (page.client.playerId !== null) page.players.set(room.playerId, page.client.name);
  drawPlayers();
  show("room");
}

function left(why) {
  page.view?.stop();
  page.view = null;
  page.room = null;
  sessionStorage.removeItem(TOKEN);
  $("lobby-error").textContent = why;
  show("lobby");
  refreshRooms();
}

function drawPlayers() {
  $("players").replaceChildren(...[...page.players].map(([id, name]) => {
    const li = document.createElement("li");
    li.textContent = `${name} (${id})`;
    return li;
  }));
}

function say(text) {
  const li = document.createElement("li");
  li.textContent = text;
  $("chat").append(li);
  $("chat").scrollTop = $("chat").scrollHeight;
}

function roomEvent(e) {
  switch (e.type) {
    case "player_joined": page.players.set(e.playerId, e.name); drawPlayers(); break;
    case "player_left": page.players.delete(e.playerId); drawPlayers(); break;
    case "chat": say(`${e.name}: ${e.text}`); break;
    case "state": $("room-state").textContent = e.seconds ? `${e.state} (${e.seconds} s)` : e.state; break;
    case "match_started": $("results").hidden = true; say(`match ${e.matchNo} started`); break;
    case "match_ended": {
      page.results = e;
      $("results").hidden = false;
      $("result-list").replaceChildren(...e.players.map((p) => {
        const li = document.createElement("li");
        const stats = Object.entries(p.stats ?? {}).map(([k, v]) => `${k} ${v}`).join(", ");
        li.textContent = `${p.name}: ${p.score}${stats ? ` (${stats})` : ""}${p.playerId === e.winner ? " — winner" : ""}`;
        return li;
      }));
      break;
    }
    case "player_disconnected": say(`player ${e.playerId} lost connection (${e.graceSecs} s to return)`); break;
    default: break;
  }
}

$("ready").onclick = () => attempt("room-error", async () => {
  const ready = $("ready").dataset.ready !== "true";
  await page.client.ready(ready);
  $("ready").dataset.ready = String(ready);
  $("ready").textContent = ready ? "Not ready" : "Ready";
});
$("start").onclick = () => attempt("room-error", () => page.client.start());
$("leave").onclick = () => attempt("room-error", () => page.client.leave());
$("say").onsubmit = (e) => {
  e.preventDefault();
  const text = $("chat-text").value;
  $("chat-text").value = "";
  if (text.trim()) attempt("room-error", () => page.client.chat(text));
};

// ---- the frame counter the header shows ----

let counted = 0;
let since = performance.now();
function count(t) {
  counted += 1;
  page.frames += 1;
  if (t - since >= 1000) {
    page.fps = (counted * 1000) / (t - since);
    counted = 0;
    since = t;
    const s = page.client?.stats;
    if (s) {
      const ping = s.ping === null ? "–" : `${s.ping.toFixed(0)} ms`;
      $("stats").textContent = `${page.fps.toFixed(0)} fps · ping ${ping} · ${s.snapshotRate.toFixed(0)} snapshots/s · ${(s.bytesPerSecond / 1000).toFixed(1)} kB/s`;
    }
  }
  requestAnimationFrame(count);
}
requestAnimationFrame(count);

await loadModes().catch((e) => { $("lobby-error").textContent = `could not read the modes: ${e.message}`; });
await open().catch((e) => status("offline", e.message));
setInterval(() => refreshRooms(), 2000);
refreshRooms();
