/**
 * A Prometheus-style histogram: counts of observations at or below fixed upper bounds, their sum and their
 * number. Kept per bucket (not cumulative) so an observation touches one slot; the renderer sums at scrape.
 *
 * @module
 */

/** Delivery latency and storage commit time, seconds (`../shared/OPERATIONS.md` section 3.3). */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** Event-loop lag, seconds. */
export const LOOP_LAG_BUCKETS: readonly number[] = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
];

/**
 * Observations counted into buckets; every count only grows.
 *
 * @example
 * ```ts
 * import { Histogram } from "./histogram.ts";
 * const h = new Histogram([0.1, 1]);
 * h.observe(0.05);
 * h.observe(3);
 * console.assert(h.count === 2 && h.cumulative()[0] === 1 && h.cumulative()[1] === 1);
 * ```
 */
export class Histogram {
  /** Upper bounds, ascending; `+Inf` is implied. */
  readonly bounds: readonly number[];
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  readonly #counts: Float64Array;
  /** Sum of the observations. */
  sum = 0;
  /** Number of observations. */
  count = 0;

  /**
   * Buckets with the upper bounds `bounds` (and `+Inf`), all at zero.
   *
   * @throws {RangeError} when `bounds` is not strictly ascending.
   */
  constructor(bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i]! > bounds[i - 1]!)) throw new RangeError("histogram bounds must ascend");
    }
    this.bounds = bounds;
    this.#counts = new Float64Array(bounds.length + 1);
  }

  /** Counts `value` in the first bucket whose bound is at or above it. */
  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.#counts[i]!++;
    this.sum += value;
    this.count++;
  }

  /** Observations at or below each bound, in bound order (the `+Inf` bucket is {@linkcode Histogram.count}). */
  cumulative(): number[] {
    const out: number[] = new Array(this.bounds.length);
    let total = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      total += this.#counts[i]!;
      out[i] = total;
    }
    return out;
  }
}
