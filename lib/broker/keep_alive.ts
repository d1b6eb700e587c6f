/**
 * A connection's deadline (section 3.1.2.10): the connect timeout until CONNECT is accepted, then 1.5 times the
 * keep alive the client asked for, counted from its last packet on the monotonic clock (issue #15 item 13: a step
 * of the wall clock neither fires nor delays it). One entry per connection in the broker's deadline queue.
 *
 * @module
 */

import type { ConnectionState } from "./connection.ts";
import type { Deadline, DeadlineQueue } from "./deadlines.ts";

/** What a connection's deadline coming up means: the next deadline to wait for, or the timeout that passed. */
export type DeadlineCheck = number | "connect-timeout" | "keep-alive-timeout" | undefined;

/**
 * Checks a connection in `state` at `now`: before CONNACK against `connectDeadline` (its start plus the connect
 * timeout), after it against its last activity plus 1.5 times `keepAliveMs` [MQTT-3.1.2-24 (3.1.1)] (0: none).
 */
export function checkDeadline(
  state: ConnectionState,
  now: number,
  connectDeadline: number,
  lastActivity: number,
  keepAliveMs: number,
): DeadlineCheck {
  switch (state) {
    case "awaiting-connect":
    case "authenticating":
    case "resuming":
      return now < connectDeadline ? connectDeadline : "connect-timeout";
    case "connected": {
      if (keepAliveMs === 0) return undefined;
      const at = lastActivity + keepAliveMs * 1.5;
      return now < at ? at : "keep-alive-timeout";
    }
    case "closed":
      return undefined;
  }
}

/**
 * The entry a connection keeps once connected with `keepAliveMs`: the connect timeout's entry becomes the keep
 * alive's when it comes up (the check returns the next deadline), so a young connection holds one entry in the
 * queue, not two; only a sooner keep alive needs its own, and none is kept without keep alive.
 */
export function keepAliveEntry<T>(
  deadlines: DeadlineQueue<T>,
  owner: T,
  deadline: Deadline<T> | undefined,
  lastActivity: number,
  keepAliveMs: number,
): Deadline<T> | undefined {
  const keepAliveAt = lastActivity + keepAliveMs * 1.5;
  if (keepAliveMs === 0) {
    deadlines.cancel(deadline);
    return undefined;
  }
  if (deadline === undefined || deadline.item === undefined || keepAliveAt < deadline.at) {
    deadlines.cancel(deadline);
    return deadlines.schedule(owner, keepAliveAt);
  }
  return deadline;
}
