/**
 * The deadline queue (`lib/broker/deadlines.ts`): one clock timer for every connection's connect timeout and keep
 * alive, on the clock's monotonic reading so a step of the wall clock neither delays nor hastens them.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { DeadlineQueue } from "../../lib/broker/deadlines.ts";
import { connectPacket, withBroker } from "./_wire.ts";

/** A queue whose items record when they came due; `next` gives an item's next deadline. */
function recorder(
  clock: ManualClock,
  next: (item: string, now: number) => number | undefined = () => undefined,
) {
  const due: [string, number][] = [];
  const queue = new DeadlineQueue<string>(clock, (item, now) => {
    due.push([item, now]);
    return next(item, now);
  });
  return { queue, due };
}

Deno.test("DeadlineQueue calls onDue in deadline order, each when due", () => {
  const clock = new ManualClock(1000);
  const { queue, due } = recorder(clock);
  queue.schedule("c", 1300);
  queue.schedule("a", 1100);
  queue.schedule("b", 1200);
  assert.equal(clock.pending, 1, "one clock timer for all items");
  clock.advance(99);
  assert.deepEqual(due, []);
  clock.advance(300);
  assert.deepEqual(due, [["a", 1100], ["b", 1200], ["c", 1300]]);
  assert.equal(queue.size, 0);
  assert.equal(clock.pending, 0, "no timer left once the queue is empty");
});

Deno.test("DeadlineQueue reschedules an item at the deadline onDue returns, never in the past", () => {
  const clock = new ManualClock(0);
  let calls = 0;
  const { queue, due } = recorder(clock, (_item, now) => ++calls < 3 ? now + 500 : undefined);
  queue.schedule("ka", 500);
  clock.advance(2000);
  assert.deepEqual(due, [["ka", 500], ["ka", 1000], ["ka", 1500]]);
  const stale = recorder(clock, (_item, now) => now - 10); // a deadline already past comes 1 ms later
  stale.queue.schedule("x", 2100);
  clock.advance(100);
  assert.deepEqual(stale.due, [["x", 2100]]);
  clock.advance(1);
  assert.deepEqual(stale.due, [["x", 2100], ["x", 2101]]);
  stale.queue.close();
});

Deno.test("DeadlineQueue.cancel() releases the item at once and it never comes due", () => {
  const clock = new ManualClock(0);
  const { queue, due } = recorder(clock);
  const a = queue.schedule("a", 100);
  queue.schedule("b", 200);
  queue.cancel(a);
  assert.equal(a.item, undefined, "released");
  queue.cancel(a); // twice is harmless
  queue.cancel(undefined);
  clock.advance(300);
  assert.deepEqual(due, [["b", 200]]);
});

Deno.test("DeadlineQueue drops cancelled entries once they are half of it, so churn does not grow it", () => {
  const clock = new ManualClock(0);
  const { queue } = recorder(clock);
  for (let i = 0; i < 10_000; i++) queue.cancel(queue.schedule(`c${i}`, 1_000_000 + i));
  assert.ok(queue.size < 2100, `${queue.size} entries held for 0 live ones`);
  queue.close();
});

Deno.test("DeadlineQueue.close() stops the timer; nothing fires or is scheduled after", () => {
  const clock = new ManualClock(0);
  const { queue, due } = recorder(clock);
  queue.schedule("a", 100);
  queue.close();
  assert.equal(clock.pending, 0);
  queue.schedule("b", 50);
  clock.advance(200);
  assert.deepEqual(due, []);
  assert.equal(queue.size, 0);
});

Deno.test("DeadlineQueue is not delayed when the wall clock steps back 120 s (issue #15 item 13)", () => {
  const clock = new ManualClock(1_000_000);
  const { queue, due } = recorder(clock);
  queue.schedule("ka", clock.monotonic() + 15_000);
  clock.stepWallClock(-120_000);
  clock.advance(15_000);
  assert.deepEqual(due, [["ka", 1_015_000]], "due on the monotonic reading");
});

Deno.test("DeadlineQueue is not hastened when the wall clock steps forward an hour", () => {
  const clock = new ManualClock(1_000_000);
  const { queue, due } = recorder(clock);
  queue.schedule("ka", clock.monotonic() + 15_000);
  clock.stepWallClock(3_600_000);
  clock.advance(14_999);
  assert.deepEqual(due, []);
  clock.advance(1);
  assert.equal(due.length, 1);
});

Deno.test("a keep alive closes on time after the wall clock steps back 120 s [MQTT-3.1.2-22 (5.0)]", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect, broker }) => {
    const client = await connect({ version: 5, clientId: "stepped", keepAlive: 10 });
    clock.stepWallClock(-120_000);
    clock.advance(14_999);
    assert.equal(broker.connectionCount, 1, "still connected just before 1.5 x 10 s");
    clock.advance(1 + 1000);
    await client.expectDisconnect(0x8d, "DISCONNECT Keep alive timeout at 15 s, not 135 s");
  });
});

Deno.test("a connect timeout closes on time after the wall clock steps back 120 s", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, connectTimeout: 5000 }, async ({ open, broker }) => {
    const client = await open(4, "memory");
    await client.send(connectPacket({ version: 4, clientId: "slow" }).subarray(0, 6));
    clock.stepWallClock(-120_000);
    clock.advance(4999);
    assert.equal(broker.connectionCount, 1, "still open before the timeout");
    clock.advance(1 + 1000);
    await client.expectClosed("closed at the connect timeout, not 120 s later");
  });
});
