/**
 * Event-loop lag: a 500 ms timer, re-armed each time it fires, and how late it fired. A one-thread broker
 * that is saturated (a long GC, a burst of fan-out, a slow synchronous step) shows it here first, before any
 * queue fills.
 *
 * @module
 */

import type { Histogram } from "./metrics/histogram.ts";

/** How often the lag is sampled, ms. */
export const LOOP_LAG_INTERVAL_MS = 500;

/** Observes the event loop's lag (seconds) into a histogram while started. */
export class LoopLagMonitor {
  readonly #histogram: Histogram;
  readonly #interval: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #due = 0;

  /** Observes into `histogram`, a sample every `intervalMs`. */
  constructor(histogram: Histogram, intervalMs: number = LOOP_LAG_INTERVAL_MS) {
    this.#histogram = histogram;
    this.#interval = intervalMs;
  }

  /** Starts sampling (again a no-op while started). */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#arm();
  }

  /** Stops sampling. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    this.#due = performance.now() + this.#interval;
    const timer = setTimeout(this.#fire, this.#interval);
    // The broker's sockets keep the process alive, not this timer.
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  readonly #fire = (): void => {
    this.#histogram.observe(Math.max(0, performance.now() - this.#due) / 1000);
    this.#arm();
  };
}
