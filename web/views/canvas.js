// Any game whose entities have a 2-d `pos` drawn on a canvas of its 1000×1000 world, as the
// library's `room.frame` gives them (interpolated, the player's own predicted): a circle per
// entity coloured by kind, its `aim` or `angle` as a line, `health` as a bar. The keyboard
// (WASD or arrows) and the mouse (aim; hold to fire) become the game's input by the fields
// its schema declares: `move`/`aim`/`buttons` (the arena) or `dx`/`dy` (the standard workload).

import { predictors } from "./predict.js";

const WORLD = 1000;
const COLOURS = { player: "#5ab0ff", drone: "#e0a040", projectile: "#ffffff" };
const RADIUS = { player: 16, drone: 14, projectile: 4 };
const KEYS = {
  KeyW: [0, 1], ArrowUp: [0, 1], KeyS: [0, -1], ArrowDown: [0, -1],
  KeyA: [-1, 0], ArrowLeft: [-1, 0], KeyD: [1, 0], ArrowRight: [1, 0],
};

export function canvasView(room, page, canvas) {
  const g = canvas.getContext("2d");
  const held = new Set();
  const mouse = { x: WORLD / 2, y: WORLD / 2, down: false };
  const inputs = new Set((room.schema.input ?? []).map((f) => f.name));
  room.predict = predictors[room.info.mode] ?? null;
  const view = { drawn: 0, last: [], me: null, work: null, stop };

  const toWorld = (e) => {
    const r = canvas.getBoundingClientRect();
    return { x: ((e.clientX - r.left) / r.width) * WORLD, y: WORLD - ((e.clientY - r.top) / r.height) * WORLD };
  };
  const onKey = (down) => (e) => {
    if (!KEYS[e.code] || e.target instanceof HTMLInputElement) return;
    e.preventDefault();
    if (down) held.add(e.code); else held.delete(e.code);
  };
  const keydown = onKey(true);
  const keyup = onKey(false);
  const move = (e) => Object.assign(mouse, toWorld(e));
  const press = (down) => (e) => { if (e.button === 0) mouse.down = down; };
  const mousedown = press(true);
  const mouseup = press(false);
  window.addEventListener("keydown", keydown);
  window.addEventListener("keyup", keyup);
  const blur = () => held.clear();
  window.addEventListener("blur", blur);
  canvas.addEventListener("mousemove", move);
  canvas.addEventListener("mousedown", mousedown);
  window.addEventListener("mouseup", mouseup);

  function direction() {
    let x = 0, y = 0;
    for (const k of held) { x += KEYS[k][0]; y += KEYS[k][1]; }
    const len = Math.hypot(x, y);
    return len > 0 ? [x / len, y / len] : [0, 0];
  }

  function steer(me) {
    if (room.spectator) return;
    const [x, y] = direction();
    if (inputs.has("move")) {
      const pos = me?.pos ?? [WORLD / 2, WORLD / 2];
      const aim = Math.atan2(mouse.y - pos[1], mouse.x - pos[0]);
      room.setInput({ move: [x, y], aim, buttons: mouse.down });
    } else if (inputs.has("dx") && inputs.has("dy")) {
      room.setInput({ dx: 4 * x, dy: 4 * y });
    }
  }

  function draw(e, scale, mine) {
    const pos = e.pos;
    if (!Array.isArray(pos) || pos.length !== 2) return false;
    const px = pos[0] * scale;
    const py = (WORLD - pos[1]) * scale;
    const r = (RADIUS[e.kind] ?? 10) * scale;
    // A dead player keeps its entity with health 0 until it respawns.
    g.globalAlpha = e.kind === "player" && e.health === 0 ? 0.3 : 1;
    g.fillStyle = mine ? "#60e080" : COLOURS[e.kind] ?? "#c080ff";
    g.beginPath();
    g.arc(px, py, Math.max(r, 1.5), 0, 2 * Math.PI);
    g.fill();
    const heading = typeof e.aim === "number" ? e.aim : e.angle;
    if (typeof heading === "number" && e.kind !== "projectile") {
      g.strokeStyle = g.fillStyle;
      g.beginPath();
      g.moveTo(px, py);
      g.lineTo(px + Math.cos(heading) * r * 1.8, py - Math.sin(heading) * r * 1.8);
      g.stroke();
    }
    if (typeof e.health === "number" && e.kind === "player") {
      g.fillStyle = "#303a4a";
      g.fillRect(px - r, py - r - 8 * scale, 2 * r, 4 * scale);
      g.fillStyle = "#70d070";
      g.fillRect(px - r, py - r - 8 * scale, (2 * r * Math.min(e.health, 100)) / 100, 4 * scale);
    }
    g.globalAlpha = 1;
    return true;
  }

  let raf = requestAnimationFrame(frame);
  function frame() {
    raf = requestAnimationFrame(frame);
    const began = performance.now();
    const size = canvas.clientWidth * devicePixelRatio;
    if (canvas.width !== size) { canvas.width = size; canvas.height = size; }
    const world = room.frame(performance.now() / 1000);
    const me = world.find((e) => e.id === room.entity) ?? null;
    steer(me);
    g.fillStyle = "#0b0e14";
    g.fillRect(0, 0, canvas.width, canvas.height);
    const scale = canvas.width / WORLD;
    let drawn = 0;
    for (const e of world) if (draw(e, scale, e.id === room.entity)) drawn += 1;
    view.drawn = drawn;
    view.last = world;
    view.me = me;
    // A benchmark (tests/js/bench/web.mjs) sets `work` to an array to collect frame costs.
    view.work?.push(performance.now() - began);
  }

  function stop() {
    cancelAnimationFrame(raf);
    window.removeEventListener("keydown", keydown);
    window.removeEventListener("keyup", keyup);
    window.removeEventListener("mouseup", mouseup);
    window.removeEventListener("blur", blur);
    canvas.removeEventListener("mousemove", move);
    canvas.removeEventListener("mousedown", mousedown);
  }
  return view;
}
