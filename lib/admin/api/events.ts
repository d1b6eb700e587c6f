/**
 * `GET /api/v1/events?streams=stats,clients,logs`: the dashboard's one live stream (SSE). `stats` every second
 * (the `/api/v1/stats` body, `id:` its time); `client` for each connect, disconnect, refusal, kick and take-over,
 * at most 50 a second per stream, then one `{event: "overflow", skipped}` (a reconnect storm must not flood the
 * browser); `log` for warnings and errors.
 *
 * @module
 */

import type { ClientEvent } from "../../broker/events.ts";
import type { SseStream } from "../sse.ts";
import type { AdminServices, RequestContext, Route } from "../routes.ts";
import { logView } from "./logs.ts";
import { statsOf } from "./stats.ts";

/** Client events sent per stream per second before the rest are counted as skipped. */
export const MAX_CLIENT_EVENTS_PER_SECOND = 50;

const STREAMS = ["stats", "clients", "logs"] as const;

function open({ url, services }: RequestContext): Response {
  const asked = url.searchParams.get("streams");
  const streams = new Set(asked === null || asked === "" ? STREAMS : asked.split(","));
  return services.sse.open((stream) => {
    let sent = 0;
    let skipped = 0;
    const tick = () => {
      if (skipped > 0) stream.send("client", { event: "overflow", skipped });
      sent = 0;
      skipped = 0;
      if (streams.has("stats")) sendStats(stream, services);
    };
    const timer = setInterval(tick, 1000);
    stream.onClose(() => clearInterval(timer));
    if (streams.has("stats")) sendStats(stream, services);
    if (streams.has("clients")) {
      const off = services.broker.events.on((event: ClientEvent) => {
        if (sent >= MAX_CLIENT_EVENTS_PER_SECOND) {
          skipped++;
          return;
        }
        sent++;
        stream.send("client", event);
      });
      stream.onClose(off);
    }
    if (streams.has("logs")) {
      const off = services.broker.logs.subscribe((record) => {
        if (record.level === "warn" || record.level === "error") stream.send("log", logView(record));
      });
      stream.onClose(off);
    }
  });
}

/** The latest stats per server: every open stream ticks each second, one pass over the sessions serves them all. */
const latest = new WeakMap<AdminServices, { readonly at: number; readonly stats: { time: number } }>();

function sendStats(stream: SseStream, services: AdminServices): void {
  const now = performance.now();
  let entry = latest.get(services);
  if (entry === undefined || now - entry.at > 500) {
    entry = { at: now, stats: statsOf(services) as { time: number } };
    latest.set(services, entry);
  }
  stream.send("stats", entry.stats, String(entry.stats.time));
}

/** The event stream route. */
export const EVENT_ROUTES: readonly Route[] = [
  { method: "GET", path: "/api/v1/events", role: "viewer", handle: open },
];
