// @tickwire/client: play on a tickwire server from Node or a page (ES modules, no build step).
export { connect, Client } from "./client.js";
export { Room } from "./room.js";
export { TickwireError } from "./errors.js";
export { RenderClock } from "./clock.js";
export { blend, extrapolate } from "./blend.js";
export { checkValues } from "./values.js";
export { encodeInputPacket, inputSlots } from "./input.js";
export { SnapshotStream, compileSchema, decodeBody, view, fromView, quantise, dequantise } from "./decoder.js";
