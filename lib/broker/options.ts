/**
 * The broker's options: what can be set, and every default filled in once.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { QoS } from "../packet/packet_type.ts";
import type { TopicLimits } from "../topic/topic.ts";
import { VARINT_MAX } from "../codec/varint.ts";
import type { Authenticator, Authorizer, EnhancedAuthMethod } from "./auth/auth.ts";
import { ALLOW_ALL, ANONYMOUS_AUTHENTICATOR } from "./auth/auth.ts";
import type { Logger } from "./logger.ts";
import { SILENT_LOGGER } from "./logger.ts";
import type { Persistence } from "./storage/persistence.ts";
import { REAL_CLOCK } from "../clock.ts";

/** Session Expiry Interval meaning "never". */
export const EXPIRY_NEVER = 0xffffffff;

/** Options for {@linkcode Broker}. Every limit has a safe default. */
export interface BrokerOptions {
  /** Durable storage; without it nothing survives a restart. */
  persistence?: Persistence;
  /** Where log lines go. @default {SILENT_LOGGER} */
  logger?: Logger;
  /** Time source (a ManualClock in tests). @default {REAL_CLOCK} */
  clock?: Clock;
  /** Who may connect. @default anonymous where the listener allows it */
  authenticator?: Authenticator;
  /** What clients may do. @default {ALLOW_ALL} */
  authorizer?: Authorizer;
  /**
   * v5 enhanced authentication methods by name. Without an `authenticator` as well, a plain CONNECT that carries a
   * User Name is refused (0x87): nothing would check it.
   */
  authMethods?: readonly EnhancedAuthMethod[];
  /** Largest packet accepted, in bytes (CONNACK Maximum Packet Size). @default {1048576} */
  maxPacketSize?: number;
  /** A socket that sends no CONNECT within this many ms is closed. @default {10000} */
  connectTimeout?: number;
  /** Largest keep alive in seconds (Mosquitto's max_keepalive). @default {65535} */
  maxKeepAlive?: number;
  /** Outgoing QoS 1/2 messages in flight per client (capped by a v5 client's Receive Maximum). @default {100} */
  maxInflight?: number;
  /** Incoming QoS 1/2 messages a v5 client may have unacknowledged (CONNACK Receive Maximum). @default {100} */
  receiveMaximum?: number;
  /** QoS 1/2 messages queued per session behind the inflight window; 0 for no limit (as Mosquitto's
   * `max_queued_messages 0`). @default {1000} */
  maxQueued?: number;
  /** Queue QoS 0 messages for offline persistent sessions. @default {false} */
  queueQoS0?: boolean;
  /** Unwritten bytes per connection past which QoS 0 messages to it are dropped. @default {1048576} */
  maxOutputBytes?: number;
  /** Topic aliases a v5 client may use towards the broker (CONNACK Topic Alias Maximum). @default {10} */
  topicAliasMaximum?: number;
  /** Use topic aliases towards v5 clients that allow them. @default {true} */
  topicAliasOut?: boolean;
  /** Longest session expiry granted, seconds. @default {0xFFFFFFFF} */
  maxSessionExpiry?: number;
  /**
   * Seconds after which a session that would otherwise never expire ends once its client has gone: MQTT 3.1 /
   * 3.1.1 Clean Session 0 sessions, and v5 ones with Session Expiry Interval 0xFFFFFFFF (Mosquitto's
   * `persistent_client_expiration`; clients with random ids otherwise leave sessions forever). 0 keeps them.
   * @default {0}
   */
  persistentClientExpiration?: number;
  /** Highest QoS supported. @default {2} */
  maxQoS?: QoS;
  /** Keep retained messages; off, a retained PUBLISH gets DISCONNECT 0x9A [MQTT-3.2.2-14 (5.0)]. @default {true} */
  retainAvailable?: boolean;
  /** Allow `+` and `#` in filters; off, such a filter gets SUBACK 0xA2 (v3: 0x80). @default {true} */
  wildcardSubscriptionsAvailable?: boolean;
  /** Allow v5 Subscription Identifiers; off, a SUBSCRIBE with one gets DISCONNECT 0xA1. @default {true} */
  subscriptionIdentifiersAvailable?: boolean;
  /** Allow `$share/...` filters; off, such a filter gets SUBACK 0x9E (v3: 0x80). @default {true} */
  sharedSubscriptionsAvailable?: boolean;
  /** Refuse a PUBLISH whose Payload Format Indicator says UTF-8 when it is not (0x99). @default {true} */
  checkPayloadFormat?: boolean;
  /** Response Information returned to v5 clients that request it. */
  responseInformation?: string;
  /**
   * Send every client elsewhere: v5 clients get CONNACK 0x9D Server moved (`permanent`) or 0x9C Use another
   * server with a Server Reference; 3.1.1 clients get 0x03 Server unavailable.
   */
  redirect?: { readonly reference: string; readonly permanent?: boolean };
  /** Open connections in all. @default {100000} */
  maxConnections?: number;
  /**
   * Open connections from one IP address; `Infinity` for no limit. Behind a NAT or a reverse proxy many clients
   * share an address: raise it there. @default {1024}
   */
  maxConnectionsPerAddress?: number;
  /** CONNECTs per second from one IP address; past it, CONNACK 0x9F. @default {Infinity} */
  connectRatePerAddress?: number;
  /** PUBLISH per second from one client; past it, DISCONNECT 0x96 Message rate too high. @default {Infinity} */
  messageRatePerClient?: number;
  /** Payload bytes per second one client may publish; past it, PUBACK/PUBREC 0x97 Quota exceeded. @default {Infinity} */
  publishBytesPerSecond?: number;
  /** Payload bytes queued per session behind the inflight window; 0 for no limit (as Mosquitto's
   * `max_queued_bytes 0`). @default {67108864} */
  maxQueuedBytes?: number;
  /** Subscriptions per client. @default {10000} */
  maxSubscriptionsPerClient?: number;
  /** Topic name and filter limits. @default {{ maxLength: 65535, maxDepth: 128 }} */
  topicLimits?: TopicLimits;
  /** Retained message count limit. @default {Infinity} */
  maxRetained?: number;
  /** Retained payload bytes limit. @default {Infinity} */
  maxRetainedBytes?: number;
  /** Seconds between `$SYS` updates; 0 turns them off. @default {10} */
  sysInterval?: number;
}

/** {@linkcode BrokerOptions} with every default filled in. */
export type ResolvedOptions =
  & Required<
    Omit<BrokerOptions, "persistence" | "responseInformation" | "topicLimits" | "authMethods" | "redirect">
  >
  & {
    readonly responseInformation: string | undefined;
    readonly redirect: { readonly reference: string; readonly permanent?: boolean } | undefined;
    readonly topicLimits: TopicLimits;
  };

/**
 * Fills in every default of `options`.
 *
 * @throws {RangeError} when `maxPacketSize` or `receiveMaximum` is outside what the protocol can express.
 */
export function resolveOptions(options: BrokerOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    logger: options.logger ?? SILENT_LOGGER,
    clock: options.clock ?? REAL_CLOCK,
    authenticator: options.authenticator ?? ANONYMOUS_AUTHENTICATOR,
    authorizer: options.authorizer ?? ALLOW_ALL,
    maxPacketSize: options.maxPacketSize ?? 1_048_576,
    connectTimeout: options.connectTimeout ?? 10_000,
    maxKeepAlive: options.maxKeepAlive ?? 65535,
    maxInflight: options.maxInflight ?? 100,
    receiveMaximum: options.receiveMaximum ?? 100,
    maxQueued: noLimitIfZero(options.maxQueued ?? 1000),
    queueQoS0: options.queueQoS0 ?? false,
    maxOutputBytes: options.maxOutputBytes ?? 1_048_576,
    topicAliasMaximum: options.topicAliasMaximum ?? 10,
    topicAliasOut: options.topicAliasOut ?? true,
    maxSessionExpiry: options.maxSessionExpiry ?? EXPIRY_NEVER,
    persistentClientExpiration: options.persistentClientExpiration ?? 0,
    maxQoS: options.maxQoS ?? 2,
    retainAvailable: options.retainAvailable ?? true,
    wildcardSubscriptionsAvailable: options.wildcardSubscriptionsAvailable ?? true,
    subscriptionIdentifiersAvailable: options.subscriptionIdentifiersAvailable ?? true,
    sharedSubscriptionsAvailable: options.sharedSubscriptionsAvailable ?? true,
    checkPayloadFormat: options.checkPayloadFormat ?? true,
    responseInformation: options.responseInformation,
    redirect: options.redirect,
    maxConnections: options.maxConnections ?? 100_000,
    maxConnectionsPerAddress: options.maxConnectionsPerAddress ?? 1024,
    connectRatePerAddress: options.connectRatePerAddress ?? Infinity,
    messageRatePerClient: options.messageRatePerClient ?? Infinity,
    publishBytesPerSecond: options.publishBytesPerSecond ?? Infinity,
    maxQueuedBytes: noLimitIfZero(options.maxQueuedBytes ?? 64 * 1024 * 1024),
    maxSubscriptionsPerClient: options.maxSubscriptionsPerClient ?? 10_000,
    topicLimits: options.topicLimits ?? { maxLength: 65535, maxDepth: 128 },
    maxRetained: options.maxRetained ?? Infinity,
    maxRetainedBytes: options.maxRetainedBytes ?? Infinity,
    sysInterval: options.sysInterval ?? 10,
  };
  if (resolved.maxPacketSize > VARINT_MAX + 5 || resolved.maxPacketSize < 16) {
    throw new RangeError(`maxPacketSize must be between 16 and ${VARINT_MAX + 5}`);
  }
  if (resolved.receiveMaximum < 1 || resolved.receiveMaximum > 65535) {
    throw new RangeError("receiveMaximum must be between 1 and 65535");
  }
  return resolved;
}

function noLimitIfZero(limit: number): number {
  return limit === 0 ? Infinity : limit;
}
