/**
 * `GET /api/v1/stats` (gauges now, counters since start, per-second rates over the last 10 s) and
 * `GET /api/v1/stats/history?seconds=3600` (columns for the charts, one sample per 10 s).
 *
 * @module
 */

import {
  type BrokerCounters,
  DENY_REASONS,
  DROP_REASONS,
  RELOAD_RESULTS,
  RETAINED_REJECT_REASONS,
} from "../../broker/counters.ts";
import { DISCONNECT_REASONS, REFUSAL_REASONS } from "../../broker/events.ts";
import { brokerGauges } from "../../broker/gauges.ts";
import { ApiError, intParam, json } from "../http.ts";
import type { AdminServices, Route } from "../routes.ts";

/** The `/stats` body, also the SSE `stats` event's data. */
export function statsOf(services: AdminServices): object {
  return {
    time: Date.now(),
    gauges: brokerGauges(services.broker),
    counters: countersOf(services.broker.counters),
    rates: services.stats?.rates() ?? null,
  };
}

/**
 * The counters as `/metrics` has them, in JSON: totals as numbers, labelled ones as `{label: n}` (the histograms
 * are `/metrics`' alone).
 */
export function countersOf(c: Readonly<BrokerCounters>): Record<string, number | Record<string, number>> {
  const by = (labels: readonly string[], values: readonly number[]) =>
    Object.fromEntries(labels.map((label, i) => [label, values[i] ?? 0]));
  return {
    bytesReceived: c.bytesReceived,
    bytesSent: c.bytesSent,
    packetsReceived: c.packetsReceived,
    packetsSent: c.packetsSent,
    messagesReceived: c.messagesReceived,
    messagesSent: c.messagesSent,
    connections: c.connections,
    messagesDropped: c.messagesDropped,
    messagesDroppedByReason: by(DROP_REASONS, c.messagesDroppedByReason),
    messagesUnrouted: c.messagesUnrouted,
    publishDenied: by(DENY_REASONS, c.publishDenied),
    subscribeDenied: by(DENY_REASONS, c.subscribeDenied),
    retainedRejected: by(RETAINED_REJECT_REASONS, c.retainedRejected),
    willsPublished: c.willsPublished,
    sessionsExpired: c.sessionsExpired,
    sessionTakeovers: c.sessionTakeovers,
    storageCommits: c.storageCommits,
    storageCommitFailures: c.storageCommitFailures,
    configReloads: by(RELOAD_RESULTS, c.configReloads),
    disconnects: by(DISCONNECT_REASONS, c.disconnects),
    connectionsRefused: by(REFUSAL_REASONS, c.connectionsRefused),
  };
}

/** The stats routes. */
export const STATS_ROUTES: readonly Route[] = [
  { method: "GET", path: "/api/v1/stats", role: "viewer", handle: ({ services }) => json(statsOf(services)) },
  {
    method: "GET",
    path: "/api/v1/stats/history",
    role: "viewer",
    handle: ({ url, services }) => {
      const seconds = intParam(url, "seconds", 3600, 10, 3600);
      if (services.stats === undefined) throw new ApiError(503, "NO_HISTORY", "stats history is not kept");
      return json(services.stats.history(seconds));
    },
  },
];
