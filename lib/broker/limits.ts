/**
 * Rate limits: a token bucket, and a per-address table of them that forgets idle addresses.
 *
 * @module
 */

import type { Clock } from "../clock.ts";

/** A token bucket: `rate` tokens per second, holding at most `burst`; times are monotonic milliseconds. */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #at: number;

  constructor(rate: number, burst: number, now: number) {
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  /** Takes `count` tokens if there are enough; false when the rate is exceeded. */
  take(now: number, count = 1): boolean {
    if (this.#rate === Infinity) return true;
    // `now` is monotonic; a reading that went back anyway (a caller on the wall clock) adds nothing, not a debt.
    const elapsed = Math.max(0, now - this.#at) / 1000;
    this.#at = Math.max(now, this.#at);
    this.#tokens = Math.min(this.#burst, this.#tokens + elapsed * this.#rate);
    if (this.#tokens < count) return false;
    this.#tokens -= count;
    return true;
  }

  /** True when the bucket is full again (nothing to remember). */
  idle(now: number): boolean {
    return this.#tokens + ((now - this.#at) / 1000) * this.#rate >= this.#burst;
  }
}

/** One token bucket per remote address, bounded in size. */
export class AddressLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #clock: Clock;
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #maxEntries: number;

  /**
   * `rate` per second per address, with a burst of `rate` (at least 1); `Infinity` turns it off. Past
   * `maxEntries` addresses, idle ones are forgotten first, then the oldest half.
   */
  constructor(rate: number, clock: Clock, maxEntries = 100_000) {
    this.#rate = rate;
    this.#burst = Math.max(1, rate);
    this.#clock = clock;
    this.#maxEntries = maxEntries;
  }

  /** Takes a token for `address`; false when it exceeds its rate. */
  take(address: string): boolean {
    if (this.#rate === Infinity) return true;
    const now = this.#clock.monotonic(); // a step of the wall clock must not lock addresses out (issue #15 item 13)
    let bucket = this.#buckets.get(address);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#maxEntries) this.#prune(now);
      bucket = new TokenBucket(this.#rate, this.#burst, now);
      this.#buckets.set(address, bucket);
    }
    return bucket.take(now);
  }

  #prune(now: number): void {
    for (const [address, bucket] of this.#buckets) if (bucket.idle(now)) this.#buckets.delete(address);
    // Still full of busy addresses: forget the oldest half rather than grow without bound.
    if (this.#buckets.size >= this.#maxEntries) {
      let drop = this.#buckets.size >> 1;
      for (const address of this.#buckets.keys()) {
        if (drop-- <= 0) break;
        this.#buckets.delete(address);
      }
    }
  }
}

/** The host part of "host:port" or "[v6]:port". */
export function hostOf(remoteAddress: string): string {
  if (remoteAddress.startsWith("[")) return remoteAddress.slice(1, remoteAddress.indexOf("]"));
  const colon = remoteAddress.lastIndexOf(":");
  return colon < 0 ? remoteAddress : remoteAddress.slice(0, colon);
}
