/**
 * A closed session registry or will scheduler arms no timer: a cluster node may still install sessions and wills
 * (an adoption, a takeover finishing) after the broker stopped its timers, and a timer armed then would outlive
 * the broker (03_takeover_test.ts [redis] saw such leaked timers).
 */

import assert from "node:assert/strict";
import { ALLOW_ALL } from "../../lib/broker/auth/auth.ts";
import { ManualClock } from "../../lib/clock.ts";
import { createCounters } from "../../lib/broker/counters.ts";
import { SILENT_LOGGER } from "../../lib/broker/logger.ts";
import { resolveOptions } from "../../lib/broker/options.ts";
import { Sessions } from "../../lib/broker/sessions.ts";
import { Wills } from "../../lib/broker/wills.ts";
import { TopicRouter } from "../../lib/topic/router.ts";
import type { Message } from "../../lib/broker/storage/persistence.ts";

function registry(clock: ManualClock): { sessions: Sessions; wills: Wills } {
  const counters = createCounters();
  const wills = new Wills({
    clock,
    logger: SILENT_LOGGER,
    authorizer: ALLOW_ALL,
    store: undefined,
    publish: () => 0,
    counters,
  });
  const sessions = new Sessions({
    options: resolveOptions({}),
    clock,
    logger: SILENT_LOGGER,
    router: new TopicRouter(),
    store: undefined,
    wills,
    counters,
    authorizer: ALLOW_ALL,
  });
  return { sessions, wills };
}

const WILL: Message = { topic: "gone", payload: new Uint8Array([1]), qos: 1, retain: false };

Deno.test("Sessions.restore() after close() keeps the session but arms no expiry timer", () => {
  const clock = new ManualClock(1_000_000);
  const { sessions } = registry(clock);
  sessions.close();
  sessions.restore([{
    clientId: "late",
    protocolVersion: 5,
    expiryInterval: 60,
    disconnectedAt: clock.now(),
    subscriptions: [],
    outgoing: [],
    incoming: [],
  }], clock.now());
  assert(sessions.get("late") !== undefined);
  assert(clock.pending === 0, `${clock.pending} timer(s) armed after close()`);
});

Deno.test("Wills.restore() and schedule() after close() keep the will but arm no timer", () => {
  const clock = new ManualClock(1_000_000);
  const { wills } = registry(clock);
  wills.close();
  wills.restore([{ clientId: "a", message: WILL, sendAt: clock.now() + 5000 }], clock.now());
  wills.schedule({ clientId: "b" }, WILL, 5, clock.now());
  assert(wills.has("a") && wills.has("b"));
  assert(clock.pending === 0, `${clock.pending} timer(s) armed after close()`);
});
