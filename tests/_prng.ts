/**
 * mulberry32, a small seeded PRNG shared by the property tests, the fuzzers, the hostile-input storm and the
 * router benchmark: the same seed gives the same sequence on every run, so a failure can be replayed.
 *
 * @module
 */

/** Returns a generator of floats in [0, 1) for `seed`. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
