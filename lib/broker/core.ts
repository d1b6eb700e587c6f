/**
 * What a connection sees of the broker: the state shared by all connections and the steps of a connection's
 * life that touch other clients. The broker builds one (`context.ts`); nothing outside `lib/broker/` uses it.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { AuthPacket } from "../packet/auth.ts";
import type { ConnectPacket, WillMessage } from "../packet/connect.ts";
import type { Properties } from "../packet/properties.ts";
import type { PublishPacket } from "../packet/publish.ts";
import type { TopicRouter } from "../topic/router.ts";
import type { ClusterNode } from "../cluster/node.ts";
import type { Authorizer } from "./auth/auth.ts";
import type { Connection } from "./connection.ts";
import type { DeadlineQueue } from "./deadlines.ts";
import type { AddressLimiter } from "./limits.ts";
import type { Logger } from "./logger.ts";
import type { ResolvedOptions } from "./options.ts";
import type { RetainedStore } from "./retained.ts";
import type { Session } from "./session.ts";
import type { CommitQueue } from "./storage/commit_queue.ts";
import type { Message } from "./storage/persistence.ts";

/** Counters behind `$SYS`. */
export interface BrokerStats {
  /** Bytes read from all connections. */
  bytesReceived: number;
  /** Bytes written to all connections. */
  bytesSent: number;
  /** Control packets of every type received. */
  packetsReceived: number;
  /** Control packets of every type sent. */
  packetsSent: number;
  /** PUBLISH received. */
  messagesReceived: number;
  /** PUBLISH sent. */
  messagesSent: number;
  /** Connections accepted since start. */
  connections: number;
}

/** The outcome of an authentication step for the connection. */
export type AuthOutcome =
  | {
    readonly reasonCode: number;
    readonly reason?: string;
    readonly username?: string;
    /** Authentication Method / Data for the CONNACK or final AUTH. */
    readonly properties?: Properties;
  }
  | { readonly challenge: Properties };

/**
 * What a connection needs from the broker: the state shared by all connections, and the steps of a
 * connection's life that touch other clients. `BrokerContext` (`context.ts`) implements it; a
 * {@linkcode Connection} sees nothing else of the broker.
 */
export interface BrokerCore {
  /** The broker's options with every default filled in. */
  readonly options: ResolvedOptions;
  /** The `$SYS` counters; connections add their traffic. */
  readonly stats: BrokerStats;
  /** The time source for keep-alive, expiry and timers. */
  readonly clock: Clock;
  /** Where log lines go. */
  readonly logger: Logger;
  /** Checks every PUBLISH, SUBSCRIBE and delivery. */
  readonly authorizer: Authorizer;
  /** The cluster this broker is a node of (CONNECT claims its client id there); `undefined` for one broker. */
  readonly cluster: ClusterNode | undefined;
  /** The subscriptions of every session. */
  readonly router: TopicRouter;
  /** Retained messages, sent to new subscribers. */
  readonly retained: RetainedStore;
  /** Durable changes go here; a QoS 1/2 acknowledgement waits for them. `undefined` without persistence. */
  readonly store: CommitQueue | undefined;
  /** The v5 CONNACK properties announcing the broker's limits, the same for every connection. */
  readonly connackProperties: Properties;
  /** Connect timeouts and keep alives of every connection (see `deadlines.ts`). */
  readonly deadlines: DeadlineQueue<Connection>;
  /** Limits CONNECTs per second from one IP address. */
  readonly connectLimiter: AddressLimiter;
  /** A fresh client identifier for a CONNECT with an empty one [MQTT-3.1.3-6 (5.0)] [MQTT-3.1.3-6 (3.1.1)]. */
  assignClientId(): string;
  /**
   * Decides on a CONNECT: with an Authentication Method it starts that enhanced authentication (which may
   * answer with a challenge); otherwise it asks the authenticator, passing `signal` (aborted when the connection
   * closes first).
   */
  authenticate(
    connection: Connection,
    packet: ConnectPacket,
    signal: AbortSignal,
  ): AuthOutcome | Promise<AuthOutcome>;
  /** Takes the next step of the enhanced authentication `connection` started with CONNECT (section 4.12). */
  continueAuth(connection: Connection, packet: AuthPacket): Promise<AuthOutcome>;
  /** Re-authentication after CONNACK, with the method CONNECT used (section 4.12.1). */
  reauthenticate(connection: Connection, packet: AuthPacket): Promise<AuthOutcome>;
  /**
   * Resumes or creates the client's session for an accepted CONNECT: takes it over from an older connection,
   * discards it on Clean Start. `present` is CONNACK's Session Present.
   */
  openSession(
    connection: Connection,
    packet: ConnectPacket,
    expiry: number,
  ): { session: Session; present: boolean };
  /** Makes `connection` the session's link, which sends what the session holds for the client. */
  attach(connection: Connection, session: Session): void;
  /** The connection is gone: its will is scheduled, and the session ends or starts to expire. */
  detach(connection: Connection, session: Session, will: WillMessage | undefined): void;
  /** Stores a persistent session again after its subscriptions or expiry changed. */
  sessionChanged(session: Session): void;
  /** Makes the broker's copy of an inbound PUBLISH: owned payload, absolute expiry, no per-hop properties. */
  messageFrom(topic: string, packet: PublishPacket, origin: string): Message;
  /** Makes the message a will is published as. */
  messageFromWill(will: WillMessage, origin: string): Message;
  /** Routes a message to every matching session; returns how many sessions it was given to. */
  publish(message: Message): number;
  /** The connection has closed: it no longer counts against the connection limits. */
  connectionClosed(connection: Connection): void;
}
