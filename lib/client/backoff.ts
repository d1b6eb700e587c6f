/**
 * Reconnect delays: exponential growth with a cap and random jitter, so a fleet of clients that lost the same
 * broker does not come back in one synchronized wave.
 *
 * @module
 */

/** Options for {@linkcode backoffDelay}. */
export interface BackoffOptions {
  /**
   * The delay before the first retry, in milliseconds.
   * @default {1000}
   */
  initialDelayMs?: number;
  /**
   * The largest delay, in milliseconds.
   * @default {30000}
   */
  maxDelayMs?: number;
  /**
   * The factor the delay grows by after each failed attempt.
   * @default {2}
   */
  multiplier?: number;
  /**
   * How much of the delay is random, from 0 (none) to 1 (anywhere between 0 and the full delay).
   * @default {0.5}
   */
  jitter?: number;
}

/**
 * The delay before retry number `attempt` (0 for the first retry): `min(max, initial * multiplier^attempt)`, of
 * which a `jitter` fraction is taken away at random.
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./backoff.ts";
 * const noJitter = { jitter: 0 };
 * console.assert(backoffDelay(0, noJitter) === 1000);
 * console.assert(backoffDelay(3, noJitter) === 8000);
 * console.assert(backoffDelay(10, noJitter) === 30000);
 * ```
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const initial = options.initialDelayMs ?? 1000;
  const max = options.maxDelayMs ?? 30_000;
  const multiplier = options.multiplier ?? 2;
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
  const exponential = Math.min(max, initial * multiplier ** Math.max(0, attempt));
  return Math.round(exponential * (1 - jitter * random()));
}
