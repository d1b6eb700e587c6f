/** The real clock's timers (the global timers behind a {@linkcode Clock}) and the manual clock's two readings. */

import assert from "node:assert/strict";
import { ManualClock, MAX_TIMER_DELAY, REAL_CLOCK } from "../lib/clock.ts";

/** Replaces the global timers and `performance.now` while `body` runs; timers fire only when told. */
function withFakeTimers(
  body: (
    fake: { armed: Map<number, { ms: number; callback: () => void }>; advance(ms: number): void },
  ) => void,
): void {
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  const realNow = performance.now;
  let now = 0;
  let nextId = 1;
  const armed = new Map<number, { ms: number; at: number; callback: () => void }>();
  globalThis.setTimeout = ((callback: () => void, ms: number) => {
    const id = nextId++;
    armed.set(id, { ms, at: now + ms, callback });
    return id;
  }) as unknown as typeof setTimeout;
  globalThis.clearTimeout = ((id: number) => armed.delete(id)) as typeof clearTimeout;
  performance.now = () => now;
  try {
    body({
      armed,
      advance(ms: number): void {
        const target = now + ms;
        for (;;) {
          const due = [...armed].filter(([, t]) => t.at <= target).sort((a, b) => a[1].at - b[1].at)[0];
          if (due === undefined) break;
          armed.delete(due[0]);
          now = due[1].at;
          due[1].callback();
        }
        now = target;
      },
    });
  } finally {
    globalThis.setTimeout = realSet;
    globalThis.clearTimeout = realClear;
    performance.now = realNow;
  }
}

Deno.test("REAL_CLOCK.setTimeout() waits out a delay longer than 2^31-1 ms in bounded steps", () => {
  withFakeTimers((fake) => {
    let fired = 0;
    const delay = 999_999_999 * 1000; // a v5 Session Expiry Interval of 999,999,999 s
    REAL_CLOCK.setTimeout(() => fired++, delay);
    for (const timer of fake.armed.values()) {
      assert.ok(timer.ms <= MAX_TIMER_DELAY, `armed for ${timer.ms} ms`);
    }
    fake.advance(delay - 1);
    assert.equal(fired, 0, "not before the delay");
    assert.equal(fake.armed.size, 1, "one step armed at a time");
    fake.advance(1);
    assert.equal(fired, 1, "at the delay");
    assert.equal(fake.armed.size, 0);
  });
});

Deno.test("REAL_CLOCK.clearTimeout() cancels a long timer between its steps", () => {
  withFakeTimers((fake) => {
    let fired = 0;
    const id = REAL_CLOCK.setTimeout(() => fired++, 3 * MAX_TIMER_DELAY);
    fake.advance(MAX_TIMER_DELAY + 5); // one step done, re-armed
    assert.equal(fake.armed.size, 1);
    REAL_CLOCK.clearTimeout(id);
    assert.equal(fake.armed.size, 0, "the current step is cleared");
    fake.advance(3 * MAX_TIMER_DELAY);
    assert.equal(fired, 0);
  });
});

Deno.test("REAL_CLOCK.setTimeout() passes a short delay straight through, negative as 0", () => {
  withFakeTimers((fake) => {
    let fired = 0;
    REAL_CLOCK.setTimeout(() => fired++, 1000);
    REAL_CLOCK.setTimeout(() => fired++, -5);
    assert.deepEqual([...fake.armed.values()].map((t) => t.ms), [1000, 0]);
    fake.advance(1000);
    assert.equal(fired, 2);
  });
});

Deno.test("ManualClock.stepWallClock() moves now() but not monotonic() or timers", () => {
  const clock = new ManualClock(1_000_000);
  let fired = false;
  clock.setTimeout(() => fired = true, 1000);
  clock.stepWallClock(-120_000);
  assert.equal(clock.now(), 880_000);
  assert.equal(clock.monotonic(), 1_000_000);
  clock.advance(1000);
  assert.ok(fired, "timers follow the monotonic reading");
});
