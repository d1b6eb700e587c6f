/**
 * The MQTT client: MQTT 3.1, 3.1.1 and 5.0 over any byte stream, with QoS 0/1/2 flows that resolve promises,
 * incoming messages as async iterators whose reading paces the acknowledgements, keep-alive, automatic reconnect
 * with backoff, resubscription, resumption of unacknowledged messages, and v5 topic aliases.
 *
 * One connection at a time; one task reads and dispatches, one {@linkcode WriteQueue} writes, and user calls only
 * queue packets, so nothing races on the socket.
 *
 * @module
 */

import { type Clock, REAL_CLOCK, type TimerId } from "../clock.ts";
import { MqttError, protocolError } from "../mqtt_error.ts";
import { encode } from "../packet/encode.ts";
import { utf8Encode } from "../codec/utf8.ts";
import type { AuthPacket } from "../packet/auth.ts";
import type { ConnackPacket } from "../packet/connack.ts";
import type { ConnectPacket, WillMessage } from "../packet/connect.ts";
import type { Packet } from "../packet/packet.ts";
import { PACKET_TYPE, packetName, type ProtocolVersion, type QoS } from "../packet/packet_type.ts";
import { PINGREQ } from "../packet/pingreq.ts";
import type { Properties } from "../packet/properties.ts";
import type { PublishPacket } from "../packet/publish.ts";
import { connackReasonFromV3, REASON_CODE, reasonName } from "../packet/reason_code.ts";
import type { SubscriptionRequest } from "../packet/subscribe.ts";
import { validateTopicFilter, validateTopicName } from "../topic/topic.ts";
import { backoffDelay, type BackoffOptions } from "./backoff.ts";
import { Connection, type ConnectionEnd } from "./connection.ts";
import { type Connector, hostPort, tcpConnector, tlsConnector, type TlsOptions } from "./connector.ts";
import type { ClientAuthExchange, EnhancedAuth } from "./enhanced_auth.ts";
import { Inbox, type MessagesOptions, type MqttMessage } from "./inbox.ts";
import { KeepAlive } from "./keepalive.ts";
import { PacketIds } from "./packet_id.ts";
import { IncomingTopicAliases, OutgoingTopicAliases } from "../topic/topic_alias.ts";
import { Fifo } from "./_fifo.ts";

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

type Deferred<T> = ReturnType<typeof Promise.withResolvers<T>>;

interface OutgoingPublish {
  readonly packet: PublishPacket;
  packetId: number | undefined;
  phase: "queued" | "publish_sent" | "pubrel_sent";
  dup: boolean;
  /** The PUBREC reason code of a QoS 2 flow. */
  received: PublishResult | undefined;
  readonly deferred: Deferred<PublishResult>;
  settled: boolean;
  cleanup: (() => void) | undefined;
}

interface IncomingEntry {
  readonly packetId: number;
  readonly qos: 1 | 2;
  /** queued: not yet taken; taken: taken while disconnected (QoS 2); pubrec_sent: waiting for PUBREL. */
  state: "queued" | "taken" | "pubrec_sent";
  epoch: number;
}

type RequestSpec =
  | {
    readonly kind: "subscribe";
    readonly subscriptions: readonly SubscriptionRequest[];
    readonly properties?: Properties;
  }
  | { readonly kind: "unsubscribe"; readonly filters: readonly string[]; readonly properties?: Properties };

interface PendingRequest {
  readonly packetId: number;
  readonly spec: RequestSpec;
  readonly deferred: Deferred<SubscribeResult>;
  sent: boolean;
  settled: boolean;
  cleanup: (() => void) | undefined;
}

interface RecordedSubscription {
  readonly request: SubscriptionRequest;
  readonly properties: Properties | undefined;
}

type State =
  | { kind: "new" }
  | {
    kind: "connecting";
    attempt: number;
    conn: Connection | undefined;
    controller: AbortController;
    handshake: Deferred<ConnectResult>;
    auth: ClientAuthExchange | undefined;
  }
  | {
    kind: "connected";
    conn: Connection;
    connack: ConnectResult;
    keepAlive: KeepAlive;
    disconnect: Error | undefined;
  }
  | { kind: "reconnecting"; attempt: number; delayMs: number; error: Error; timer: TimerId; wake: () => void }
  | { kind: "closing" }
  | { kind: "closed"; error: Error | undefined };

/** CONNACK refusals that another attempt will not fix. */
const PERMANENT_REFUSALS: ReadonlySet<number> = new Set([
  REASON_CODE.UnsupportedProtocolVersion,
  REASON_CODE.ClientIdentifierNotValid,
  REASON_CODE.BadUserNameOrPassword,
  REASON_CODE.NotAuthorized,
  REASON_CODE.Banned,
  REASON_CODE.BadAuthenticationMethod,
  REASON_CODE.TopicNameInvalid,
  REASON_CODE.PacketTooLarge,
  REASON_CODE.PayloadFormatInvalid,
  REASON_CODE.RetainNotSupported,
  REASON_CODE.QoSNotSupported,
  REASON_CODE.UseAnotherServer,
  REASON_CODE.ServerMoved,
]);

/** Server DISCONNECT reasons after which reconnecting would be wrong. */
const FINAL_DISCONNECTS: ReadonlySet<number> = new Set([
  REASON_CODE.SessionTakenOver,
  REASON_CODE.UseAnotherServer,
  REASON_CODE.ServerMoved,
]);

/** How long close() waits for the DISCONNECT to be written to a server that stopped reading. */
const CLOSE_FLUSH_MS = 5_000;

/** Errors that end the client instead of triggering another reconnect attempt. */
const FINAL_ERRORS = new WeakSet<Error>();

/**
 * An MQTT client.
 *
 * @example
 * ```ts ignore
 * import { MqttClient } from "./client.ts";
 * const client = new MqttClient({ hostname: "127.0.0.1", port: 1883 });
 * await client.connect();
 * await client.subscribe("sensors/#", { qos: 1 });
 * await client.publish("sensors/1", "21.5", { qos: 1 });
 * for await (const message of client.messages("sensors/#")) {
 *   console.log(message.topic, new TextDecoder().decode(message.payload));
 *   break;
 * }
 * await client.close();
 * ```
 */
export class MqttClient implements AsyncDisposable {
  #options: MqttClientOptions;
  #version: ProtocolVersion;
  #clientId: string;
  #connector: Connector;
  /** The server's address for error messages, when the client opens the stream itself. */
  #peer: string | undefined;
  #clock: Clock;
  #reconnect: ReconnectOptions | undefined;
  #state: State = { kind: "new" };
  #closing: Promise<void> | undefined;
  /** The connect attempt or reconnect loop running in the background. */
  #connecting: Promise<unknown> | undefined;
  #closed = Promise.withResolvers<Error | undefined>();

  #ids = new PacketIds();
  #publishQueue = new Fifo<OutgoingPublish>();
  #inflight = new Map<number, OutgoingPublish>();
  #requests = new Map<number, PendingRequest>();
  #subscriptions = new Map<string, RecordedSubscription>();
  #pings: { start: number; deferred: Deferred<number> }[] = [];
  #incoming = new Map<number, IncomingEntry>();
  /** Counts connections, so an acknowledgement never goes out on a connection the message did not come in on. */
  #epoch = 0;
  #limits: ServerLimits | undefined;
  #aliasesOut = new OutgoingTopicAliases(0);
  #aliasesIn: IncomingTopicAliases;
  #inbox: Inbox;
  #onAbort = (): void => {
    this.#close({}, this.#options.signal?.reason).catch(() => {});
  };

  /** Creates a client; nothing happens on the network until {@linkcode MqttClient.connect}. */
  constructor(options: MqttClientOptions = {}) {
    this.#options = options;
    this.#version = options.protocolVersion ?? 5;
    this.#clientId = options.clientId ?? `deno-${randomHex(6)}`;
    if (options.connect !== undefined) {
      this.#connector = options.connect;
    } else {
      const hostname = options.hostname ?? "localhost";
      const tls = options.tls;
      const plain = tls === undefined || tls === false;
      const port = options.port ?? (plain ? 1883 : 8883);
      this.#connector = plain
        ? tcpConnector(hostname, port)
        : tlsConnector(hostname, port, tls === true ? {} : tls);
      this.#peer = hostPort(hostname, port);
    }
    if (this.#version < 5 && options.password !== undefined && options.username === undefined) {
      throw new TypeError("MQTT 3.1/3.1.1 cannot send a password without a user name [MQTT-3.1.2-22]");
    }
    this.#clock = options.clock ?? REAL_CLOCK;
    const reconnect = options.reconnect ?? true;
    this.#reconnect = reconnect === false ? undefined : reconnect === true ? {} : reconnect;
    this.#aliasesIn = new IncomingTopicAliases(
      this.#version === 5 ? options.properties?.topicAliasMaximum ?? 0 : 0,
    );
    this.#inbox = new Inbox(
      options.maxUnclaimedMessages === undefined ? {} : { maxUnclaimed: options.maxUnclaimedMessages },
    );
    this.#closed.promise.catch(() => {});
    const signal = options.signal;
    if (signal?.aborted) {
      this.#finish(toError(signal.reason));
    } else {
      signal?.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  /** The state, e.g. `{ kind: "connected", connack }`. */
  get state(): ClientState {
    const state = this.#state;
    switch (state.kind) {
      case "connecting":
        return { kind: "connecting", attempt: state.attempt };
      case "connected":
        return { kind: "connected", connack: state.connack };
      case "reconnecting":
        return { kind: "reconnecting", attempt: state.attempt, delayMs: state.delayMs, error: state.error };
      case "closed":
        return state.error === undefined ? { kind: "closed" } : { kind: "closed", error: state.error };
      default:
        return { kind: state.kind };
    }
  }

  /** The Client Identifier in use. */
  get clientId(): string {
    return this.#clientId;
  }

  /** The protocol version. */
  get protocolVersion(): ProtocolVersion {
    return this.#version;
  }

  /** Resolves once the client is closed: with the error that ended it, or undefined after {@linkcode close}. */
  get closed(): Promise<Error | undefined> {
    return this.#closed.promise;
  }

  /** A snapshot of the client's counters and limits. */
  status(): ClientStatus {
    let inflightIn = 0;
    for (const entry of this.#incoming.values()) if (entry.state !== "taken") inflightIn++;
    return {
      state: this.#state.kind,
      clientId: this.#clientId,
      protocolVersion: this.#version,
      subscriptions: [...this.#subscriptions.keys()],
      inflightOut: this.#inflight.size,
      queuedOut: this.#publishQueue.length,
      inflightIn,
      unclaimed: this.#inbox.unclaimed,
      dropped: this.#inbox.dropped,
      ...(this.#limits === undefined ? {} : { server: this.#limits }),
    };
  }

  /**
   * Connects: opens the stream, sends CONNECT and waits for CONNACK. A refusal rejects with an
   * {@linkcode MqttError} carrying the reason code (v3 return codes are mapped to v5 codes), and the client closes.
   */
  async connect(): Promise<ConnectResult> {
    if (this.#state.kind !== "new") {
      throw new Error(`connect() can be called once, on a new client (the client is ${this.#state.kind})`);
    }
    const attempt = this.#attempt(0, true);
    this.#connecting = attempt.catch(() => {});
    try {
      return await attempt;
    } catch (error) {
      if (!this.#ending()) this.#finish(toError(error));
      throw error;
    }
  }

  /**
   * Publishes a message. Resolves when its QoS flow completes: once written (QoS 0), at PUBACK (QoS 1) or at
   * PUBCOMP (QoS 2), with the v5 reason code. While reconnecting, messages wait and go out after. An error reason
   * code rejects with an {@linkcode MqttError}.
   */
  async publish(
    topic: string,
    payload: string | Uint8Array,
    options: PublishOptions = {},
  ): Promise<PublishResult> {
    this.#assertUsable("publish");
    validateTopicName(topic);
    const qos = options.qos ?? 0;
    if (qos !== 0 && qos !== 1 && qos !== 2) throw new TypeError(`QoS must be 0, 1 or 2, not ${qos}`);
    const retain = options.retain ?? false;
    const limits = this.#limits;
    if (limits !== undefined && qos > limits.maximumQoS) {
      throw new MqttError(
        REASON_CODE.QoSNotSupported,
        `Cannot publish at QoS ${qos}: the server's Maximum QoS is ${limits.maximumQoS} [MQTT-3.2.2-11]`,
      );
    }
    if (retain && limits !== undefined && !limits.retainAvailable) {
      throw new MqttError(
        REASON_CODE.RetainNotSupported,
        "Cannot publish a retained message: the server does not support retain [MQTT-3.2.2-14]",
      );
    }
    options.signal?.throwIfAborted();
    const packet: PublishPacket = {
      type: PACKET_TYPE.PUBLISH,
      topic,
      payload: typeof payload === "string" ? utf8Encode(payload) : payload,
      qos,
      retain,
      dup: false,
      ...(this.#version === 5 && options.properties !== undefined ? { properties: options.properties } : {}),
    };
    const maximum = limits?.maximumPacketSize;
    if (maximum !== undefined) {
      const size = encode(packet, this.#version).length;
      if (size > maximum) throw tooLarge(size, maximum);
    }
    const entry: OutgoingPublish = {
      packet,
      packetId: undefined,
      phase: "queued",
      dup: false,
      received: undefined,
      deferred: Promise.withResolvers<PublishResult>(),
      settled: false,
      cleanup: undefined,
    };
    const signal = options.signal;
    if (signal !== undefined) {
      const onAbort = (): void => {
        if (entry.phase === "queued" && this.#publishQueue.remove(entry) && entry.packetId !== undefined) {
          this.#ids.release(entry.packetId);
        }
        this.#settle(entry, toError(signal.reason));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      entry.cleanup = () => signal.removeEventListener("abort", onAbort);
    }
    this.#publishQueue.push(entry);
    this.#pump();
    return await entry.deferred.promise;
  }

  /**
   * Subscribes to one or more filters. Resolves with one reason code per filter (granted QoS, or 0x80 and above
   * for a refusal). Granted filters are subscribed again after a reconnect that lost the session.
   */
  async subscribe(
    filters: string | TopicSubscription | readonly (string | TopicSubscription)[],
    options: SubscribeOptions = {},
  ): Promise<SubscribeResult> {
    this.#assertUsable("subscribe");
    const list = typeof filters === "string" || !Array.isArray(filters)
      ? [filters as string | TopicSubscription]
      : filters as readonly (string | TopicSubscription)[];
    if (list.length === 0) throw new TypeError("subscribe() needs at least one filter [MQTT-3.8.3-2]");
    const subscriptions = list.map((item): SubscriptionRequest => {
      const sub: TopicSubscription = typeof item === "string" ? { filter: item } : item;
      validateTopicFilter(sub.filter);
      return {
        filter: sub.filter,
        qos: sub.qos ?? options.qos ?? 0,
        noLocal: sub.noLocal ?? options.noLocal ?? false,
        retainAsPublished: sub.retainAsPublished ?? options.retainAsPublished ?? false,
        retainHandling: sub.retainHandling ?? options.retainHandling ?? 0,
      };
    });
    const properties: Properties = {
      ...(options.subscriptionIdentifier === undefined
        ? {}
        : { subscriptionIdentifiers: [options.subscriptionIdentifier] }),
      ...(options.userProperties === undefined ? {} : { userProperties: options.userProperties }),
    };
    const hasProperties = this.#version === 5 && Object.keys(properties).length > 0;
    return await this.#request(
      { kind: "subscribe", subscriptions, ...(hasProperties ? { properties } : {}) },
      options.signal,
    );
  }

  /**
   * Unsubscribes. Resolves with one reason code per filter; MQTT 3.1.1 UNSUBACK carries none, so every filter
   * reports Success (0) there.
   */
  async unsubscribe(
    filters: string | readonly string[],
    options: UnsubscribeOptions = {},
  ): Promise<SubscribeResult> {
    this.#assertUsable("unsubscribe");
    const list = typeof filters === "string" ? [filters] : filters;
    if (list.length === 0) throw new TypeError("unsubscribe() needs at least one filter [MQTT-3.10.3-2]");
    for (const filter of list) validateTopicFilter(filter);
    const hasProperties = this.#version === 5 && options.userProperties !== undefined;
    return await this.#request(
      {
        kind: "unsubscribe",
        filters: list,
        ...(hasProperties ? { properties: { userProperties: options.userProperties! } } : {}),
      },
      options.signal,
    );
  }

  /**
   * Incoming messages, all or those matching `filter`. QoS 1/2 messages are acknowledged as the iterator hands
   * them out, so a slow reader slows the server down (up to the Receive Maximum). Several iterators may run at
   * once; a message matching several goes to each. Messages that arrived while no iterator wanted them come
   * first. The iterator ends when the client closes, throwing the error if it closed because of one.
   */
  messages(
    filter?: string | readonly string[],
    options: MessagesOptions = {},
  ): AsyncIterableIterator<MqttMessage> {
    const filters = filter === undefined ? undefined : typeof filter === "string" ? [filter] : filter;
    return this.#inbox.messages(filters, options);
  }

  /** Sends a PINGREQ; resolves with the round-trip time in milliseconds when the PINGRESP comes. */
  ping(): Promise<number> {
    const state = this.#state;
    if (state.kind !== "connected") {
      return Promise.reject(
        new MqttError(REASON_CODE.UnspecifiedError, `Cannot ping: the client is ${state.kind}`),
      );
    }
    const deferred = Promise.withResolvers<number>();
    this.#pings.push({ start: this.#clock.monotonic(), deferred });
    state.conn.send(PINGREQ);
    return deferred.promise;
  }

  /**
   * Sends DISCONNECT (when connected), closes the connection, stops every timer and ends the iterators. Pending
   * publish and subscribe promises reject. Safe to call more than once.
   */
  close(options: CloseOptions = {}): Promise<void> {
    return this.#close(options, undefined);
  }

  /** Same as {@linkcode close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- connecting ---------------------------------------------------------------------------------------------

  #close(options: CloseOptions, reason: unknown): Promise<void> {
    if (this.#state.kind === "closed") return Promise.resolve();
    this.#closing ??= this.#shutdown(options, reason === undefined ? undefined : toError(reason));
    return this.#closing;
  }

  async #shutdown(options: CloseOptions, reason: Error | undefined): Promise<void> {
    const previous = this.#state;
    this.#setState({ kind: "closing" });
    const closedError = reason ?? new MqttError(REASON_CODE.UnspecifiedError, "The client was closed");
    switch (previous.kind) {
      case "connected":
        previous.keepAlive.stop();
        previous.conn.send({
          type: PACKET_TYPE.DISCONNECT,
          reasonCode: options.reasonCode ?? REASON_CODE.NormalDisconnection,
          ...(options.properties === undefined ? {} : { properties: options.properties }),
        });
        await this.#closeWithin(previous.conn, CLOSE_FLUSH_MS);
        break;
      case "connecting":
        previous.controller.abort(closedError);
        if (previous.conn !== undefined) await previous.conn.close();
        break;
      case "reconnecting":
        this.#clock.clearTimeout(previous.timer);
        previous.wake();
        break;
    }
    await this.#connecting;
    this.#finish(reason);
  }

  /** Closes `conn` after its queued packets went out, or drops it if they cannot go out within `ms`. */
  async #closeWithin(conn: Connection, ms: number): Promise<void> {
    let timer: TimerId | undefined;
    const late = new Promise<void>((resolve) => timer = this.#clock.setTimeout(resolve, ms));
    await Promise.race([conn.close(), late]);
    this.#clock.clearTimeout(timer!);
    conn.abort(new Deno.errors.TimedOut(`The DISCONNECT could not be written within ${ms} ms`));
    await conn.ended;
  }

  async #attempt(attempt: number, first: boolean): Promise<ConnectResult> {
    const controller = new AbortController();
    const handshake = Promise.withResolvers<ConnectResult>();
    handshake.promise.catch(() => {});
    const state: Extract<State, { kind: "connecting" }> = {
      kind: "connecting",
      attempt,
      conn: undefined,
      controller,
      handshake,
      auth: undefined,
    };
    this.#setState(state);
    const timeoutMs = this.#options.connectTimeoutMs ?? 30_000;
    const timer = this.#clock.setTimeout(
      () =>
        controller.abort(
          new Deno.errors.TimedOut(
            state.conn === undefined
              ? `No connection within ${timeoutMs} ms`
              : `No CONNACK within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    try {
      const enhancedAuth = this.#version === 5 ? this.#options.enhancedAuth : undefined;
      if (enhancedAuth !== undefined) {
        state.auth = await abortable(Promise.resolve(enhancedAuth()), controller.signal);
      }
      const stream = await abortable(this.#connector(controller.signal), controller.signal, closeQuietly);
      if (controller.signal.aborted) {
        closeQuietly(stream);
        throw controller.signal.reason;
      }
      const conn: Connection = new Connection(stream, {
        version: this.#version,
        ...(this.#peer === undefined ? {} : { peer: this.#peer }),
        ...(this.#version === 5 && this.#options.properties?.maximumPacketSize !== undefined
          ? { maxPacketSize: this.#options.properties.maximumPacketSize }
          : {}),
        onPacket: (packet) => this.#onPacket(conn, packet),
        onSend: (packet) => this.#onSend(conn, packet),
      });
      state.conn = conn;
      conn.ended.then((end) => this.#onEnded(conn, end));
      conn.send(this.#connectPacket(first, state.auth));
      return await abortable(handshake.promise, controller.signal);
    } catch (error) {
      const conn = state.conn;
      if (conn !== undefined) {
        conn.abort(toError(error));
        await conn.ended;
      }
      throw error;
    } finally {
      this.#clock.clearTimeout(timer);
    }
  }

  #connectPacket(first: boolean, auth: ClientAuthExchange | undefined): ConnectPacket {
    const options = this.#options;
    const v5 = this.#version === 5;
    const cleanStart = options.cleanStart ?? true;
    const password = options.password;
    let will: WillMessage | undefined;
    if (options.will !== undefined) {
      const w = options.will;
      will = {
        topic: w.topic,
        payload: typeof w.payload === "string" ? utf8Encode(w.payload) : w.payload ?? new Uint8Array(0),
        qos: w.qos ?? 0,
        retain: w.retain ?? false,
        ...(v5 && w.properties !== undefined ? { properties: w.properties } : {}),
      };
    }
    const properties: Properties | undefined = auth === undefined ? options.properties : {
      ...options.properties,
      authenticationMethod: auth.method,
      ...(auth.data === undefined ? {} : { authenticationData: auth.data }),
    };
    return {
      type: PACKET_TYPE.CONNECT,
      protocolVersion: this.#version,
      clientId: this.#clientId,
      // A v5 reconnect resumes the session this client started; a v3 one keeps the flag, since Clean Session 0
      // would leave a session behind that never expires.
      cleanStart: first || !v5 ? cleanStart : false,
      keepAlive: options.keepAlive ?? 60,
      ...(options.username === undefined ? {} : { username: options.username }),
      ...(password === undefined
        ? {}
        : { password: typeof password === "string" ? utf8Encode(password) : password }),
      ...(will === undefined ? {} : { will }),
      ...(v5 && properties !== undefined ? { properties } : {}),
    };
  }

  #onHandshake(state: Extract<State, { kind: "connecting" }>, conn: Connection, packet: Packet): void {
    if (packet.type === PACKET_TYPE.CONNACK) {
      if (packet.reasonCode !== 0) {
        const error = connackError(packet, this.#version);
        state.handshake.reject(error);
        conn.abort(error);
        return;
      }
      const result = this.#enterConnected(conn, packet);
      const verify = state.auth?.verify;
      if (verify === undefined) {
        state.handshake.resolve(result);
        return;
      }
      // Entered synchronously (packets behind the CONNACK are already ours); the promise waits for the check.
      verify.call(state.auth, packet.properties?.authenticationData).then((trusted) => {
        if (trusted) {
          state.handshake.resolve(result);
          return;
        }
        const error = new MqttError(
          REASON_CODE.NotAuthorized,
          `The server failed to prove itself in ${state.auth!.method} authentication`,
        );
        FINAL_ERRORS.add(error);
        state.handshake.reject(error);
        conn.fail(error);
      }, (error) => {
        state.handshake.reject(error);
        conn.fail(toError(error));
      });
      return;
    }
    if (packet.type === PACKET_TYPE.AUTH) {
      this.#onAuthChallenge(state, conn, packet);
      return;
    }
    throw protocolError(`Expected CONNACK, received ${packetName(packet.type)} [MQTT-3.2.0-1]`);
  }

  /** Answers an AUTH challenge during CONNECT (section 4.12). */
  #onAuthChallenge(
    state: Extract<State, { kind: "connecting" }>,
    conn: Connection,
    packet: AuthPacket,
  ): void {
    const auth = state.auth;
    if (auth === undefined) {
      throw protocolError(
        "The server sent AUTH, but the client asked for no enhanced authentication [MQTT-4.12.0-6]",
      );
    }
    const method = packet.properties?.authenticationMethod;
    if (packet.reasonCode !== REASON_CODE.ContinueAuthentication || method !== auth.method) {
      throw protocolError(
        `Expected AUTH Continue authentication for ${auth.method}, received ${
          reasonName(packet.reasonCode)
        } for ${method ?? "no method"} [MQTT-4.12.0-5]`,
      );
    }
    auth.continue(packet.properties?.authenticationData).then((data) =>
      conn.send({
        type: PACKET_TYPE.AUTH,
        reasonCode: REASON_CODE.ContinueAuthentication,
        properties: {
          authenticationMethod: auth.method,
          ...(data === undefined ? {} : { authenticationData: data }),
        },
      }), (error) => {
      const failure = new MqttError(
        REASON_CODE.NotAuthorized,
        `${auth.method} authentication failed: ${error instanceof Error ? error.message : error}`,
      );
      FINAL_ERRORS.add(failure);
      state.handshake.reject(failure);
      conn.fail(failure);
    });
  }

  /** Runs synchronously on CONNACK, so packets in the same read are already handled as connected. */
  #enterConnected(conn: Connection, connack: ConnackPacket): ConnectResult {
    const props = connack.properties ?? {};
    if (props.assignedClientIdentifier !== undefined) this.#clientId = props.assignedClientIdentifier;
    const keepAliveSeconds = props.serverKeepAlive ?? this.#options.keepAlive ?? 60;
    this.#limits = {
      receiveMaximum: props.receiveMaximum ?? 65_535,
      ...(props.maximumPacketSize === undefined ? {} : { maximumPacketSize: props.maximumPacketSize }),
      topicAliasMaximum: props.topicAliasMaximum ?? 0,
      maximumQoS: (props.maximumQoS ?? 2) as QoS,
      retainAvailable: props.retainAvailable !== 0,
    };
    this.#epoch++;
    const useAliases = this.#version === 5 && (this.#options.topicAliases ?? true);
    this.#aliasesOut.reset(useAliases ? this.#limits.topicAliasMaximum : 0);
    this.#aliasesIn.reset();
    const intervalMs = keepAliveSeconds * 1000;
    const keepAlive = new KeepAlive({
      intervalMs,
      timeoutMs: this.#options.pingTimeoutMs ?? Math.max(1000, intervalMs / 2),
      clock: this.#clock,
      onPing: () => conn.send(PINGREQ),
      onTimeout: () =>
        conn.fail(
          new MqttError(
            REASON_CODE.KeepAliveTimeout,
            `No answer to PINGREQ within ${this.#options.pingTimeoutMs ?? Math.max(1000, intervalMs / 2)} ms`,
          ),
        ),
    });
    const result: ConnectResult = {
      sessionPresent: connack.sessionPresent,
      clientId: this.#clientId,
      keepAlive: keepAliveSeconds,
      ...(connack.properties === undefined ? {} : { properties: connack.properties }),
    };
    this.#setState({ kind: "connected", conn, connack: result, keepAlive, disconnect: undefined });
    keepAlive.start();
    this.#resume(conn, connack.sessionPresent);
    return result;
  }

  /** Picks up where the last connection stopped [MQTT-4.4.0-1]. */
  #resume(conn: Connection, sessionPresent: boolean): void {
    if (!sessionPresent) this.#incoming.clear();
    // QoS 2 messages the server had received (PUBREC): release them again, or, with no session, they are done.
    for (const entry of [...this.#inflight.values()]) {
      if (entry.phase !== "pubrel_sent") continue;
      if (sessionPresent) {
        conn.send({ type: PACKET_TYPE.PUBREL, packetId: entry.packetId!, reasonCode: 0 });
      } else {
        this.#inflight.delete(entry.packetId!);
        this.#ids.release(entry.packetId!);
        this.#settle(entry, entry.received ?? { reasonCode: 0 });
      }
    }
    if (!sessionPresent && (this.#options.resubscribe ?? true) && this.#subscriptions.size > 0) {
      const groups = new Map<Properties | undefined, SubscriptionRequest[]>();
      for (const { request, properties } of this.#subscriptions.values()) {
        const group = groups.get(properties);
        if (group === undefined) groups.set(properties, [request]);
        else group.push(request);
      }
      for (const [properties, subscriptions] of groups) {
        this.#request({
          kind: "subscribe",
          subscriptions,
          ...(properties === undefined ? {} : { properties }),
        }, undefined).catch(() => {});
      }
    }
    for (const request of this.#requests.values()) {
      if (!request.sent) this.#sendRequest(conn, request);
    }
    this.#pump();
  }

  #onEnded(conn: Connection, end: ConnectionEnd): void {
    const state = this.#state;
    if (state.kind === "connecting" && state.conn === conn) {
      state.handshake.reject(
        end ?? new Deno.errors.ConnectionReset("The server closed the connection before CONNACK"),
      );
      return;
    }
    if (state.kind !== "connected" || state.conn !== conn) return;
    const error = end ?? state.disconnect ??
      new Deno.errors.ConnectionReset("The server closed the connection");
    this.#connectionLost(state, error);
  }

  #connectionLost(state: Extract<State, { kind: "connected" }>, error: Error): void {
    state.keepAlive.stop();
    const again: OutgoingPublish[] = [];
    for (const entry of this.#inflight.values()) {
      if (entry.phase === "publish_sent") again.push(entry);
    }
    for (const entry of again) {
      this.#inflight.delete(entry.packetId!);
      entry.phase = "queued";
      entry.dup = true;
    }
    this.#publishQueue.unshiftAll(again);
    for (const request of this.#requests.values()) request.sent = false;
    const pings = this.#pings;
    this.#pings = [];
    for (const ping of pings) ping.deferred.reject(error);
    if (this.#reconnect === undefined || FINAL_ERRORS.has(error)) {
      this.#finish(error);
      return;
    }
    this.#connecting = this.#reconnectLoop(error);
  }

  async #reconnectLoop(error: Error): Promise<void> {
    const options = this.#reconnect!;
    const maxAttempts = options.maxAttempts ?? Infinity;
    let last = error;
    for (let failures = 0;; failures++) {
      if (failures >= maxAttempts) {
        this.#finish(last);
        return;
      }
      const delayMs = backoffDelay(failures, options, this.#options.random);
      const fired = await new Promise<boolean>((resolve) => {
        const timer = this.#clock.setTimeout(() => resolve(true), delayMs);
        this.#setState({
          kind: "reconnecting",
          attempt: failures + 1,
          delayMs,
          error: last,
          timer,
          wake: () => resolve(false),
        });
      });
      if (!fired || this.#state.kind !== "reconnecting") return;
      try {
        await this.#attempt(failures + 1, false);
        return;
      } catch (caught) {
        if (this.#ending()) return;
        last = toError(caught);
        if (FINAL_ERRORS.has(last)) {
          this.#finish(last);
          return;
        }
      }
    }
  }

  /** Ends the client: state closed, everything pending rejected, iterators ended. */
  #finish(error: Error | undefined): void {
    if (this.#state.kind === "closed") return;
    const state = this.#state;
    if (state.kind === "connected") {
      state.keepAlive.stop();
      state.conn.abort(error ?? new Error("The client was closed"));
    }
    this.#setState({ kind: "closed", error });
    const failure = error ?? new MqttError(REASON_CODE.UnspecifiedError, "The client was closed");
    for (const entry of this.#publishQueue.drain()) this.#settle(entry, failure);
    for (const entry of this.#inflight.values()) this.#settle(entry, failure);
    this.#inflight.clear();
    for (const request of this.#requests.values()) this.#settleRequest(request, failure);
    this.#requests.clear();
    for (const ping of this.#pings) ping.deferred.reject(failure);
    this.#pings = [];
    this.#ids.clear();
    this.#incoming.clear();
    this.#inbox.close(error);
    this.#options.signal?.removeEventListener("abort", this.#onAbort);
    this.#closed.resolve(error);
  }

  // ---- dispatch -----------------------------------------------------------------------------------------------

  #onSend(conn: Connection, packet: Packet): void {
    this.#observe("out", packet);
    const state = this.#state;
    if (state.kind === "connected" && state.conn === conn) state.keepAlive.packetSent();
  }

  /** The one dispatcher for incoming packets. A throw ends the connection with a DISCONNECT carrying its code. */
  #onPacket(conn: Connection, packet: Packet): void {
    this.#observe("in", packet);
    const state = this.#state;
    if (state.kind === "connecting" && state.conn === conn) {
      this.#onHandshake(state, conn, packet);
      return;
    }
    if (state.kind !== "connected" || state.conn !== conn) return;
    state.keepAlive.packetReceived();
    switch (packet.type) {
      case PACKET_TYPE.PUBLISH:
        this.#onPublish(conn, packet);
        return;
      case PACKET_TYPE.PUBACK:
        this.#onPuback(packet.packetId, packet.reasonCode, packet.properties);
        return;
      case PACKET_TYPE.PUBREC:
        this.#onPubrec(conn, packet.packetId, packet.reasonCode, packet.properties);
        return;
      case PACKET_TYPE.PUBCOMP:
        this.#onPubcomp(packet.packetId);
        return;
      case PACKET_TYPE.PUBREL:
        this.#onPubrel(conn, packet.packetId);
        return;
      case PACKET_TYPE.SUBACK:
      case PACKET_TYPE.UNSUBACK:
        this.#onSubAck(packet.type, packet.packetId, packet.reasonCodes, packet.properties);
        return;
      case PACKET_TYPE.PINGRESP: {
        const ping = this.#pings.shift();
        ping?.deferred.resolve(this.#clock.monotonic() - ping.start);
        return;
      }
      case PACKET_TYPE.DISCONNECT: {
        const reason = packet.properties?.reasonString;
        const error = new MqttError(
          packet.reasonCode,
          `The server sent DISCONNECT: ${reasonName(packet.reasonCode)}${
            reason === undefined ? "" : ` (${reason})`
          }`,
        );
        if (FINAL_DISCONNECTS.has(packet.reasonCode)) FINAL_ERRORS.add(error);
        state.disconnect = error;
        conn.abort(error); // no DISCONNECT goes back [MQTT-3.14.4-1]
        return;
      }
      case PACKET_TYPE.AUTH:
        throw new MqttError(
          REASON_CODE.ImplementationSpecificError,
          "The server sent AUTH (re-authentication), which this client does not support",
        );
      default:
        throw protocolError(`A server must not send ${packetName(packet.type)}`);
    }
  }

  #observe(direction: PacketDirection, packet: Packet): void {
    const observer = this.#options.onPacket;
    if (observer === undefined) return;
    try {
      observer(direction, packet);
    } catch {
      // An observer's bug must not break the connection.
    }
  }

  #setState(state: State): void {
    this.#state = state;
    const observer = this.#options.onStateChange;
    if (observer === undefined) return;
    try {
      observer(this.state);
    } catch {
      // as #observe
    }
  }

  // ---- outgoing publish ---------------------------------------------------------------------------------------

  /** Sends queued messages while connected and the server's Receive Maximum leaves room [MQTT-4.9.0-2]. */
  #pump(): void {
    const state = this.#state;
    if (state.kind !== "connected") return;
    const quota = this.#limits?.receiveMaximum ?? 65_535;
    for (;;) {
      const entry = this.#publishQueue.peek();
      if (entry === undefined) return;
      if (entry.packet.qos > 0) {
        if (this.#inflight.size >= quota) return;
        if (entry.packetId === undefined) {
          const id = this.#ids.allocate();
          if (id === undefined) return;
          entry.packetId = id;
        }
      }
      this.#publishQueue.shift();
      this.#sendPublish(state.conn, entry);
    }
  }

  #sendPublish(conn: Connection, entry: OutgoingPublish): void {
    const base = entry.packet;
    const version = this.#version;
    let wire: PublishPacket = {
      ...base,
      dup: entry.dup,
      ...(entry.packetId === undefined ? {} : { packetId: entry.packetId }),
    };
    let bytes = encode(wire, version);
    const maximum = this.#limits?.maximumPacketSize;
    if (maximum !== undefined && bytes.length > maximum) {
      if (entry.packetId !== undefined) this.#ids.release(entry.packetId);
      this.#settle(entry, tooLarge(bytes.length, maximum));
      return;
    }
    // A resent message carries its topic in full: aliases do not outlive a connection [MQTT-3.3.2-7]. The 5 bytes
    // leave room for the property and both length fields to grow.
    if (!entry.dup && this.#aliasesOut.max > 0 && (maximum === undefined || bytes.length + 5 <= maximum)) {
      const aliased = this.#aliasesOut.resolve(base.topic);
      if (aliased.alias !== undefined) {
        wire = {
          ...wire,
          topic: aliased.topic,
          properties: { ...base.properties, topicAlias: aliased.alias },
        };
        bytes = encode(wire, version);
      }
    }
    conn.sendEncoded(wire, bytes);
    if (base.qos === 0) {
      conn.flushed().then((written) =>
        this.#settle(
          entry,
          written ? { reasonCode: 0 } : new Deno.errors.ConnectionReset(
            `The connection closed before the QoS 0 message to "${base.topic}" went out`,
          ),
        )
      );
      return;
    }
    entry.phase = "publish_sent";
    this.#inflight.set(entry.packetId!, entry);
  }

  #onPuback(packetId: number, reasonCode: number, properties: Properties | undefined): void {
    const entry = this.#inflight.get(packetId);
    if (entry === undefined || entry.packet.qos !== 1) return; // a late ack from before a reconnect
    this.#complete(entry, reasonCode, properties);
  }

  #onPubrec(
    conn: Connection,
    packetId: number,
    reasonCode: number,
    properties: Properties | undefined,
  ): void {
    const entry = this.#inflight.get(packetId);
    if (entry === undefined || entry.packet.qos !== 2) {
      // Not ours: release it anyway so the server can forget it (section 4.3.3).
      conn.send({ type: PACKET_TYPE.PUBREL, packetId, reasonCode: REASON_CODE.PacketIdentifierNotFound });
      return;
    }
    if (reasonCode >= 0x80) {
      this.#complete(entry, reasonCode, properties); // the flow ends at an error PUBREC [MQTT-4.3.3-?]
      return;
    }
    entry.phase = "pubrel_sent";
    entry.received = { reasonCode, ...(properties === undefined ? {} : { properties }) };
    conn.send({ type: PACKET_TYPE.PUBREL, packetId, reasonCode: 0 });
  }

  #onPubcomp(packetId: number): void {
    const entry = this.#inflight.get(packetId);
    if (entry === undefined || entry.phase !== "pubrel_sent") return;
    const received = entry.received ?? { reasonCode: 0 };
    this.#complete(entry, received.reasonCode, received.properties);
  }

  #complete(entry: OutgoingPublish, reasonCode: number, properties: Properties | undefined): void {
    this.#inflight.delete(entry.packetId!);
    this.#ids.release(entry.packetId!);
    if (reasonCode >= 0x80) {
      const reason = properties?.reasonString;
      this.#settle(
        entry,
        new MqttError(
          reasonCode,
          `The server refused the message to "${entry.packet.topic}": ${reasonName(reasonCode)}${
            reason === undefined ? "" : ` (${reason})`
          }`,
        ),
      );
    } else {
      this.#settle(entry, { reasonCode, ...(properties === undefined ? {} : { properties }) });
    }
    this.#pump();
  }

  #settle(entry: OutgoingPublish, outcome: PublishResult | Error): void {
    if (entry.settled) return;
    entry.settled = true;
    entry.cleanup?.();
    if (outcome instanceof Error) entry.deferred.reject(outcome);
    else entry.deferred.resolve(outcome);
  }

  // ---- incoming publish ---------------------------------------------------------------------------------------

  #onPublish(conn: Connection, packet: PublishPacket): void {
    const alias = packet.properties?.topicAlias;
    const topic = this.#aliasesIn.resolve(packet.topic, alias);
    let properties = packet.properties;
    if (alias !== undefined) {
      const { topicAlias: _, ...rest } = properties!;
      properties = Object.keys(rest).length === 0 ? undefined : rest;
    }
    const message: MqttMessage = {
      topic,
      payload: packet.payload,
      qos: packet.qos,
      retain: packet.retain,
      dup: packet.dup,
      ...(packet.packetId === undefined ? {} : { packetId: packet.packetId }),
      ...(properties === undefined ? {} : { properties }),
    };
    if (packet.qos === 0) {
      this.#inbox.deliver(message);
      return;
    }
    const packetId = packet.packetId!;
    const known = this.#incoming.get(packetId);
    if (known !== undefined) {
      // The server sent it again (after a reconnect): never hand it out twice, just acknowledge in the right step.
      known.epoch = this.#epoch;
      if (known.state === "taken" || known.state === "pubrec_sent") {
        known.state = "pubrec_sent";
        conn.send({ type: PACKET_TYPE.PUBREC, packetId, reasonCode: 0 });
      }
      return;
    }
    const entry: IncomingEntry = { packetId, qos: packet.qos, state: "queued", epoch: this.#epoch };
    this.#incoming.set(packetId, entry);
    this.#inbox.deliver(message, () => this.#onTaken(entry));
  }

  /** A QoS 1/2 message left an iterator: acknowledge it on the connection it came in on. */
  #onTaken(entry: IncomingEntry): void {
    if (this.#incoming.get(entry.packetId) !== entry) return;
    const state = this.#state;
    if (state.kind !== "connected" || entry.epoch !== this.#epoch) {
      // The connection it came on is gone; the server will send it again if it kept the session.
      if (entry.qos === 1) this.#incoming.delete(entry.packetId);
      else entry.state = "taken";
      return;
    }
    if (entry.qos === 1) {
      this.#incoming.delete(entry.packetId);
      state.conn.send({ type: PACKET_TYPE.PUBACK, packetId: entry.packetId, reasonCode: 0 });
    } else {
      entry.state = "pubrec_sent";
      state.conn.send({ type: PACKET_TYPE.PUBREC, packetId: entry.packetId, reasonCode: 0 });
    }
  }

  #onPubrel(conn: Connection, packetId: number): void {
    const entry = this.#incoming.get(packetId);
    if (entry !== undefined && entry.state === "pubrec_sent") this.#incoming.delete(packetId);
    conn.send({
      type: PACKET_TYPE.PUBCOMP,
      packetId,
      reasonCode: entry === undefined ? REASON_CODE.PacketIdentifierNotFound : 0,
    });
  }

  // ---- subscribe and unsubscribe ------------------------------------------------------------------------------

  #request(spec: RequestSpec, signal: AbortSignal | undefined): Promise<SubscribeResult> {
    signal?.throwIfAborted();
    const packetId = this.#ids.allocate();
    if (packetId === undefined) {
      return Promise.reject(
        new MqttError(REASON_CODE.QuotaExceeded, "All 65,535 packet identifiers are in use"),
      );
    }
    const request: PendingRequest = {
      packetId,
      spec,
      deferred: Promise.withResolvers<SubscribeResult>(),
      sent: false,
      settled: false,
      cleanup: undefined,
    };
    if (signal !== undefined) {
      const onAbort = (): void => {
        if (!request.sent) {
          this.#requests.delete(packetId);
          this.#ids.release(packetId);
        }
        this.#settleRequest(request, toError(signal.reason));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      request.cleanup = () => signal.removeEventListener("abort", onAbort);
    }
    this.#requests.set(packetId, request);
    const state = this.#state;
    if (state.kind === "connected") this.#sendRequest(state.conn, request);
    return request.deferred.promise;
  }

  #sendRequest(conn: Connection, request: PendingRequest): void {
    const spec = request.spec;
    const properties = spec.properties === undefined ? {} : { properties: spec.properties };
    conn.send(
      spec.kind === "subscribe"
        ? {
          type: PACKET_TYPE.SUBSCRIBE,
          packetId: request.packetId,
          subscriptions: spec.subscriptions,
          ...properties,
        }
        : { type: PACKET_TYPE.UNSUBSCRIBE, packetId: request.packetId, filters: spec.filters, ...properties },
    );
    request.sent = true;
  }

  #onSubAck(
    type: typeof PACKET_TYPE.SUBACK | typeof PACKET_TYPE.UNSUBACK,
    packetId: number,
    codes: readonly number[],
    properties: Properties | undefined,
  ): void {
    const request = this.#requests.get(packetId);
    const expected = type === PACKET_TYPE.SUBACK ? "subscribe" : "unsubscribe";
    if (request === undefined || request.spec.kind !== expected || !request.sent) {
      throw protocolError(
        `${packetName(type)} for packet identifier ${packetId}, which has no ${expected} pending`,
      );
    }
    const spec = request.spec;
    const count = spec.kind === "subscribe" ? spec.subscriptions.length : spec.filters.length;
    const reasonCodes = type === PACKET_TYPE.UNSUBACK && this.#version < 5
      ? new Array<number>(count).fill(0)
      : codes;
    if (reasonCodes.length !== count) {
      throw protocolError(
        `${packetName(type)} has ${reasonCodes.length} reason codes for ${count} filters [MQTT-3.9.3-1]`,
      );
    }
    this.#requests.delete(packetId);
    this.#ids.release(packetId);
    if (spec.kind === "subscribe") {
      spec.subscriptions.forEach((request, i) => {
        if (reasonCodes[i]! < 0x80) {
          this.#subscriptions.set(request.filter, { request, properties: spec.properties });
        } else this.#subscriptions.delete(request.filter);
      });
    } else {
      spec.filters.forEach((filter, i) => {
        if (reasonCodes[i]! < 0x80) this.#subscriptions.delete(filter);
      });
    }
    this.#settleRequest(request, { reasonCodes, ...(properties === undefined ? {} : { properties }) });
  }

  #settleRequest(request: PendingRequest, outcome: SubscribeResult | Error): void {
    if (request.settled) return;
    request.settled = true;
    request.cleanup?.();
    if (outcome instanceof Error) request.deferred.reject(outcome);
    else request.deferred.resolve(outcome);
  }

  /** Whether close() is under way or done (read fresh: it changes across awaits). */
  #ending(): boolean {
    const kind = this.#state.kind;
    return kind === "closing" || kind === "closed";
  }

  #assertUsable(operation: string): void {
    const state = this.#state;
    if (state.kind === "new") throw new Error(`Cannot ${operation}: call connect() first`);
    if (state.kind === "closing" || state.kind === "closed") {
      throw new MqttError(REASON_CODE.UnspecifiedError, `Cannot ${operation}: the client is ${state.kind}`, {
        ...(state.kind === "closed" && state.error !== undefined ? { cause: state.error } : {}),
      });
    }
  }
}

function connackError(packet: ConnackPacket, version: ProtocolVersion): MqttError {
  let error: MqttError;
  if (version === 5) {
    const reason = packet.properties?.reasonString;
    error = new MqttError(
      packet.reasonCode,
      `Connection refused: ${reasonName(packet.reasonCode)} (0x${hex(packet.reasonCode)})${
        reason === undefined ? "" : `: ${reason}`
      }`,
    );
  } else {
    const { reasonCode, text } = connackReasonFromV3(packet.reasonCode) ??
      { reasonCode: REASON_CODE.UnspecifiedError, text: "unknown reason" };
    error = new MqttError(reasonCode, `Connection refused: ${text} (return code ${packet.reasonCode})`);
  }
  if (PERMANENT_REFUSALS.has(error.reasonCode)) FINAL_ERRORS.add(error);
  return error;
}

function tooLarge(size: number, maximum: number): MqttError {
  return new MqttError(
    REASON_CODE.PacketTooLarge,
    `The PUBLISH is ${size} bytes; the server's Maximum Packet Size is ${maximum} [MQTT-3.1.2-24]`,
  );
}

/** Waits for `promise` unless `signal` aborts first; a value that arrives late is handed to `onLate`. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal, onLate?: (value: T) => void): Promise<T> {
  if (signal.aborted) {
    promise.then((value) => onLate?.(value), () => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      promise.then((value) => onLate?.(value), () => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) onLate?.(value);
        else resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

function closeQuietly(stream: { close(): void }): void {
  try {
    stream.close();
  } catch {
    // already closed
  }
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

function hex(code: number): string {
  return code.toString(16).padStart(2, "0");
}

function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}
