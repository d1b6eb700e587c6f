/**
 * `/metrics`: everything the broker counts, in the Prometheus text format, collected in one pass at scrape.
 * Counters are read from `broker.counters` (the same object `$SYS` reads), gauges computed now
 * (`brokerGauges`), histograms read as they stand. Prefix `denomqtt_`, base units (bytes, seconds), and only
 * bounded labels: a packet type, a QoS, a reason, a protocol, a configured listener name; never a client id or a
 * topic.
 *
 * @module
 */

import process from "node:process";
import { X509Certificate } from "node:crypto";
import type { Broker } from "../../broker/broker.ts";
import {
  countClientEvents,
  DENY_REASONS,
  DROP_REASONS,
  PACKET_TYPE_LABELS,
  RELOAD_RESULTS,
  RETAINED_REJECT_REASONS,
} from "../../broker/counters.ts";
import { brokerGauges } from "../../broker/gauges.ts";
import { DISCONNECT_REASONS, REFUSAL_REASONS } from "../../broker/events.ts";
import { BROKER_VERSION } from "../../broker/sys.ts";
import { METRICS_CONTENT_TYPE, MetricsWriter } from "./text_format.ts";

export { METRICS_CONTENT_TYPE };

/** Families only the caller knows (the admin server, the listeners), rendered with the broker's. */
export interface MetricsExtra {
  /** Admin HTTP requests answered, by status class. */
  readonly adminRequests?: Readonly<Record<"2xx" | "4xx" | "5xx", number>>;
  /** The certificates of `tls`/`wss`/`https` listeners (PEM), for their expiry; parsed once per PEM. */
  readonly certificates?: readonly { readonly listener: string; readonly cert: string }[];
}

/** Prefix of every broker metric. */
export const METRIC_PREFIX = "denomqtt_";

const P = METRIC_PREFIX;

/**
 * Starts what the metrics count only while someone watches: disconnects and refusals by reason, from the event
 * hub. The admin listener calls it when it starts; the first {@linkcode renderMetrics} does too. Idempotent.
 */
export function startMetrics(broker: Broker): void {
  countClientEvents(broker.counters, broker.events);
}

/** The broker's metrics now, as Prometheus text format 0.0.4 (serve with {@linkcode METRICS_CONTENT_TYPE}). */
export function renderMetrics(broker: Broker, extra: MetricsExtra = {}): string {
  startMetrics(broker);
  const w = new MetricsWriter();
  const c = broker.counters;
  const g = brokerGauges(broker);

  w.gauge(`${P}build_info`, "The broker's version, with the Deno and V8 it runs on; always 1.")
    .sample(1, { version: BROKER_VERSION, deno: Deno.version.deno, v8: Deno.version.v8 });
  writeProcess(w);

  w.gauge(`${P}connections`, "Open client connections, CONNECT received or not.").sample(g.connections);
  w.gauge(`${P}clients_connected`, "Clients with an accepted CONNECT, by protocol.");
  for (const protocol of ["3.1", "3.1.1", "5.0"] as const) {
    w.sample(g.clientsConnectedByProtocol[protocol], { protocol });
  }
  w.gauge(`${P}sessions`, "Sessions, online (connected) or offline (kept until they expire).")
    .sample(g.sessionsOnline, { state: "online" })
    .sample(g.sessionsOffline, { state: "offline" });
  w.gauge(`${P}subscriptions`, "Subscriptions, plain or shared ($share).")
    .sample(g.subscriptions - g.sharedSubscriptions, { kind: "plain" })
    .sample(g.sharedSubscriptions, { kind: "shared" });
  w.gauge(`${P}retained_messages`, "Retained messages held.").sample(g.retained);
  w.gauge(`${P}retained_bytes`, "Payload bytes of the retained messages.").sample(g.retainedBytes);
  w.gauge(`${P}inflight_messages`, "Outgoing QoS 1/2 messages sent and not yet acknowledged.").sample(
    g.inflight,
  );
  w.gauge(`${P}queued_messages`, "QoS 1/2 messages waiting behind the inflight windows.").sample(g.queued);
  w.gauge(`${P}queued_bytes`, "Payload bytes of the queued messages.").sample(g.queuedBytes);
  w.gauge(`${P}congested_clients`, "Clients whose unwritten output is over maxOutputBytes.").sample(
    g.congested,
  );

  w.counter(`${P}connections_accepted`, "Connections accepted.").sample(c.connections);
  w.counter(`${P}connections_refused`, "Connections refused before they became clients, by reason.");
  REFUSAL_REASONS.forEach((reason, i) => w.sample(c.connectionsRefused[i]!, { reason }));
  w.counter(`${P}disconnects`, "Clients gone, by reason.");
  DISCONNECT_REASONS.forEach((reason, i) => w.sample(c.disconnects[i]!, { reason }));
  w.counter(`${P}received_bytes`, "Bytes read from clients.").sample(c.bytesReceived);
  w.counter(`${P}sent_bytes`, "Bytes written to clients.").sample(c.bytesSent);
  w.counter(`${P}packets_received`, "Control packets received, by type.");
  for (let type = 1; type < PACKET_TYPE_LABELS.length; type++) {
    w.sample(c.packetsReceivedByType[type]!, { type: PACKET_TYPE_LABELS[type]! });
  }
  w.counter(`${P}packets_sent`, "Control packets sent, by type.");
  for (let type = 1; type < PACKET_TYPE_LABELS.length; type++) {
    w.sample(c.packetsSentByType[type]!, { type: PACKET_TYPE_LABELS[type]! });
  }
  w.counter(`${P}messages_received`, "PUBLISH received from clients, by QoS.");
  for (let qos = 0; qos < 3; qos++) w.sample(c.messagesReceivedByQos[qos]!, { qos: String(qos) });
  w.counter(`${P}messages_sent`, "PUBLISH sent to clients, by QoS.");
  for (let qos = 0; qos < 3; qos++) w.sample(c.messagesSentByQos[qos]!, { qos: String(qos) });
  w.counter(`${P}messages_dropped`, "Messages not delivered to a subscriber, by reason.");
  DROP_REASONS.forEach((reason, i) => w.sample(c.messagesDroppedByReason[i]!, { reason }));
  w.counter(`${P}messages_unrouted`, "PUBLISH from clients that matched no subscription.")
    .sample(c.messagesUnrouted);
  w.counter(`${P}publish_denied`, "PUBLISH refused, by reason.");
  DENY_REASONS.forEach((reason, i) => w.sample(c.publishDenied[i]!, { reason }));
  w.counter(`${P}subscribe_denied`, "SUBSCRIBE filters refused, by reason.");
  DENY_REASONS.forEach((reason, i) => w.sample(c.subscribeDenied[i]!, { reason }));
  w.counter(`${P}retained_rejected`, "Retained messages not kept, by the limit they met.");
  RETAINED_REJECT_REASONS.forEach((reason, i) => w.sample(c.retainedRejected[i]!, { reason }));
  w.counter(`${P}wills_published`, "Wills published.").sample(c.willsPublished);
  w.counter(`${P}sessions_expired`, "Sessions ended by their Session Expiry Interval.").sample(
    c.sessionsExpired,
  );
  w.counter(`${P}session_takeovers`, "Sessions taken over by a new connection with the same client id.")
    .sample(c.sessionTakeovers);
  w.counter(`${P}storage_commits`, "Storage transactions committed.").sample(c.storageCommits);
  w.counter(`${P}storage_commit_failures`, "Storage transactions that failed.").sample(
    c.storageCommitFailures,
  );
  w.counter(`${P}storage_operations`, "Operations written by storage commits.").sample(c.storageOperations);
  w.counter(`${P}tls_handshake_failures`, "TLS handshakes that failed, by listener.");
  for (const [listener, n] of c.tlsHandshakeFailures) w.sample(n, { listener });
  w.counter(`${P}config_reloads`, "Config reloads (SIGHUP, admin API), by result.");
  RELOAD_RESULTS.forEach((result, i) => w.sample(c.configReloads[i]!, { result }));
  if (extra.adminRequests !== undefined) {
    w.counter(`${P}admin_requests`, "Admin HTTP requests answered, by status class.");
    for (const code of ["2xx", "4xx", "5xx"] as const) w.sample(extra.adminRequests[code], { code });
  }
  if (extra.certificates !== undefined && extra.certificates.length > 0) {
    w.gauge(`${P}certificate_expiry_timestamp_seconds`, "When a listener's certificate expires (Unix time).");
    for (const { listener, cert } of extra.certificates) {
      const at = certificateExpiry(cert);
      if (at !== undefined) w.sample(at, { listener });
    }
  }

  w.histogram(`${P}delivery_latency_seconds`, "From a PUBLISH's arrival to the subscriber's PUBACK/PUBCOMP.")
    .buckets(c.deliveryLatency[1]!, { qos: "1" })
    .buckets(c.deliveryLatency[2]!, { qos: "2" });
  w.histogram(`${P}storage_commit_duration_seconds`, "Time one storage commit took.")
    .buckets(c.storageCommitDuration);
  w.histogram(`${P}event_loop_lag_seconds`, "How late a 500 ms timer fired: the broker's saturation.")
    .buckets(c.eventLoopLag);
  return w.text();
}

/** The `process_*` families every Prometheus client exports, and the V8 heap in use. */
function writeProcess(w: MetricsWriter): void {
  const memory = Deno.memoryUsage();
  const cpu = process.cpuUsage();
  w.gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, seconds.")
    .sample(Math.floor(performance.timeOrigin / 1000));
  w.gauge("process_resident_memory_bytes", "Resident memory size, bytes.").sample(memory.rss);
  w.counter("process_cpu_seconds", "User and system CPU time spent, seconds.")
    .sample((cpu.user + cpu.system) / 1e6);
  w.gauge(`${P}heap_used_bytes`, "V8 heap in use, bytes.").sample(memory.heapUsed);
}

/** Expiry (Unix seconds) by PEM: a certificate is parsed once, not at every scrape. */
const expiries = new Map<string, number | undefined>();

/** When the first certificate of `pem` expires, in Unix seconds; undefined when it cannot be read. */
export function certificateExpiry(pem: string): number | undefined {
  if (expiries.has(pem)) return expiries.get(pem);
  let at: number | undefined;
  try {
    at = Math.floor(Date.parse(new X509Certificate(pem).validTo) / 1000);
    if (Number.isNaN(at)) at = undefined;
  } catch {
    at = undefined;
  }
  if (expiries.size > 64) expiries.clear(); // reloads replace certificates: keep the cache small
  expiries.set(pem, at);
  return at;
}
