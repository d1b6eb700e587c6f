/** Event-loop lag (`lib/admin/loop_lag.ts`): how late a timer fires, observed while started. */

import assert from "node:assert/strict";
import { Histogram, LOOP_LAG_BUCKETS } from "../../lib/admin/metrics/histogram.ts";
import { LoopLagMonitor } from "../../lib/admin/loop_lag.ts";
import { Broker } from "../../lib/broker/broker.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("LoopLagMonitor observes how late its timer fired when the loop was blocked, and stop() ends it", async () => {
  const histogram = new Histogram(LOOP_LAG_BUCKETS);
  const monitor = new LoopLagMonitor(histogram, 20);
  monitor.start();
  monitor.start(); // a second start changes nothing
  const until = performance.now() + 80;
  while (performance.now() < until) {
    // block the event loop: the 20 ms timer fires about 60 ms late
  }
  await sleep(30);
  monitor.stop();
  assert.ok(histogram.count >= 1, "at least one sample");
  assert.ok(histogram.sum >= 0.04, `lag observed: ${histogram.sum} s`);
  const count = histogram.count;
  await sleep(50);
  assert.equal(histogram.count, count, "nothing observed after stop()");
});

Deno.test("Broker samples the event-loop lag from start() to close()", async () => {
  const broker = new Broker({ sysInterval: 0 });
  await broker.start();
  await sleep(1100);
  const samples = broker.counters.eventLoopLag.count;
  assert.ok(samples >= 1, `sampled every 500 ms: ${samples}`);
  await broker.close(); // the test's op sanitizer fails if the timer outlived close()
});
