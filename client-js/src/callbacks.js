/** A set of callbacks; `add` returns the function that takes the callback out again. */
export class Callbacks {
  constructor() { this.set = new Set(); }
  add(cb) {
    if (typeof cb !== "function") throw new TypeError("a callback must be a function");
    this.set.add(cb);
    return () => this.set.delete(cb);
  }
  get size() { return this.set.size; }
  // A callback that throws is the page's bug, not the stream's: it is reported (as an uncaught
  // error, where the page sees it) and the others still run.
  call(...args) {
    for (const cb of this.set) {
      try { cb(...args); } catch (e) { queueMicrotask(() => { throw e; }); }
    }
  }
}
