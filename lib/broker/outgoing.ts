/**
 * An outgoing QoS 1/2 message of a session (section 4.3): in memory while it waits or is in flight, and in the
 * form the store keeps.
 *
 * @module
 */

import type { QoS } from "../packet/packet_type.ts";
import type { Message, OutgoingMessage, OutgoingState } from "./storage/persistence.ts";

/** An outgoing QoS 1/2 message in memory. */
export interface Outgoing {
  /** Orders the session's messages and names this one in the store. */
  readonly seq: number;
  /** The message as published, shared with the other receivers. */
  readonly message: Message;
  /** Delivery QoS: the lower of the published and the granted QoS. */
  readonly qos: QoS;
  /** RETAIN as delivered (Retain As Published applied). */
  readonly retain: boolean;
  /** The matching subscriptions' v5 identifiers; `undefined` when none has one. */
  readonly subscriptionIds: readonly number[] | undefined;
  /** 0 until it enters the inflight window. */
  packetId: number;
  /** Where it is in its QoS 1/2 flow. */
  state: OutgoingState;
  /** The `$share/...` filter it was delivered through, so it can go to another member if this one leaves. */
  readonly shareFilter?: string;
}

/** What the store keeps of `entry`. */
export function toStoredOutgoing(entry: Outgoing): OutgoingMessage {
  return {
    seq: entry.seq,
    message: entry.message,
    qos: entry.qos,
    retain: entry.retain,
    ...(entry.subscriptionIds === undefined ? {} : { subscriptionIds: entry.subscriptionIds }),
    ...(entry.packetId === 0 ? {} : { packetId: entry.packetId }),
    state: entry.state,
  };
}

/** The in-memory entry of a stored message (at broker start). */
export function fromStoredOutgoing(stored: OutgoingMessage): Outgoing {
  return {
    seq: stored.seq,
    message: stored.message,
    qos: stored.qos,
    retain: stored.retain,
    subscriptionIds: stored.subscriptionIds,
    packetId: stored.packetId ?? 0,
    state: stored.state,
  };
}
