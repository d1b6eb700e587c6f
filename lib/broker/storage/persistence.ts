/**
 * The storage seam. The broker keeps its working state in memory and writes every change that must survive a
 * restart through {@linkcode Persistence.commit}, in batches (group commit): one transaction per event-loop turn.
 * A QoS 1/2 PUBLISH is acknowledged only after the batch holding its effects committed.
 *
 * Implementations: `MemoryPersistence` (tests, `--persistence memory`) and `SqlitePersistence` (the default).
 * Every implementation passes the one contract suite in `tests/broker/persistence_contract.ts`.
 *
 * @module
 */

import type { Properties } from "../../packet/properties.ts";
import type { ProtocolVersion, QoS } from "../../packet/packet_type.ts";
import type { Subscription } from "../../topic/router.ts";

/** An application message as the broker keeps it. */
export interface Message {
  /** The Topic Name, with any v5 Topic Alias already resolved. */
  readonly topic: string;
  /** Owned bytes (never a view of a socket buffer). */
  readonly payload: Uint8Array;
  /** QoS as published. */
  readonly qos: QoS;
  /** RETAIN as published. */
  readonly retain: boolean;
  /** v5 properties to forward (never Topic Alias or Subscription Identifier: those are per receiver). */
  readonly properties?: Properties;
  /** Absolute expiry, ms since the epoch (from Message Expiry Interval); absent when it never expires. */
  readonly expiresAt?: number;
  /** Client identifier of the publisher, for No Local; absent for the broker's own messages. */
  readonly origin?: string;
}

/** A session that outlives its connection (Clean Session 0, or v5 Session Expiry Interval > 0). */
export interface StoredSession {
  /** The client identifier the session belongs to; unique in the store. */
  readonly clientId: string;
  /** The protocol of its last connection: it decides how queued messages are encoded on resume. */
  readonly protocolVersion: ProtocolVersion;
  /** Seconds; 0xFFFFFFFF means it never expires. */
  readonly expiryInterval: number;
  /** When the client went away (ms since the epoch); absent while it is connected. */
  readonly disconnectedAt?: number;
  /** Its subscriptions as granted, put back into the router on restore. */
  readonly subscriptions: readonly Subscription[];
  /** The user name of the session's owner, for authorizing deliveries while it is offline. */
  readonly username?: string;
}

/** Where an outgoing QoS 1/2 message is in its flow. */
export type OutgoingState =
  /** waiting for room in the inflight window (or for the client to come back) */
  | "queued"
  /** PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2) */
  | "sent"
  /** PUBREL sent, waiting for PUBCOMP */
  | "released";

/** One message on its way to one session. */
export interface OutgoingMessage {
  /** Orders a session's messages; increases with every message queued to that session. */
  readonly seq: number;
  /** The message as published (shared by every session it was routed to). */
  readonly message: Message;
  /** Delivery QoS: the lower of the published and the subscribed QoS. */
  readonly qos: QoS;
  /** RETAIN flag as delivered (Retain As Published applied). */
  readonly retain: boolean;
  /** The receiving subscriptions' identifiers (v5). */
  readonly subscriptionIds?: readonly number[];
  /** Assigned when the message enters the inflight window. */
  readonly packetId?: number;
  /** How far its flow got: on resume, `sent` is resent with DUP and `released` gets its PUBREL again. */
  readonly state: OutgoingState;
}

/** A will waiting for its delay (v5 Will Delay Interval) or for its session to end. */
export interface PendingWill {
  /** The client whose will it is: at most one will per client. */
  readonly clientId: string;
  /** The will as a message, ready to be routed. */
  readonly message: Message;
  /** When to publish it, ms since the epoch. */
  readonly sendAt: number;
  /** The user name of the will's client: the will is authorized as that user when it is published. */
  readonly username?: string;
}

/** One change to durable state. Ops in one commit apply in order, all or none. */
export type PersistenceOp =
  | { readonly kind: "putRetained"; readonly message: Message }
  | { readonly kind: "deleteRetained"; readonly topic: string }
  | { readonly kind: "putSession"; readonly session: StoredSession }
  /** Deletes the session and everything of it: outgoing, incoming and its pending will. */
  | { readonly kind: "deleteSession"; readonly clientId: string }
  | { readonly kind: "putOutgoing"; readonly clientId: string; readonly entry: OutgoingMessage }
  | { readonly kind: "deleteOutgoing"; readonly clientId: string; readonly seq: number }
  /** A QoS 2 PUBLISH received and answered with PUBREC, waiting for PUBREL. */
  | { readonly kind: "putIncoming"; readonly clientId: string; readonly packetId: number }
  | { readonly kind: "deleteIncoming"; readonly clientId: string; readonly packetId: number }
  | { readonly kind: "putWill"; readonly will: PendingWill }
  | { readonly kind: "deleteWill"; readonly clientId: string };

/** A stored session with its queues. */
export interface LoadedSession extends StoredSession {
  /** By `seq`, ascending. */
  readonly outgoing: readonly OutgoingMessage[];
  /** Packet identifiers of incoming QoS 2 messages awaiting PUBREL. */
  readonly incoming: readonly number[];
}

/** Everything a broker needs to resume after a restart. */
export interface PersistedState {
  /** Retained messages, one per topic; the broker drops any that expired while it was down. */
  readonly retained: readonly Message[];
  /** Sessions that outlive their connection, each with its queues. */
  readonly sessions: readonly LoadedSession[];
  /** Wills still to be published; those whose time has passed go out right after the restore. */
  readonly wills: readonly PendingWill[];
}

/** A durable store for the broker's state. */
export interface Persistence {
  /** A short description for logs, e.g. `sqlite:./data/broker.db`. */
  readonly name: string;
  /** Opens the store and returns what it holds. Throws (never discards data) on corruption, lock or a newer schema. */
  load(): Promise<PersistedState>;
  /** Applies `ops` in one transaction. Resolves once they are durable. */
  commit(ops: readonly PersistenceOp[]): Promise<void>;
  /** Flushes and closes. */
  close(): Promise<void>;
}
