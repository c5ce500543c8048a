// What the library sends, checked against the room's schema before it leaves: an input's or a
// message's fields, each value as its declaration allows (PROTOCOL.md, "Schemas"). A value the
// server would refuse throws here, naming the field, instead of being dropped silently there.

import { TickwireError } from "./errors.js";

function refuse(where, field, why) {
  return new TickwireError("bad_request", `${where}.${field.name}: ${why}`);
}

function checkOne(where, f, v) {
  switch (f.type) {
    case "fixed": {
      if (typeof v !== "number" || !Number.isFinite(v)) throw refuse(where, f, `${v} is not a finite number`);
      const q = Math.round((v * f.step.den) / f.step.num) - f.minQ;
      if (q < 0 || q >= f.count) {
        const lo = (f.minQ * f.step.num) / f.step.den;
        const hi = ((f.minQ + f.count - 1) * f.step.num) / f.step.den;
        throw refuse(where, f, `${v} is outside [${lo}, ${hi}]`);
      }
      return v;
    }
    case "int":
      if (!Number.isInteger(v) || v < f.min || v > f.max) throw refuse(where, f, `${v} is not a whole number in ${f.min}..=${f.max}`);
      return v;
    case "angle":
      if (typeof v !== "number" || !Number.isFinite(v)) throw refuse(where, f, `${v} is not a finite number`);
      return v;
    case "enum":
      if (typeof v === "string" && f.variants.includes(v)) return v;
      if (Number.isInteger(v) && v >= 0 && v < f.variants.length) return v;
      throw refuse(where, f, `${v} is not one of ${f.variants.join(", ")}`);
    case "bool":
      if (typeof v === "boolean") return v;
      if (v === 0 || v === 1) return v === 1;
      throw refuse(where, f, `${v} is not a bool`);
    case "entity":
      if (v === null || v === undefined) return null;
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw refuse(where, f, `${v} is not an entity id`);
      return v;
    default:
      throw refuse(where, f, `unknown field type ${f.type}`);
  }
}

/**
 * `values` (an object, field name → value) checked against `fields` (a schema's input or a
 * message kind's fields): every field present, none unknown, each in range. Returns a plain
 * object with exactly the declared fields, ready to send as JSON.
 */
export function checkValues(where, fields, values = {}) {
  if (values === null || typeof values !== "object") throw new TickwireError("bad_request", `${where}: values must be an object`);
  const known = new Set(fields.map((f) => f.name));
  for (const k of Object.keys(values)) {
    if (!known.has(k)) throw new TickwireError("bad_request", `${where}: no field named ${k}`);
  }
  const out = {};
  for (const f of fields) {
    const v = values[f.name];
    if (v === undefined) throw refuse(where, f, "missing");
    if (f.dims > 1) {
      if (!Array.isArray(v) || v.length !== f.dims) throw refuse(where, f, `needs an array of ${f.dims}`);
      out[f.name] = v.map((x) => checkOne(where, f, x));
    } else {
      out[f.name] = checkOne(where, f, v);
    }
  }
  return out;
}
