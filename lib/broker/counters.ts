/**
 * The broker's counters: totals since the broker started, broker-wide, that only grow (a session or connection
 * that ends takes nothing away). `$SYS` is derived from them and `/metrics` renders them: one source for both.
 *
 * Labelled counters are arrays indexed by a label's position in a constant table below (`DROP_REASONS`, ...),
 * made once with the broker, so the hot path adds to an array slot: no string key, no allocation.
 *
 * @module
 */

import { Histogram, LATENCY_BUCKETS, LOOP_LAG_BUCKETS } from "../admin/metrics/histogram.ts";
import type { BrokerStats } from "./core.ts";
import { PACKET_TYPE } from "../packet/packet_type.ts";
import type { Message } from "./storage/persistence.ts";
import { type BrokerEvents, DISCONNECT_REASONS, REFUSAL_REASONS } from "./events.ts";

/** Label values of `packets_*_total{type}`, by MQTT control packet type (index 0 is reserved). */
export const PACKET_TYPE_LABELS = [
  "reserved",
  "connect",
  "connack",
  "publish",
  "puback",
  "pubrec",
  "pubrel",
  "pubcomp",
  "subscribe",
  "suback",
  "unsubscribe",
  "unsuback",
  "pingreq",
  "pingresp",
  "disconnect",
  "auth",
] as const;

/** Why a message did not reach a subscriber: label values of `messages_dropped_total{reason}`. */
export const DROP_REASONS = [
  "queue_full",
  "output_full",
  "too_large",
  "expired",
  "retained_backlog",
  "not_authorized",
] as const;

/** Indexes into {@linkcode DROP_REASONS}. */
export const DROP = {
  /** QoS 1/2 over `maxQueued`/`maxQueuedBytes`, or offline QoS 0 over `maxQueued`. */
  queueFull: 0,
  /** QoS 0 to a client whose unwritten output is over `maxOutputBytes`. */
  outputFull: 1,
  /** Larger than the client's Maximum Packet Size [MQTT-3.1.2-25 (5.0)]. */
  tooLarge: 2,
  /** Its Message Expiry Interval passed before it went out (5.0 section 3.3.2.3.3). */
  expired: 3,
  /** Retained messages a SUBSCRIBE was owed past the backlog cap (`retained_backlog.ts`). */
  retainedBacklog: 4,
  /** Held since the read rules changed, and no longer readable by the client. */
  notAuthorized: 5,
} as const;

/** One of {@linkcode DROP}'s values. */
export type DropReason = typeof DROP[keyof typeof DROP];

/** Why a PUBLISH or SUBSCRIBE was refused: label values of `publish_denied_total` / `subscribe_denied_total`. */
export const DENY_REASONS = ["acl", "sys_topic", "quota", "rate", "topic_limits"] as const;

/** Indexes into {@linkcode DENY_REASONS}. */
export const DENY = { acl: 0, sysTopic: 1, quota: 2, rate: 3, topicLimits: 4 } as const;

/** Why a retained message was not kept: label values of `retained_rejected_total{reason}`. */
export const RETAINED_REJECT_REASONS = ["count_limit", "bytes_limit"] as const;

/** Indexes into {@linkcode RETAINED_REJECT_REASONS}: `maxRetained`, `maxRetainedBytes`. */
export const RETAINED_REJECT = { countLimit: 0, bytesLimit: 1 } as const;

/** Label values of `config_reloads_total{result}`. */
export const RELOAD_RESULTS = ["success", "failure"] as const;

/** Every broker-wide counter; connections add their traffic, sessions their drops. */
export interface BrokerCounters extends BrokerStats {
  /**
   * Messages not delivered to a subscriber, whatever the reason: the sum of
   * {@linkcode BrokerCounters.messagesDroppedByReason}.
   */
  messagesDropped: number;
  /** Drops by {@linkcode DROP_REASONS} index. */
  readonly messagesDroppedByReason: number[];
  /** Control packets received, by packet type (index = type, {@linkcode PACKET_TYPE_LABELS}). */
  readonly packetsReceivedByType: number[];
  /** Control packets sent, by packet type. */
  readonly packetsSentByType: number[];
  /** PUBLISH received from clients, by QoS (index 0..2). */
  readonly messagesReceivedByQos: number[];
  /** PUBLISH sent to clients, by QoS (index 0..2). */
  readonly messagesSentByQos: number[];
  /** PUBLISH from clients that matched no subscription (v5 PUBACK 0x10). */
  messagesUnrouted: number;
  /** PUBLISH refused, by {@linkcode DENY_REASONS} index. */
  readonly publishDenied: number[];
  /** SUBSCRIBE filters refused, by {@linkcode DENY_REASONS} index. */
  readonly subscribeDenied: number[];
  /** Retained messages not kept, by {@linkcode RETAINED_REJECT_REASONS} index. */
  readonly retainedRejected: number[];
  /** Wills published (delay passed or session ended), after their authorization. */
  willsPublished: number;
  /** Sessions ended by their Session Expiry Interval. */
  sessionsExpired: number;
  /** Sessions taken over by a new connection with the same client id. */
  sessionTakeovers: number;
  /** Storage transactions committed (one per batch). */
  storageCommits: number;
  /** Storage transactions that failed. */
  storageCommitFailures: number;
  /** Operations written by those commits. */
  storageOperations: number;
  /** Seconds one storage commit took. */
  readonly storageCommitDuration: Histogram;
  /** Seconds from a PUBLISH's arrival to the subscriber's PUBACK (index 1) or PUBCOMP (index 2). */
  readonly deliveryLatency: readonly Histogram[];
  /** Seconds a 500 ms timer fired late (`lib/admin/loop_lag.ts`). */
  readonly eventLoopLag: Histogram;
  /** TLS handshakes that failed, by listener name (a configured name: bounded). */
  readonly tlsHandshakeFailures: Map<string, number>;
  /** Config reloads (SIGHUP, reload API), by {@linkcode RELOAD_RESULTS} index. */
  readonly configReloads: number[];
  /** Clients gone, by `DISCONNECT_REASONS` index (`events.ts`; counted from the event hub). */
  readonly disconnects: number[];
  /** Connections refused before they became clients, by `REFUSAL_REASONS` index (from the event hub). */
  readonly connectionsRefused: number[];
  /**
   * When the broker was made ({@linkcode tickTime}): a message received before (restored from storage) has no
   * delivery latency of this run.
   */
  readonly startedAt: number;
}

/** A message as the broker routes it: with the time it arrived, for the delivery latency. */
export interface ReceivedMessage extends Message {
  /** When its PUBLISH was read ({@linkcode tickTime}); absent for wills, `$SYS` and API messages. */
  readonly receivedAt?: number;
}

/** Counters at zero, started now. */
export function createCounters(startedAt: number = tickTime()): BrokerCounters {
  return {
    bytesReceived: 0,
    bytesSent: 0,
    packetsReceived: 0,
    packetsSent: 0,
    messagesReceived: 0,
    messagesSent: 0,
    connections: 0,
    messagesDropped: 0,
    messagesDroppedByReason: zeros(DROP_REASONS.length),
    packetsReceivedByType: zeros(PACKET_TYPE_LABELS.length),
    packetsSentByType: zeros(PACKET_TYPE_LABELS.length),
    messagesReceivedByQos: zeros(3),
    messagesSentByQos: zeros(3),
    messagesUnrouted: 0,
    publishDenied: zeros(DENY_REASONS.length),
    subscribeDenied: zeros(DENY_REASONS.length),
    retainedRejected: zeros(RETAINED_REJECT_REASONS.length),
    willsPublished: 0,
    sessionsExpired: 0,
    sessionTakeovers: 0,
    storageCommits: 0,
    storageCommitFailures: 0,
    storageOperations: 0,
    storageCommitDuration: new Histogram(LATENCY_BUCKETS),
    deliveryLatency: [
      new Histogram(LATENCY_BUCKETS),
      new Histogram(LATENCY_BUCKETS),
      new Histogram(LATENCY_BUCKETS),
    ],
    eventLoopLag: new Histogram(LOOP_LAG_BUCKETS),
    tlsHandshakeFailures: new Map(),
    configReloads: zeros(RELOAD_RESULTS.length),
    disconnects: zeros(DISCONNECT_REASONS.length),
    connectionsRefused: zeros(REFUSAL_REASONS.length),
    startedAt,
  };
}

/**
 * A QoS 1/2 delivery of `message` was acknowledged (PUBACK, PUBCOMP) now: its latency since the PUBLISH arrived
 * is observed, once per receiver. Messages without an arrival time of this run are skipped.
 */
export function observeDelivery(counters: BrokerCounters, message: Message, qos: number): void {
  const at = (message as ReceivedMessage).receivedAt;
  if (at === undefined || at < counters.startedAt) return;
  counters.deliveryLatency[qos]!.observe((tickTime() - at) / 1000);
}

/** {@linkcode tickTime}'s reading for the current turn, or -1 before the turn's first call. */
let tickNow = -1;
const forgetTick = (): void => {
  tickNow = -1;
};

/**
 * `performance.now()` read once per turn of the event loop (until the next microtask checkpoint), for the
 * delivery latency: every PUBLISH and acknowledgement handled in one turn arrived with the same poll of the
 * sockets. One clock read per PUBLISH and one per ack cost about 250 ns each here (Deno 2.9), 15% of the broker's
 * CPU per QoS 1 message; once per turn they cost nothing measurable. Real time, not the broker's injected clock:
 * latency is measured, not scheduled.
 */
export function tickTime(): number {
  if (tickNow < 0) {
    tickNow = performance.now();
    queueMicrotask(forgetTick);
  }
  return tickNow;
}

/** Counts one packet received, by the first byte of its fixed header. */
export function countReceived(counters: BrokerCounters, header: number): void {
  counters.packetsReceived++;
  counters.packetsReceivedByType[header >> 4]!++;
}

/**
 * Counts one packet sent, from its encoding: by type, and a PUBLISH as a message by its QoS. Returns whether it
 * was a PUBLISH.
 */
export function countSent(counters: BrokerCounters, bytes: Uint8Array): boolean {
  const header = bytes[0]!;
  counters.packetsSent++;
  counters.packetsSentByType[header >> 4]!++;
  if (header >> 4 !== PACKET_TYPE.PUBLISH) return false;
  counters.messagesSent++;
  counters.messagesSentByQos[(header >> 1) & 3]!++;
  return true;
}

/** Counts a message not delivered, for `reason` ({@linkcode DROP}). */
export function countDrop(counters: BrokerCounters, reason: DropReason, n = 1): void {
  counters.messagesDropped += n;
  counters.messagesDroppedByReason[reason]! += n;
}

/** Counts a failed TLS handshake on the listener named `listener`. */
export function countTlsHandshakeFailure(
  counters: Pick<BrokerCounters, "tlsHandshakeFailures">,
  listener: string,
): void {
  counters.tlsHandshakeFailures.set(listener, (counters.tlsHandshakeFailures.get(listener) ?? 0) + 1);
}

/** Counts a config reload (SIGHUP or the admin API) that worked or did not. */
export function countReload(counters: Pick<BrokerCounters, "configReloads">, ok: boolean): void {
  counters.configReloads[ok ? 0 : 1]!++;
}

const DISCONNECT_INDEX: ReadonlyMap<string, number> = new Map(DISCONNECT_REASONS.map((r, i) => [r, i]));
const REFUSAL_INDEX: ReadonlyMap<string, number> = new Map(REFUSAL_REASONS.map((r, i) => [r, i]));

/** Counters already fed by their broker's event hub. */
const countingEvents = new WeakSet<object>();

/**
 * Counts disconnects and refusals by reason from the lifecycle event hub, the one place their reasons are
 * classified (`events.ts`), from now on; calling it again changes nothing. The hub builds no event while nobody
 * listens, so this starts with whoever wants the metrics (the admin listener, the first scrape), not with the
 * broker: an unwatched broker pays nothing per connect.
 */
export function countClientEvents(
  counters: Pick<BrokerCounters, "disconnects" | "connectionsRefused">,
  events: BrokerEvents,
): void {
  if (countingEvents.has(counters)) return;
  countingEvents.add(counters);
  events.on((event) => {
    if (event.event === "disconnected") {
      const i = DISCONNECT_INDEX.get(event.reason);
      if (i !== undefined) counters.disconnects[i]!++;
    } else if (event.event === "refused") {
      const i = REFUSAL_INDEX.get(event.reason);
      if (i !== undefined) counters.connectionsRefused[i]!++;
    }
  });
}

/** A packed array of small integers (not a holey one): the fastest slots V8 has to add to. */
function zeros(n: number): number[] {
  return Array.from({ length: n }, () => 0);
}
