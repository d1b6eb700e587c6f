/**
 * `GET /api/v1/stats` (gauges now, counters since start, per-second rates over the last 10 s) and
 * `GET /api/v1/stats/history?seconds=3600` (columns for the charts, one sample per 10 s).
 *
 * @module
 */

import { brokerGauges } from "../../broker/gauges.ts";
import { ApiError, intParam, json } from "../http.ts";
import type { AdminServices, Route } from "../routes.ts";

/** The `/stats` body, also the SSE `stats` event's data. */
export function statsOf(services: AdminServices): object {
  return {
    time: Date.now(),
    gauges: brokerGauges(services.broker),
    counters: { ...services.broker.counters },
    rates: services.stats?.rates() ?? null,
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
