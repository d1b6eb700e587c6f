/**
 * `GET /metrics`: the Prometheus text format (the renderer is `lib/admin/metrics/`).
 *
 * @module
 */

import type { Broker } from "../../broker/broker.ts";

/** The `/metrics` answer for `broker`. */
export function metricsText(_broker: Broker): Response {
  return new Response("# metrics are not available in this build\n", {
    status: 404,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}
