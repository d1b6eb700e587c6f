import assert from "node:assert/strict";
import { backoffDelay } from "../../lib/client/backoff.ts";

Deno.test("backoffDelay() doubles from the initial delay up to the maximum", () => {
  const delays = [0, 1, 2, 3, 4, 5, 6].map((attempt) => backoffDelay(attempt, { jitter: 0 }));
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
});

Deno.test("backoffDelay() takes a random share of at most `jitter` off the delay", () => {
  const options = { initialDelayMs: 1000, jitter: 0.5 };
  assert.equal(backoffDelay(0, options, () => 0), 1000);
  assert.equal(backoffDelay(0, options, () => 0.5), 750);
  assert.equal(backoffDelay(0, options, () => 0.99), 505);
  assert.equal(backoffDelay(2, { ...options, jitter: 1 }, () => 0.25), 3000);
});

Deno.test("backoffDelay() honours multiplier and maxDelayMs", () => {
  const options = { initialDelayMs: 100, multiplier: 3, maxDelayMs: 1000, jitter: 0 };
  assert.deepEqual([0, 1, 2, 3].map((a) => backoffDelay(a, options)), [100, 300, 900, 1000]);
});
