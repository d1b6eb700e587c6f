/**
 * `GET /api/v1/logs?level=warn&event=&limit=200`: the newest of the last 1000 log records at info or more severe,
 * each `{time, level, msg, event, ...fields}` as a JSON log line has them.
 *
 * @module
 */

import { LOG_LEVELS, type LogRecord } from "../../broker/logger.ts";
import { LOG_RING_SIZE } from "../../broker/log_ring.ts";
import { intParam, json, oneOfParam, stringParam } from "../http.ts";
import type { Route } from "../routes.ts";

/** A log record as the API and the SSE `log` event show it. */
export function logView(record: LogRecord): Record<string, unknown> {
  return {
    time: new Date(record.time).toISOString(),
    level: record.level,
    msg: record.msg,
    ...record.fields,
  };
}

/** The logs route. */
export const LOG_ROUTES: readonly Route[] = [
  {
    method: "GET",
    path: "/api/v1/logs",
    role: "viewer",
    handle: ({ url, services }) => {
      const level = oneOfParam(url, "level", LOG_LEVELS);
      const event = stringParam(url, "event");
      const records = services.broker.logs.records({
        limit: intParam(url, "limit", 200, 1, LOG_RING_SIZE),
        ...(level === undefined ? {} : { level }),
        ...(event === undefined ? {} : { event }),
      });
      return json({ data: records.map(logView) });
    },
  },
];
