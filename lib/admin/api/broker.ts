/**
 * `GET /api/v1/broker`: version, runtime, uptime, storage, listeners and limits.
 *
 * @module
 */

import { BROKER_VERSION } from "../../broker/broker.ts";
import { json } from "../http.ts";
import type { Route } from "../routes.ts";

/** The broker route. */
export const BROKER_ROUTES: readonly Route[] = [
  {
    method: "GET",
    path: "/api/v1/broker",
    role: "viewer",
    handle: ({ services }) => {
      const o = services.broker.options;
      const now = Date.now();
      return json({
        version: BROKER_VERSION,
        deno: Deno.version.deno,
        startedAt: services.startedAt,
        uptimeSeconds: Math.floor((now - services.startedAt) / 1000),
        pid: Deno.pid,
        persistence: services.inspect.persistenceName ?? "memory",
        listeners: services.listeners(),
        limits: {
          maxPacketSize: o.maxPacketSize,
          maxKeepAlive: o.maxKeepAlive,
          maxInflight: o.maxInflight,
          maxQueued: o.maxQueued,
          maxQueuedBytes: o.maxQueuedBytes,
          maxOutputBytes: o.maxOutputBytes,
          maxConnections: finite(o.maxConnections),
          maxConnectionsPerAddress: finite(o.maxConnectionsPerAddress),
          maxRetained: finite(o.maxRetained),
          maxRetainedBytes: finite(o.maxRetainedBytes),
          maxQoS: o.maxQoS,
          retainAvailable: o.retainAvailable,
        },
        sysInterval: o.sysInterval,
      });
    },
  },
];

/** JSON has no Infinity: "no limit" is null. */
function finite(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}
