// The built-in games' movement rules for predicting the player's own entity, one tick of `dt`
// per held input (docs/PROTOCOL.md, "Movement rules"; games/*/src). A game whose rules are
// not here is drawn as the server last sent it.

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

/** The arena: `clamp_length(move, 1) × 220` u/s, kept 16 from the walls; the dead stay put. */
function arena(e, input, dt) {
  if (e.health === 0) return;
  let [x, y] = input.move;
  const len = Math.hypot(x, y);
  if (len > 1) { x /= len; y /= len; }
  const before = e.pos;
  const pos = [clamp(before[0] + x * 220 * dt, 16, 1000 - 16), clamp(before[1] + y * 220 * dt, 16, 1000 - 16)];
  e.vel = [(pos[0] - before[0]) / dt, (pos[1] - before[1]) / dt];
  e.pos = pos;
}

/** The standard workload: moved by (dx, dy) a tick, clamped to the area. */
function standard(e, input) {
  e.pos = [clamp(e.pos[0] + input.dx, 0, 1000), clamp(e.pos[1] + input.dy, 0, 1000)];
}

export const predictors = { arena, standard };
