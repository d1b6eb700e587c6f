/**
 * The client's options and the shapes it hands back: what {@linkcode MqttClient} is given, the results of its
 * calls, its observable state, and the defaults in one place.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Packet } from "../packet/packet.ts";
import type { ProtocolVersion, QoS } from "../packet/packet_type.ts";
import type { Properties } from "../packet/properties.ts";
import type { BackoffOptions } from "./backoff.ts";
import type { Connector, TlsOptions } from "./connector.ts";
import type { EnhancedAuth } from "./enhanced_auth.ts";

/** Which way a packet went, for {@linkcode MqttClientOptions.onPacket}. */
export type PacketDirection = "in" | "out";

/** The v5 properties a CONNECT may carry. */
export type ConnectProperties = Pick<
  Properties,
  | "sessionExpiryInterval"
  | "receiveMaximum"
  | "maximumPacketSize"
  | "topicAliasMaximum"
  | "requestResponseInformation"
  | "requestProblemInformation"
  | "userProperties"
  | "authenticationMethod"
  | "authenticationData"
>;

/** The v5 properties of a will message. */
export type WillProperties = Pick<
  Properties,
  | "willDelayInterval"
  | "payloadFormatIndicator"
  | "messageExpiryInterval"
  | "contentType"
  | "responseTopic"
  | "correlationData"
  | "userProperties"
>;

/** The v5 properties a client may put on a PUBLISH (Topic Alias is managed by the client). */
export type PublishProperties = Pick<
  Properties,
  | "payloadFormatIndicator"
  | "messageExpiryInterval"
  | "contentType"
  | "responseTopic"
  | "correlationData"
  | "userProperties"
>;

/** The v5 properties a client may put on a DISCONNECT. */
export type DisconnectProperties = Pick<
  Properties,
  "sessionExpiryInterval" | "reasonString" | "userProperties"
>;

/** The will message the server publishes if the client goes away without a DISCONNECT. */
export interface WillOptions {
  /** The topic the will is published to. */
  topic: string;
  /**
   * The will's payload (a string is sent as UTF-8).
   * @default {empty}
   */
  payload?: string | Uint8Array;
  /**
   * The will's QoS.
   * @default {0}
   */
  qos?: QoS;
  /**
   * Whether the will is retained.
   * @default {false}
   */
  retain?: boolean;
  /** v5 will properties. */
  properties?: WillProperties;
}

/** Automatic reconnect settings. */
export interface ReconnectOptions extends BackoffOptions {
  /**
   * Failed attempts in a row after which the client gives up and closes with the last error.
   * @default {Infinity}
   */
  maxAttempts?: number;
}

/** Options for {@linkcode MqttClient}. */
export interface MqttClientOptions {
  /**
   * The server's host name.
   * @default {"localhost"}
   */
  hostname?: string;
  /**
   * The server's port.
   * @default {1883, or 8883 with TLS}
   */
  port?: number;
  /** Connect with TLS (`Deno.connectTls`); an object sets TLS options. */
  tls?: boolean | TlsOptions;
  /** Opens the byte stream for each (re)connect; overrides `hostname`, `port` and `tls`. */
  connect?: Connector;
  /**
   * 3 = MQTT 3.1, 4 = MQTT 3.1.1, 5 = MQTT 5.0.
   * @default {5}
   */
  protocolVersion?: ProtocolVersion;
  /**
   * The Client Identifier. An empty string in v5 lets the server assign one (kept for reconnects).
   * @default {"deno-" and 12 random hex digits}
   */
  clientId?: string;
  /**
   * Clean Start (v5) / Clean Session (v3) on the first connect. Reconnects in v5 always ask to resume the session.
   * @default {true}
   */
  cleanStart?: boolean;
  /**
   * Keep Alive in seconds; 0 turns it off. A Server Keep Alive in CONNACK overrides it.
   * @default {60}
   */
  keepAlive?: number;
  /** The User Name. */
  username?: string;
  /** The Password (a string is sent as UTF-8); MQTT 3.1/3.1.1 need a user name with it. */
  password?: string | Uint8Array;
  /** The will message. */
  will?: WillOptions;
  /** v5 CONNECT properties. */
  properties?: ConnectProperties;
  /**
   * v5 enhanced authentication (e.g. {@linkcode scramSha256}); it sets the Authentication Method and Data of
   * CONNECT and answers the server's AUTH challenges.
   */
  enhancedAuth?: EnhancedAuth;
  /**
   * Reconnect after a lost connection (the first connect is never retried). `false` turns it off.
   * @default {true}
   */
  reconnect?: boolean | ReconnectOptions;
  /**
   * Subscribe again after reconnecting when the server kept no session.
   * @default {true}
   */
  resubscribe?: boolean;
  /**
   * Use v5 Topic Aliases for outgoing PUBLISH packets, up to the server's Topic Alias Maximum.
   * @default {true}
   */
  topicAliases?: boolean;
  /**
   * How long a connect attempt may take, TCP and CONNACK together, in milliseconds.
   * @default {30000}
   */
  connectTimeoutMs?: number;
  /**
   * How long to wait for an answer to a keep-alive PINGREQ before the broker is declared dead.
   * @default {half the keep-alive interval, at least 1000}
   */
  pingTimeoutMs?: number;
  /**
   * Messages kept for a {@linkcode MqttClient.messages} iterator opened later, when no iterator wanted them.
   * @default {1000}
   */
  maxUnclaimedMessages?: number;
  /**
   * The time seam for keep-alive, timeouts and backoff.
   * @default {REAL_CLOCK}
   */
  clock?: Clock;
  /** Random numbers in [0, 1) for backoff jitter; tests make it fixed. */
  random?: () => number;
  /** Aborting it closes the client. */
  signal?: AbortSignal;
  /** Hears every packet sent and received (for tracing); it must not throw and must not keep the packet. */
  onPacket?: (direction: PacketDirection, packet: Packet) => void;
  /** Hears every state change. */
  onStateChange?: (state: ClientState) => void;
}

/** The outcome of a successful connect. */
export interface ConnectResult {
  /** Whether the server resumed a session for this Client Identifier. */
  readonly sessionPresent: boolean;
  /** The Client Identifier in use (the server's when it assigned one). */
  readonly clientId: string;
  /** The keep-alive in effect, in seconds. */
  readonly keepAlive: number;
  /** The CONNACK properties (v5). */
  readonly properties?: Properties;
}

/** Options for {@linkcode MqttClient.publish}. */
export interface PublishOptions {
  /**
   * The QoS.
   * @default {0}
   */
  qos?: QoS;
  /**
   * Whether the server keeps the message for future subscribers.
   * @default {false}
   */
  retain?: boolean;
  /** v5 PUBLISH properties. */
  properties?: PublishProperties;
  /** Rejects the promise; a message not yet sent is dropped. */
  signal?: AbortSignal;
}

/** The outcome of a completed publish flow. */
export interface PublishResult {
  /** The PUBACK or PUBREC reason code (v5), e.g. 0x10 No matching subscribers; 0 otherwise. */
  readonly reasonCode: number;
  /** The acknowledgement's properties (v5), e.g. a Reason String. */
  readonly properties?: Properties;
}

/** Subscription options (v5 options are ignored by v3 servers). */
export interface SubscriptionOptions {
  /**
   * The maximum QoS to receive messages with.
   * @default {0}
   */
  qos?: QoS;
  /** v5: do not receive our own messages. */
  noLocal?: boolean;
  /** v5: keep the RETAIN flag as published. */
  retainAsPublished?: boolean;
  /** v5: 0 send retained messages, 1 only for a new subscription, 2 never. */
  retainHandling?: 0 | 1 | 2;
}

/** One filter with its own options. */
export interface TopicSubscription extends SubscriptionOptions {
  /** The Topic Filter. */
  filter: string;
}

/** Options for {@linkcode MqttClient.subscribe}: defaults for every filter, and packet properties. */
export interface SubscribeOptions extends SubscriptionOptions {
  /** v5 Subscription Identifier, echoed on matching messages. */
  subscriptionIdentifier?: number;
  /** v5 User Properties of the SUBSCRIBE. */
  userProperties?: readonly (readonly [string, string])[];
  /** Rejects the promise (the SUBSCRIBE is not sent if it has not gone out yet). */
  signal?: AbortSignal;
}

/** The outcome of SUBSCRIBE or UNSUBSCRIBE. */
export interface SubscribeResult {
  /** One per filter, in order: granted QoS (0-2) or a failure code (0x80 and above). */
  readonly reasonCodes: readonly number[];
  /** The acknowledgement's properties (v5). */
  readonly properties?: Properties;
}

/** Options for {@linkcode MqttClient.unsubscribe}. */
export interface UnsubscribeOptions {
  /** v5 User Properties of the UNSUBSCRIBE. */
  userProperties?: readonly (readonly [string, string])[];
  /** Rejects the promise (the UNSUBSCRIBE is not sent if it has not gone out yet). */
  signal?: AbortSignal;
}

/** Options for {@linkcode MqttClient.close}. */
export interface CloseOptions {
  /**
   * The v5 DISCONNECT reason code; 0x04 asks the server to publish the will.
   * @default {0}
   */
  reasonCode?: number;
  /** v5 DISCONNECT properties, e.g. a new Session Expiry Interval. */
  properties?: DisconnectProperties;
}

/** Where the client is. */
export type ClientState =
  | { readonly kind: "new" }
  | { readonly kind: "connecting"; readonly attempt: number }
  | { readonly kind: "connected"; readonly connack: ConnectResult }
  | {
    readonly kind: "reconnecting";
    readonly attempt: number;
    readonly delayMs: number;
    readonly error: Error;
  }
  | { readonly kind: "closing" }
  | { readonly kind: "closed"; readonly error?: Error };

/** A snapshot for status displays. */
export interface ClientStatus {
  /** The state's kind. */
  readonly state: ClientState["kind"];
  /** The Client Identifier in use. */
  readonly clientId: string;
  /** The protocol version. */
  readonly protocolVersion: ProtocolVersion;
  /** Filters the client will subscribe again after a reconnect. */
  readonly subscriptions: readonly string[];
  /** Outgoing QoS 1/2 messages waiting for their acknowledgement. */
  readonly inflightOut: number;
  /** Outgoing messages waiting for a connection or a free slot in the server's Receive Maximum. */
  readonly queuedOut: number;
  /** Incoming QoS 1/2 messages not yet acknowledged. */
  readonly inflightIn: number;
  /** Received messages waiting for an iterator. */
  readonly unclaimed: number;
  /** QoS 0 messages dropped because no iterator took them. */
  readonly dropped: number;
  /** The server's limits from the last CONNACK. */
  readonly server?: ServerLimits;
}

/** What the server allows, from CONNACK. */
export interface ServerLimits {
  /** QoS 1/2 messages the server takes unacknowledged at once (65,535 when it did not say). */
  readonly receiveMaximum: number;
  /** The largest packet the server accepts, when it said. */
  readonly maximumPacketSize?: number;
  /** Topic aliases the server accepts (0: none). */
  readonly topicAliasMaximum: number;
  /** The highest QoS the server supports. */
  readonly maximumQoS: QoS;
  /** Whether the server keeps retained messages. */
  readonly retainAvailable: boolean;
}

/** The defaults of {@linkcode MqttClientOptions} and of what a CONNACK leaves out, where the code reads them. */
export const CLIENT_DEFAULTS = {
  hostname: "localhost",
  port: 1883,
  tlsPort: 8883,
  protocolVersion: 5,
  keepAlive: 60,
  connectTimeoutMs: 30_000,
  /** The server's Receive Maximum when CONNACK does not say (section 3.2.2.3.3). */
  receiveMaximum: 65_535,
} as const;

/** How long a PINGREQ may go unanswered: the option, else half the keep-alive interval and at least a second. */
export function pingTimeoutMs(options: MqttClientOptions, intervalMs: number): number {
  return options.pingTimeoutMs ?? Math.max(1000, intervalMs / 2);
}
