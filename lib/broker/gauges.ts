/**
 * The broker's gauges: what is true right now (connections, sessions, subscriptions, queues), computed when
 * asked by walking the sessions once, never kept up to date on the hot path. `/metrics`, the admin API's stats
 * and `$SYS` read them; the totals that only grow are in `counters.ts`.
 *
 * @module
 */

import type { Broker } from "./broker.ts";

/** Connected clients by the protocol their CONNECT asked for. */
export interface ClientsByProtocol {
  /** MQTT 3.1 (protocol level 3). */
  "3.1": number;
  /** MQTT 3.1.1 (protocol level 4). */
  "3.1.1": number;
  /** MQTT 5.0 (protocol level 5). */
  "5.0": number;
}

/** What is true of the broker at one moment. */
export interface BrokerGauges {
  /** Open connections, CONNECT received or not. */
  connections: number;
  /** Sessions with a live connection (CONNECT accepted). */
  clientsConnected: number;
  /** {@linkcode BrokerGauges.clientsConnected} by protocol. */
  clientsConnectedByProtocol: ClientsByProtocol;
  /** Sessions with a live connection. */
  sessionsOnline: number;
  /** Sessions kept for a client that is away (until their expiry). */
  sessionsOffline: number;
  /** Subscriptions of every session, shared ones included. */
  subscriptions: number;
  /** Of those, `$share/...` subscriptions. */
  sharedSubscriptions: number;
  /** Retained messages held. */
  retained: number;
  /** Payload bytes of the retained messages. */
  retainedBytes: number;
  /** Outgoing QoS 1/2 messages sent and not yet acknowledged, over every session. */
  inflight: number;
  /** QoS 1/2 messages waiting behind the inflight windows, over every session. */
  queued: number;
  /** Payload bytes of those. */
  queuedBytes: number;
  /** Connected clients whose unwritten output is over `maxOutputBytes` (QoS 0 to them is dropped). */
  congested: number;
}

/**
 * The gauges of `broker` now: one pass over its sessions (O(sessions)); subscription counts come from the router.
 *
 * @example
 * ```ts
 * import { Broker } from "./broker.ts";
 * import { brokerGauges } from "./gauges.ts";
 * const gauges = brokerGauges(new Broker());
 * console.assert(gauges.clientsConnected === 0);
 * ```
 */
export function brokerGauges(broker: Broker): BrokerGauges {
  const byProtocol: ClientsByProtocol = { "3.1": 0, "3.1.1": 0, "5.0": 0 };
  let online = 0;
  let offline = 0;
  let inflight = 0;
  let queued = 0;
  let queuedBytes = 0;
  let congested = 0;
  const router = broker.router;
  for (const session of broker.sessions.values()) {
    const link = session.link;
    if (link === undefined) {
      offline++;
    } else {
      online++;
      if (link.protocolVersion === 5) byProtocol["5.0"]++;
      else if (link.protocolVersion === 4) byProtocol["3.1.1"]++;
      else byProtocol["3.1"]++;
      if (link.congested) congested++;
    }
    inflight += session.inflight.size;
    queued += session.queued;
    queuedBytes += session.queuedBytes;
  }
  const retained = broker.retained;
  return {
    connections: broker.connectionCount,
    clientsConnected: online,
    clientsConnectedByProtocol: byProtocol,
    sessionsOnline: online,
    sessionsOffline: offline,
    subscriptions: router.size,
    sharedSubscriptions: router.sharedSize,
    retained: retained.size,
    retainedBytes: retained.bytes,
    inflight,
    queued,
    queuedBytes,
    congested,
  };
}
