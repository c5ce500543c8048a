// The one error type the library rejects and throws with: the server's error code (`room_full`,
// `not_found`, `bad_request`, ...; PROTOCOL.md lists them) or one of the library's own
// (`timeout`, `disconnected`, `bad_request` for a value the schema does not allow).

export class TickwireError extends Error {
  /**
   * @param {string} code a short snake_case word
   * @param {string} message what happened, for a person
   */
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = "TickwireError";
    this.code = code;
    this.reason = message;
  }
}

/** An ack's `{ok: false, error: {code, message}}` as a TickwireError. */
export function fromReply(reply) {
  const e = reply?.error;
  if (e && typeof e.code === "string") return new TickwireError(e.code, String(e.message ?? ""));
  return new TickwireError("bad_reply", "the server's reply is neither ok nor an error");
}
