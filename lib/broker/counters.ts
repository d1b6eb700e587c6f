/**
 * The broker's counters: totals since the broker started, broker-wide, that only grow (a session or connection
 * that ends takes nothing away). `$SYS` is derived from them; metrics exporters read them the same way.
 *
 * @module
 */

import type { BrokerStats } from "./core.ts";

/** Every broker-wide counter; connections add their traffic, sessions their drops. */
export interface BrokerCounters extends BrokerStats {
  /**
   * Messages not delivered to a subscriber: QoS 0 for a client that is away or congested, QoS 1/2 over a full
   * queue (`maxQueued`, `maxQueuedBytes`).
   */
  messagesDropped: number;
}

/** Counters at zero. */
export function createCounters(): BrokerCounters {
  return {
    bytesReceived: 0,
    bytesSent: 0,
    packetsReceived: 0,
    packetsSent: 0,
    messagesReceived: 0,
    messagesSent: 0,
    connections: 0,
    messagesDropped: 0,
  };
}
