import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { KeepAlive } from "../../lib/client/keepalive.ts";

function setup(intervalMs = 1000, timeoutMs = 500) {
  const clock = new ManualClock(0);
  const events: string[] = [];
  const keepAlive = new KeepAlive({
    intervalMs,
    timeoutMs,
    clock,
    onPing: () => {
      events.push(`ping@${clock.now()}`);
      keepAlive.packetSent();
    },
    onTimeout: () => events.push(`timeout@${clock.now()}`),
  });
  return { clock, events, keepAlive };
}

Deno.test("KeepAlive pings after an interval of silence and times out without an answer", () => {
  const { clock, events, keepAlive } = setup();
  keepAlive.start();
  clock.advance(999);
  assert.deepEqual(events, []);
  clock.advance(1);
  assert.deepEqual(events, ["ping@1000"]);
  assert.equal(keepAlive.waiting, true);
  clock.advance(500);
  assert.deepEqual(events, ["ping@1000", "timeout@1500"]);
  assert.equal(clock.pending, 0);
});

Deno.test("KeepAlive: traffic in both directions postpones the ping", () => {
  const { clock, events, keepAlive } = setup();
  keepAlive.start();
  clock.advance(800);
  keepAlive.packetSent();
  keepAlive.packetReceived();
  clock.advance(999);
  assert.deepEqual(events, []);
  clock.advance(1);
  assert.deepEqual(events, ["ping@1800"]);
  keepAlive.stop();
});

Deno.test("KeepAlive: only sending still pings when nothing was received for an interval", () => {
  const { clock, events, keepAlive } = setup();
  keepAlive.start();
  for (let t = 0; t < 1000; t += 100) {
    clock.advance(100);
    keepAlive.packetSent();
  }
  assert.deepEqual(events, ["ping@1000"]);
  keepAlive.stop();
});

Deno.test("KeepAlive: any packet answers the ping; the next comes an interval later", () => {
  const { clock, events, keepAlive } = setup();
  keepAlive.start();
  clock.advance(1000);
  clock.advance(100);
  keepAlive.packetReceived();
  clock.advance(1000);
  assert.deepEqual(events, ["ping@1000", "ping@2000"]);
  keepAlive.stop();
  assert.equal(clock.pending, 0);
});

Deno.test("KeepAlive with interval 0 is off", () => {
  const { clock, events, keepAlive } = setup(0);
  keepAlive.start();
  clock.advance(1_000_000);
  assert.deepEqual(events, []);
  assert.equal(clock.pending, 0);
});

Deno.test("KeepAlive: a wall clock stepped forward does not fire a ping early (monotonic time)", () => {
  const { clock, events, keepAlive } = setup();
  keepAlive.start();
  clock.advance(500);
  keepAlive.packetSent();
  keepAlive.packetReceived();
  clock.stepWallClock(3_600_000); // an operator or NTP sets the clock an hour ahead
  clock.advance(999);
  assert.deepEqual(events, []);
  clock.advance(1);
  assert.equal(events.length, 1); // at 1500 ms of monotonic time, one interval after the last packet
  assert.equal(clock.monotonic(), 1500);
  keepAlive.stop();
});

Deno.test("KeepAlive: a wall clock stepped back does not delay the ping or its timeout (monotonic time)", () => {
  const { clock, events, keepAlive } = setup();
  keepAlive.start();
  clock.advance(500);
  keepAlive.packetSent();
  keepAlive.packetReceived();
  clock.stepWallClock(-3_600_000);
  clock.advance(1000);
  assert.equal(events.length, 1);
  assert.equal(clock.monotonic(), 1500);
  clock.stepWallClock(-3_600_000);
  clock.advance(500);
  assert.equal(events.length, 2); // the timeout, 500 ms after the ping
  assert.equal(clock.pending, 0);
});
