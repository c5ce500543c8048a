// An entity drawn between two snapshots, as the Rust client's `blend` (client/src/blend.rs):
// fixed-point fields are interpolated, angles the short way round (kept in −π..π), and what
// cannot be in between (ints, enums, bools, entity references) keeps the earlier value until
// the later snapshot is reached. Past the newest snapshot, `extrapolate` carries a position
// along the velocity its schema says it integrates.

const TAU = 2 * Math.PI;

function wrap(a) {
  const w = ((((a + Math.PI) % TAU) + TAU) % TAU) - Math.PI;
  return w;
}

function mix(f, a, b, t) {
  if (f.type === "fixed") return a + (b - a) * t;
  if (f.type === "angle") return wrap(a + wrap(b - a) * t);
  return t >= 1 ? b : a;
}

/** `a` and `b` are entity views (field name → value) of one kind; returns the one at `t` in [0, 1]. */
export function blend(kind, a, b, t) {
  const out = { ...a };
  for (const f of kind.fields) {
    const x = a[f.name];
    const y = b[f.name];
    out[f.name] = f.dims === 1 ? mix(f, x, y, t) : x.map((v, i) => mix(f, v, y[i], t));
  }
  return out;
}

/**
 * `v` (an entity view) `seconds` after its snapshot: each field the schema declares as
 * integrating a velocity (`predict: integrate`) moved along it; the rest as it was.
 */
export function extrapolate(kind, v, seconds) {
  let out = v;
  for (const f of kind.fields) {
    if (f.predict?.type !== "integrate") continue;
    const vel = v[kind.fields[f.predict.from].name];
    if (out === v) out = { ...v };
    const pos = v[f.name];
    out[f.name] = f.dims === 1 ? pos + vel * seconds : pos.map((p, i) => p + vel[i] * seconds);
  }
  return out;
}
