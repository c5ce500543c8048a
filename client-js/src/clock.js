// The render clock, as the Bevy client's (client-bevy/src/interpolation.rs): it runs in server
// ticks, learns from each snapshot's arrival the offset between the server's tick clock and the
// page's (smoothed), the interval between snapshots and their jitter, and shows the world
// `delay = interval + 3 × jitter + one tick` behind the newest tick it expects: one interval
// so a later snapshot has usually arrived to interpolate towards, three mean deviations of
// jitter, a tick for the frame's phase. It eases (at most 10% fast or slow) rather than jumps,
// unless it is a quarter second off (a stall, a new room). Pure: times come in as arguments.

const MIN_DELAY = 0.01;
const MAX_DELAY = 0.3;
const SMOOTHING = 0.1;
const MAX_RATE_CHANGE = 0.1;
const RESET_ERROR = 0.25;

export class RenderClock {
  constructor() { this.reset(); }

  reset() {
    this.offset = null;
    this.jitter = 0;
    this.interval = 1 / 30;
    this.delay = 0.1;
    this.at = null;
    this.lastTick = null;
    this.lastFrame = null;
    this.tickRate = 60;
  }

  /** Learns from a snapshot of `tick` that arrived at `arrived` (seconds, the page's clock). */
  observe(tick, tickRate, arrived) {
    if (tickRate > 0) this.tickRate = tickRate;
    if (this.lastTick !== null && tick <= this.lastTick) return;
    const sample = tick / this.tickRate - arrived;
    if (this.offset === null) {
      this.offset = sample;
    } else {
      const error = sample - this.offset;
      this.offset += error * SMOOTHING;
      this.jitter += (Math.abs(error) - this.jitter) * SMOOTHING;
    }
    if (this.lastTick !== null) {
      const gap = (tick - this.lastTick) / this.tickRate;
      this.interval += (gap - this.interval) * SMOOTHING;
    }
    this.lastTick = tick;
    this.delay = Math.min(Math.max(this.interval + 3 * this.jitter + 1 / this.tickRate, MIN_DELAY), MAX_DELAY);
  }

  /** Moves the clock on to `now` (seconds); returns where it shows in fractional ticks, or null before any snapshot. */
  advance(now) {
    if (this.offset === null) return null;
    const frame = this.lastFrame === null ? 0 : Math.max(now - this.lastFrame, 0);
    this.lastFrame = now;
    const target = now + this.offset - this.delay;
    if (this.at !== null && Math.abs(target - (this.at + frame)) < RESET_ERROR) {
      const error = target - (this.at + frame);
      const limit = MAX_RATE_CHANGE * frame;
      this.at = this.at + frame + Math.min(Math.max(error, -limit), limit);
    } else {
      this.at = target;
    }
    return this.at * this.tickRate;
  }
}
