/**
 * Failed logins per address: a password guesser is slowed to a few guesses a minute per address, and, since each
 * guess costs the broker a PBKDF2 hash, cannot keep the hashing queue full from one address either.
 *
 * @module
 */

import { type Clock, REAL_CLOCK } from "../../clock.ts";

/** Options for {@linkcode LoginThrottle}. */
export interface LoginThrottleOptions {
  /**
   * Failed logins an address may make per minute, all at once or spread out; past them its logins are refused
   * without a hash until the minute has refilled. `Infinity` turns the throttle off.
   *
   * @default {20}
   */
  readonly maxFailedLoginsPerMinute?: number;
  /** Time, read with `monotonic()` so that a step of the wall clock neither locks out nor frees anyone. */
  readonly clock?: Clock;
  /**
   * Addresses remembered; past them the one remembered longest is forgotten.
   *
   * @default {10000}
   */
  readonly maxAddresses?: number;
}

interface Bucket {
  /** Failures still allowed (fractional while refilling). */
  tokens: number;
  at: number;
}

/** Counts failed logins per address (host, without the port). */
export class LoginThrottle {
  readonly #burst: number;
  readonly #perMs: number;
  readonly #clock: Clock;
  readonly #maxAddresses: number;
  readonly #buckets = new Map<string, Bucket>();

  /** A throttle with `options`' limits. */
  constructor(options: LoginThrottleOptions = {}) {
    this.#burst = options.maxFailedLoginsPerMinute ?? 20;
    if (!(this.#burst > 0)) throw new RangeError(`maxFailedLoginsPerMinute must be > 0, not ${this.#burst}`);
    this.#perMs = this.#burst / 60_000;
    this.#clock = options.clock ?? REAL_CLOCK;
    this.#maxAddresses = options.maxAddresses ?? 10_000;
  }

  /** Whether `host` has used up its failed logins for now. */
  blocked(host: string): boolean {
    if (this.#burst === Infinity) return false;
    const bucket = this.#buckets.get(host);
    return bucket !== undefined && this.#refill(bucket) < 1;
  }

  /** Counts a failed login from `host`. */
  failed(host: string): void {
    if (this.#burst === Infinity) return;
    let bucket = this.#buckets.get(host);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#maxAddresses) this.#buckets.delete(this.#buckets.keys().next().value!);
      bucket = { tokens: this.#burst, at: this.#clock.monotonic() };
      this.#buckets.set(host, bucket);
    }
    this.#refill(bucket);
    bucket.tokens = Math.max(0, bucket.tokens - 1);
  }

  #refill(bucket: Bucket): number {
    const now = this.#clock.monotonic();
    bucket.tokens = Math.min(this.#burst, bucket.tokens + Math.max(0, now - bucket.at) * this.#perMs);
    bucket.at = now;
    return bucket.tokens;
  }
}
