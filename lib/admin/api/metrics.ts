/**
 * `GET /metrics`: the Prometheus text format (`lib/admin/metrics/`), with the admin server's own request counts
 * and its certificates' expiry.
 *
 * @module
 */

import type { Broker } from "../../broker/broker.ts";
import { METRICS_CONTENT_TYPE, type MetricsExtra, renderMetrics } from "../metrics/render.ts";

/** The `/metrics` answer for `broker`. */
export function metricsText(broker: Broker, extra: MetricsExtra): Response {
  return new Response(renderMetrics(broker, extra), { headers: { "content-type": METRICS_CONTENT_TYPE } });
}
