/** TokenBucket and AddressLimiter (lib/broker/limits.ts), on a ManualClock. */

import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { AddressLimiter, hostOf, TokenBucket } from "../../lib/broker/limits.ts";

Deno.test("TokenBucket takes up to its burst, then refills at its rate", () => {
  const bucket = new TokenBucket(2, 4, 0);
  for (let i = 0; i < 4; i++) assert.ok(bucket.take(0), `token ${i}`);
  assert.ok(!bucket.take(0), "the burst is spent");
  assert.ok(bucket.take(500), "one token after 0.5 s at 2/s");
  assert.ok(!bucket.take(500));
  assert.ok(bucket.take(10_000, 4), "refilled up to the burst, not beyond");
  assert.ok(!bucket.take(10_000));
});

Deno.test("TokenBucket: a reading that goes back adds nothing and takes nothing extra (issue #15 item 13)", () => {
  const bucket = new TokenBucket(1, 1, 1_000_000);
  assert.ok(bucket.take(1_000_000));
  assert.ok(!bucket.take(880_000), "120 s back: no new token, but no debt either");
  assert.ok(bucket.take(1_001_000), "one second after the last reading: a token");
});

Deno.test("TokenBucket.idle() says when the bucket is full again", () => {
  const bucket = new TokenBucket(1, 2, 0);
  assert.ok(bucket.idle(0));
  bucket.take(0, 2);
  assert.ok(!bucket.idle(1000));
  assert.ok(bucket.idle(2000));
});

Deno.test("AddressLimiter limits each address apart, on the monotonic clock", () => {
  const clock = new ManualClock(1_000_000);
  const limiter = new AddressLimiter(1, clock);
  assert.ok(limiter.take("a"));
  assert.ok(!limiter.take("a"));
  assert.ok(limiter.take("b"), "another address has its own bucket");
  clock.advance(1000);
  clock.stepWallClock(-120_000);
  assert.ok(limiter.take("a"), "a second later, whatever the wall clock did");
});

Deno.test("AddressLimiter with rate Infinity lets everything through", () => {
  const limiter = new AddressLimiter(Infinity, new ManualClock());
  for (let i = 0; i < 100; i++) assert.ok(limiter.take("a"));
});

Deno.test("AddressLimiter forgets addresses past maxEntries rather than grow", () => {
  const clock = new ManualClock();
  const limiter = new AddressLimiter(1, clock, 4);
  for (let i = 0; i < 10; i++) assert.ok(limiter.take(`host-${i}`));
  assert.ok(limiter.take("host-0"), "forgotten, so it starts with a full bucket");
});

Deno.test("hostOf() takes the host part of host:port and [v6]:port", () => {
  assert.equal(hostOf("127.0.0.1:1883"), "127.0.0.1");
  assert.equal(hostOf("[::1]:1883"), "::1");
  assert.equal(hostOf("memory"), "memory");
});
