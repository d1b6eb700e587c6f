/**
 * The rate limiters on their own: the token bucket behind per-connection PUBLISH rates and the per-address
 * table behind connection rates, driven by explicit times and a manual clock.
 */

import assert from "node:assert/strict";
import { AddressLimiter, hostOf, TokenBucket } from "../../lib/broker/limits.ts";
import { ManualClock } from "../../lib/clock.ts";

Deno.test("TokenBucket starts full: a burst goes through at once, then it refuses", () => {
  const bucket = new TokenBucket(2, 5, 0);
  for (let i = 0; i < 5; i++) assert.equal(bucket.take(0), true, `token ${i + 1}`);
  assert.equal(bucket.take(0), false);
});

Deno.test("TokenBucket refills at its rate, and never past its burst", () => {
  const bucket = new TokenBucket(10, 3, 1_000);
  for (let i = 0; i < 3; i++) bucket.take(1_000);
  assert.equal(bucket.take(1_050), false, "half a token after 50 ms");
  assert.equal(bucket.take(1_100), true, "one token after 100 ms");
  assert.equal(bucket.take(1_100), false);
  // An hour idle refills the burst, not 36,000 tokens.
  const later = 1_100 + 3_600_000;
  for (let i = 0; i < 3; i++) assert.equal(bucket.take(later), true);
  assert.equal(bucket.take(later), false);
});

Deno.test("TokenBucket.take() takes several tokens at once, or none", () => {
  const bucket = new TokenBucket(1, 4, 0);
  assert.equal(bucket.take(0, 3), true);
  assert.equal(bucket.take(0, 2), false, "only one left");
  assert.equal(bucket.take(0, 1), true, "the refused take took nothing");
  assert.equal(bucket.take(2_000, 2), true);
});

Deno.test("TokenBucket with an Infinity rate never refuses", () => {
  const bucket = new TokenBucket(Infinity, 1, 0);
  for (let i = 0; i < 1_000; i++) assert.equal(bucket.take(0), true);
});

Deno.test("TokenBucket.idle() is true once the bucket is full again", () => {
  const bucket = new TokenBucket(2, 2, 0);
  assert.equal(bucket.idle(0), true, "a new bucket is full");
  bucket.take(0);
  bucket.take(0);
  assert.equal(bucket.idle(0), false);
  assert.equal(bucket.idle(999), false);
  assert.equal(bucket.idle(1_000), true);
});

Deno.test("AddressLimiter keeps one bucket per address, with a burst of its rate", () => {
  const clock = new ManualClock(0);
  const limiter = new AddressLimiter(3, clock);
  for (let i = 0; i < 3; i++) assert.equal(limiter.take("10.0.0.1"), true);
  assert.equal(limiter.take("10.0.0.1"), false);
  assert.equal(limiter.take("10.0.0.2"), true, "another address has its own bucket");
  clock.advance(334);
  assert.equal(limiter.take("10.0.0.1"), true, "refilled at 3 per second");
  assert.equal(limiter.take("10.0.0.1"), false);
});

Deno.test("AddressLimiter below one per second still lets one through (burst of 1)", () => {
  const clock = new ManualClock(0);
  const limiter = new AddressLimiter(0.5, clock);
  assert.equal(limiter.take("a"), true);
  assert.equal(limiter.take("a"), false);
  clock.advance(1_999);
  assert.equal(limiter.take("a"), false);
  clock.advance(1);
  assert.equal(limiter.take("a"), true);
});

Deno.test("AddressLimiter with an Infinity rate never refuses", () => {
  const limiter = new AddressLimiter(Infinity, new ManualClock(0));
  for (let i = 0; i < 1_000; i++) assert.equal(limiter.take("a"), true);
});

Deno.test("AddressLimiter at maxEntries forgets idle addresses first", () => {
  const clock = new ManualClock(0);
  const limiter = new AddressLimiter(1, clock, 2);
  limiter.take("idle");
  clock.advance(1_000); // "idle" is full again
  limiter.take("busy");
  assert.equal(limiter.take("new"), true);
  assert.equal(limiter.take("busy"), false, "a busy address is remembered");
  clock.advance(1_000);
  assert.equal(limiter.take("new"), true);
});

Deno.test("AddressLimiter full of busy addresses forgets the oldest half rather than grow", () => {
  const clock = new ManualClock(0);
  const limiter = new AddressLimiter(1, clock, 4);
  for (const address of ["a", "b", "c", "d"]) assert.equal(limiter.take(address), true);
  assert.equal(limiter.take("e"), true, "a new address is let in");
  assert.equal(limiter.take("a"), true, "the oldest were forgotten");
  assert.equal(limiter.take("c"), false, "the newer half is remembered");
  assert.equal(limiter.take("e"), false);
});

Deno.test("hostOf() takes the port off IPv4, [IPv6] and bare addresses", () => {
  assert.equal(hostOf("192.0.2.1:1883"), "192.0.2.1");
  assert.equal(hostOf("[2001:db8::1]:8883"), "2001:db8::1");
  assert.equal(hostOf("memory"), "memory");
});

Deno.test("TokenBucket: a reading that goes back adds nothing and takes nothing extra (issue #15 item 13)", () => {
  const bucket = new TokenBucket(1, 1, 1_000_000);
  assert.ok(bucket.take(1_000_000));
  assert.ok(!bucket.take(880_000), "120 s back: no new token, but no debt either");
  assert.ok(bucket.take(1_001_000), "one second after the last reading: a token");
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
