/**
 * A connection's deadline rules on their own (`lib/broker/keep_alive.ts`): the connect timeout before CONNACK,
 * 1.5 times the keep alive after it [MQTT-3.1.2-24 (3.1.1)], nothing once closed.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { DeadlineQueue } from "../../lib/broker/deadlines.ts";
import { checkDeadline, keepAliveEntry } from "../../lib/broker/keep_alive.ts";

Deno.test("checkDeadline(): before CONNACK the connect deadline holds, whatever the keep alive", () => {
  for (const state of ["awaiting-connect", "authenticating"] as const) {
    assert.equal(checkDeadline(state, 900, 1000, 0, 60_000), 1000);
    assert.equal(checkDeadline(state, 1000, 1000, 0, 60_000), "connect-timeout");
  }
});

Deno.test("checkDeadline(): connected, a client silent for 1.5 times its keep alive has timed out [MQTT-3.1.2-24 (3.1.1)]", () => {
  assert.equal(checkDeadline("connected", 7_999, 0, 5_000, 2_000), 8_000);
  assert.equal(checkDeadline("connected", 8_000, 0, 5_000, 2_000), "keep-alive-timeout");
  assert.equal(checkDeadline("connected", 1e12, 0, 5_000, 0), undefined, "keep alive 0: never");
  assert.equal(checkDeadline("closed", 1e12, 1000, 0, 2_000), undefined);
});

Deno.test("keepAliveEntry(): the connect timeout's entry is kept unless the keep alive comes sooner; none without keep alive", () => {
  const clock = new ManualClock(0);
  const queue = new DeadlineQueue<string>(clock, () => undefined);
  const connecting = queue.schedule("c", 10_000);
  assert.equal(keepAliveEntry(queue, "c", connecting, 0, 60_000), connecting, "90 s is later than 10 s");
  const sooner = keepAliveEntry(queue, "c", connecting, 0, 2_000);
  assert.notEqual(sooner, connecting);
  assert.equal(sooner?.at, 3_000);
  assert.equal(keepAliveEntry(queue, "c", sooner, 0, 0), undefined, "keep alive 0 cancels the entry");
});
