/**
 * The time seam: keep-alive, expiry, retry and backoff read time and set timers only through a {@linkcode Clock},
 * so tests drive them with a {@linkcode ManualClock} instead of sleeping.
 *
 * @module
 */

/** A timer handle returned by {@linkcode Clock.setTimeout} (Deno 2.9 timers are objects, manual ones numbers). */
export type TimerId = ReturnType<typeof setTimeout> | number;

/** Time and timers. */
export interface Clock {
  /** Milliseconds since the epoch: for timestamps that outlive the process (message and session expiry). */
  now(): number;
  /**
   * Milliseconds from an arbitrary origin that never go back and do not follow steps of the wall clock: for
   * intervals inside the process (keep alive, connect timeouts, rate limits, will delays).
   */
  monotonic(): number;
  /** Calls `callback` after `ms` milliseconds. */
  setTimeout(callback: () => void, ms: number): TimerId;
  /** Cancels a timer; unknown ids are ignored. */
  clearTimeout(id: TimerId): void;
}

/**
 * The longest delay one timer takes, 2^31-1 ms (about 24.8 days): Deno fires a longer one at once (with a
 * `TimeoutOverflowWarning`), so {@linkcode REAL_CLOCK} waits out longer delays in steps of at most this.
 */
export const MAX_TIMER_DELAY = 2_147_483_647;

/** Long timers by id (negative, unlike any global timer's); the id stays while each step re-arms the timer. */
const longTimers = new Map<number, ReturnType<typeof setTimeout>>();
let nextLongTimer = -1;

/** Arms a timer for `ms` over 2^31-1 ms: steps until the due time on the monotonic clock has come. */
function setLongTimeout(callback: () => void, ms: number): number {
  const id = nextLongTimer--;
  const due = performance.now() + ms;
  const step = (): void => {
    const left = due - performance.now();
    if (left <= 0) {
      longTimers.delete(id);
      callback();
      return;
    }
    longTimers.set(id, setTimeout(step, Math.min(left, MAX_TIMER_DELAY)));
  };
  longTimers.set(id, setTimeout(step, MAX_TIMER_DELAY));
  return id;
}

/**
 * The real clock: `Date.now`, `performance.now` and the global timers. A delay over 2^31-1 ms (a Session Expiry
 * or Will Delay of more than 2,147,483 s) is waited out in steps; a negative one is 0.
 */
export const REAL_CLOCK: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (callback, ms) =>
    ms > MAX_TIMER_DELAY ? setLongTimeout(callback, ms) : setTimeout(callback, ms > 0 ? ms : 0),
  clearTimeout: (id) => {
    if (typeof id === "number" && id < 0) {
      const timer = longTimers.get(id);
      if (timer === undefined) return;
      longTimers.delete(id);
      clearTimeout(timer);
    } else {
      clearTimeout(id as ReturnType<typeof setTimeout>);
    }
  },
};

/**
 * A clock that moves only when told. Timers fire, in time order, during {@linkcode ManualClock.advance}.
 *
 * @example
 * ```ts
 * import { ManualClock } from "./clock.ts";
 * const clock = new ManualClock(0);
 * let fired = false;
 * clock.setTimeout(() => fired = true, 1000);
 * clock.advance(999);
 * console.assert(!fired);
 * clock.advance(1);
 * console.assert(fired);
 * ```
 */
export class ManualClock implements Clock {
  #now: number;
  /** How far the wall clock has been stepped away from the monotonic one. */
  #wallStep = 0;
  #nextId = 1;
  #timers = new Map<number, { at: number; callback: () => void }>();

  /** Starts the clock at `start` ms; time moves only when {@linkcode ManualClock.advance} is called. */
  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now + this.#wallStep;
  }

  monotonic(): number {
    return this.#now;
  }

  /** Steps the wall clock (`now`) by `ms`, forward or back, as an operator or NTP might; timers and `monotonic` do not move. */
  stepWallClock(ms: number): void {
    this.#wallStep += ms;
  }

  setTimeout(callback: () => void, ms: number): TimerId {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(id: TimerId): void {
    if (typeof id === "number") this.#timers.delete(id);
  }

  /** Pending timers. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing due timers in order (timers set by callbacks fire too when due). */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let nextId: number | undefined;
      let nextAt = Infinity;
      for (const [id, timer] of this.#timers) {
        if (timer.at <= target && timer.at < nextAt) {
          nextAt = timer.at;
          nextId = id;
        }
      }
      if (nextId === undefined) break;
      const timer = this.#timers.get(nextId)!;
      this.#timers.delete(nextId);
      this.#now = Math.max(this.#now, timer.at);
      timer.callback();
    }
    this.#now = target;
  }
}
