/** The dashboard's history (`lib/admin/stats_history.ts`): 360 slots of 10 s, rates from the counters. */

import assert from "node:assert/strict";
import { Broker } from "../../lib/broker/broker.ts";
import type { BrokerCounters } from "../../lib/broker/counters.ts";
import { ManualClock } from "../../lib/clock.ts";
import { HISTORY_SLOTS, StatsHistory } from "../../lib/admin/stats_history.ts";

function setup(): { clock: ManualClock; counters: BrokerCounters; history: StatsHistory } {
  const clock = new ManualClock(1_000_000);
  const broker = new Broker({ clock, sysInterval: 0 });
  return { clock, counters: broker.counters as BrokerCounters, history: new StatsHistory(broker) };
}

Deno.test("StatsHistory.rates() are per second over the last 10 s, sliding by the second", () => {
  const { clock, counters, history } = setup();
  history.start();
  assert.deepEqual(history.rates(), {
    msgIn: 0,
    msgOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    dropped: 0,
    connects: 0,
  });
  for (let s = 0; s < 10; s++) {
    counters.messagesReceived += 100;
    counters.bytesSent += 2048;
    clock.advance(1000);
  }
  assert.deepEqual(history.rates(), {
    msgIn: 100,
    msgOut: 0,
    bytesIn: 0,
    bytesOut: 2048,
    dropped: 0,
    connects: 0,
  });
  for (let s = 0; s < 10; s++) {
    counters.messagesReceived += 10; // slower now: after 10 more seconds only this rate is left
    clock.advance(1000);
  }
  assert.equal(history.rates().msgIn, 10);
  history.stop();
  assert.equal(clock.pending, 0, "stop() leaves no timer");
});

Deno.test("StatsHistory.history() gives columns, oldest first, one slot per 10 s, and keeps the last hour", () => {
  const { clock, counters, history } = setup();
  history.start();
  for (let slot = 1; slot <= HISTORY_SLOTS + 5; slot++) {
    for (let s = 0; s < 10; s++) {
      counters.messagesDropped += slot; // slot n drops n per second
      clock.advance(1000);
    }
  }
  const last = history.history(30);
  assert.equal(last.interval, 10);
  assert.deepEqual(last.dropped, [HISTORY_SLOTS + 3, HISTORY_SLOTS + 4, HISTORY_SLOTS + 5]);
  assert.equal(last.t.length, 3);
  assert.equal(last.t[2]! - last.t[1]!, 10, "t in seconds, 10 apart");
  assert.equal(last.clientsConnected.length, 3);
  const hour = history.history(7200);
  assert.equal(hour.t.length, HISTORY_SLOTS, "at most 360 slots");
  assert.equal(hour.dropped[0], 6, "the five oldest slots were overwritten");
  history.stop();
});
