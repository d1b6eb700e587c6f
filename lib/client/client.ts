/**
 * The MQTT client: MQTT 3.1, 3.1.1 and 5.0 over any byte stream, with QoS 0/1/2 flows that resolve promises,
 * incoming messages as async iterators whose reading paces the acknowledgements, keep-alive, automatic reconnect
 * with backoff, resubscription, resumption of unacknowledged messages, and v5 topic aliases.
 *
 * One connection at a time; one task reads and dispatches, one {@linkcode WriteQueue} writes, and user calls only
 * queue packets, so nothing races on the socket. {@linkcode MqttClient} holds the state and dispatches; the flows
 * live beside it: `outgoing.ts`, `incoming.ts`, `requests.ts`, `handshake.ts` and `reconnect.ts`.
 *
 * @module
 */

import { type Clock, REAL_CLOCK } from "../clock.ts";
import { MqttError, protocolError } from "../mqtt_error.ts";
import type { ConnackPacket } from "../packet/connack.ts";
import type { Packet } from "../packet/packet.ts";
import { PACKET_TYPE, packetName, type ProtocolVersion } from "../packet/packet_type.ts";
import { PINGREQ } from "../packet/pingreq.ts";
import { REASON_CODE } from "../packet/reason_code.ts";
import type { Connection, ConnectionEnd } from "./connection.ts";
import { type Connector, serverConnector } from "./connector.ts";
import { connectPacket, connectResult, Handshake } from "./handshake.ts";
import { IncomingFlows } from "./incoming.ts";
import { Inbox, type MessagesOptions, type MqttMessage } from "./inbox.ts";
import { KeepAlive } from "./keepalive.ts";
import {
  CLIENT_DEFAULTS,
  type ClientState,
  type ClientStatus,
  type CloseOptions,
  type ConnectResult,
  type MqttClientOptions,
  type PacketDirection,
  pingTimeoutMs,
  type PublishOptions,
  type PublishResult,
  type ReconnectOptions,
  type SubscribeOptions,
  type SubscribeResult,
  type TopicSubscription,
  type UnsubscribeOptions,
} from "./options.ts";
import { OutgoingFlows } from "./outgoing.ts";
import { PacketIds } from "./packet_id.ts";
import { disconnectError, isFinal, reconnectLoop, resumeSession } from "./reconnect.ts";
import { Requests } from "./requests.ts";
import { assertUsable, publicState, type State } from "./state.ts";

/** How long close() waits for the DISCONNECT to be written to a server that stopped reading. */
const CLOSE_FLUSH_MS = 5_000;

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
  /** Opens the stream; `peer` names the server in errors when the client opens it itself. */
  #server: { connector: Connector; peer?: string };
  #clock: Clock;
  #reconnect: ReconnectOptions | undefined;
  #state: State = { kind: "new" };
  #closing: Promise<void> | undefined;
  /** The connect attempt or reconnect loop running in the background. */
  #connecting: Promise<unknown> | undefined;
  #closed = Promise.withResolvers<Error | undefined>();
  #ids = new PacketIds();
  #outgoing: OutgoingFlows;
  #incoming: IncomingFlows;
  #requests: Requests;
  #inbox: Inbox;
  #onAbort = (): void => {
    this.#close({}, this.#options.signal?.reason).catch(() => {});
  };

  /** Creates a client; nothing happens on the network until {@linkcode MqttClient.connect}. */
  constructor(options: MqttClientOptions = {}) {
    this.#options = options;
    this.#version = options.protocolVersion ?? CLIENT_DEFAULTS.protocolVersion;
    this.#clientId = options.clientId ?? `deno-${randomHex(6)}`;
    this.#server = serverConnector(options);
    if (this.#version < 5 && options.password !== undefined && options.username === undefined) {
      throw new TypeError(
        "MQTT 3.1/3.1.1 cannot send a password without a user name [MQTT-3.1.2-22 (3.1.1)]",
      );
    }
    this.#clock = options.clock ?? REAL_CLOCK;
    const reconnect = options.reconnect ?? true;
    this.#reconnect = reconnect === false ? undefined : reconnect === true ? {} : reconnect;
    this.#inbox = new Inbox(
      options.maxUnclaimedMessages === undefined ? {} : { maxUnclaimed: options.maxUnclaimedMessages },
    );
    this.#outgoing = new OutgoingFlows(this.#version, this.#ids, options.topicAliases ?? true);
    this.#incoming = new IncomingFlows(
      this.#version === 5 ? options.properties?.topicAliasMaximum ?? 0 : 0,
      this.#inbox,
      () => this.#connection(),
    );
    this.#requests = new Requests(this.#version, this.#ids, this.#clock);
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
    return publicState(this.#state);
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
    const limits = this.#outgoing.limits;
    return {
      state: this.#state.kind,
      clientId: this.#clientId,
      protocolVersion: this.#version,
      subscriptions: this.#requests.subscriptions,
      inflightOut: this.#outgoing.inflight,
      queuedOut: this.#outgoing.queued,
      inflightIn: this.#incoming.inflight,
      unclaimed: this.#inbox.unclaimed,
      dropped: this.#inbox.dropped,
      ...(limits === undefined ? {} : { server: limits }),
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
    return await this.#outgoing.publish(this.#connection(), topic, payload, options);
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
    return await this.#requests.subscribe(this.#connection(), filters, options);
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
    return await this.#requests.unsubscribe(this.#connection(), filters, options);
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
    return this.#requests.ping(state.conn);
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

  // ---- connecting and closing ---------------------------------------------------------------------------------

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
        await previous.conn.closeWithin(CLOSE_FLUSH_MS, this.#clock);
        break;
      case "connecting":
        await previous.handshake.cancel(closedError);
        break;
      case "reconnecting":
        this.#clock.clearTimeout(previous.timer);
        previous.wake();
        break;
    }
    await this.#connecting;
    this.#finish(reason);
  }

  #attempt(attempt: number, first: boolean): Promise<ConnectResult> {
    const options = this.#options;
    const v5 = this.#version === 5;
    const handshake = new Handshake({
      version: this.#version,
      connector: this.#server.connector,
      peer: this.#server.peer,
      clock: this.#clock,
      timeoutMs: options.connectTimeoutMs ?? CLIENT_DEFAULTS.connectTimeoutMs,
      maxPacketSize: v5 ? options.properties?.maximumPacketSize : undefined,
      enhancedAuth: v5 ? options.enhancedAuth : undefined,
      connect: (auth) => connectPacket(options, this.#version, this.#clientId, first, auth),
      onPacket: (conn, packet) => this.#onPacket(conn, packet),
      onSend: (conn, packet) => this.#onSend(conn, packet),
      onEnded: (conn, end) => this.#onEnded(conn, end),
      onConnack: (conn, connack) => this.#enterConnected(conn, connack),
    });
    this.#setState({ kind: "connecting", attempt, handshake });
    return handshake.run();
  }

  /** Runs synchronously on CONNACK, so packets in the same read are already handled as connected. */
  #enterConnected(conn: Connection, connack: ConnackPacket): ConnectResult {
    const assigned = connack.properties?.assignedClientIdentifier;
    if (assigned !== undefined) this.#clientId = assigned;
    const result = connectResult(connack, this.#clientId, this.#options);
    this.#outgoing.connected(connack);
    const intervalMs = result.keepAlive * 1000;
    const timeoutMs = pingTimeoutMs(this.#options, intervalMs);
    const keepAlive = new KeepAlive({
      intervalMs,
      timeoutMs,
      clock: this.#clock,
      onPing: () => conn.send(PINGREQ),
      onTimeout: () =>
        conn.fail(new MqttError(REASON_CODE.KeepAliveTimeout, `No answer to PINGREQ within ${timeoutMs} ms`)),
    });
    this.#setState({ kind: "connected", conn, connack: result, keepAlive, disconnect: undefined });
    keepAlive.start();
    resumeSession(conn, connack.sessionPresent, {
      outgoing: this.#outgoing,
      incoming: this.#incoming,
      requests: this.#requests,
      resubscribe: this.#options.resubscribe ?? true,
    });
    return result;
  }

  #onEnded(conn: Connection, end: ConnectionEnd): void {
    const state = this.#state;
    if (state.kind === "connecting" && state.handshake.conn === conn) {
      state.handshake.ended(end);
      return;
    }
    if (state.kind !== "connected" || state.conn !== conn) return;
    const error = end ?? state.disconnect ??
      new Deno.errors.ConnectionReset("The server closed the connection");
    state.keepAlive.stop();
    this.#outgoing.disconnected();
    this.#requests.disconnected(error);
    const reconnect = this.#reconnect;
    if (reconnect === undefined || isFinal(error)) {
      this.#finish(error);
      return;
    }
    this.#connecting = reconnectLoop(error, reconnect, this.#options.random, {
      wait: (attempt, delayMs, last) => this.#wait(attempt, delayMs, last),
      attempt: (attempt) => this.#attempt(attempt, false),
      ending: () => this.#ending(),
      finish: (last) => this.#finish(last),
    });
  }

  /** The backoff pause before a reconnect attempt; false when close() ended it. */
  async #wait(attempt: number, delayMs: number, error: Error): Promise<boolean> {
    const fired = await new Promise<boolean>((resolve) => {
      const timer = this.#clock.setTimeout(() => resolve(true), delayMs);
      this.#setState({ kind: "reconnecting", attempt, delayMs, error, timer, wake: () => resolve(false) });
    });
    return fired && this.#state.kind === "reconnecting";
  }

  /** Ends the client: state closed, everything pending rejected, iterators ended. */
  #finish(error: Error | undefined): void {
    const state = this.#state;
    if (state.kind === "closed") return;
    if (state.kind === "connected") {
      state.keepAlive.stop();
      state.conn.abort(error ?? new Error("The client was closed"));
    }
    this.#setState({ kind: "closed", error });
    const failure = error ?? new MqttError(REASON_CODE.UnspecifiedError, "The client was closed");
    this.#outgoing.close(failure);
    this.#requests.close(failure);
    this.#ids.clear();
    this.#incoming.close();
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
    if (state.kind === "connecting" && state.handshake.conn === conn) {
      state.handshake.onPacket(packet);
      return;
    }
    if (state.kind !== "connected" || state.conn !== conn) return;
    state.keepAlive.packetReceived();
    switch (packet.type) {
      case PACKET_TYPE.PUBLISH:
        this.#incoming.onPublish(conn, packet);
        return;
      case PACKET_TYPE.PUBACK:
        this.#outgoing.onPuback(conn, packet);
        return;
      case PACKET_TYPE.PUBREC:
        this.#outgoing.onPubrec(conn, packet);
        return;
      case PACKET_TYPE.PUBCOMP:
        this.#outgoing.onPubcomp(conn, packet);
        return;
      case PACKET_TYPE.PUBREL:
        this.#incoming.onPubrel(conn, packet);
        return;
      case PACKET_TYPE.SUBACK:
      case PACKET_TYPE.UNSUBACK:
        this.#requests.onAck(packet);
        return;
      case PACKET_TYPE.PINGRESP:
        this.#requests.onPingresp();
        return;
      case PACKET_TYPE.DISCONNECT:
        state.disconnect = disconnectError(packet);
        conn.abort(state.disconnect); // no DISCONNECT goes back (5.0 section 3.14.4)
        return;
      case PACKET_TYPE.AUTH:
        throw new MqttError(
          REASON_CODE.ImplementationSpecificError,
          "The server sent AUTH (re-authentication), which this client does not support",
        );
      default:
        throw protocolError(`A server must not send ${packetName(packet.type)}`);
    }
  }

  /** The connection to send on: the connected state's, else none. */
  #connection(): Connection | undefined {
    const state = this.#state;
    return state.kind === "connected" ? state.conn : undefined;
  }

  #observe(direction: PacketDirection, packet: Packet): void {
    const observer = this.#options.onPacket;
    if (observer === undefined) return;
    try {
      observer(direction, packet); // no closure: this runs for every packet
    } catch {
      // An observer's bug must not break the connection.
    }
  }

  #setState(state: State): void {
    this.#state = state;
    if (this.#options.onStateChange !== undefined) quietly(() => this.#options.onStateChange!(this.state));
  }

  /** Whether close() is under way or done (read fresh: it changes across awaits). */
  #ending(): boolean {
    const kind = this.#state.kind;
    return kind === "closing" || kind === "closed";
  }

  #assertUsable(operation: string): void {
    assertUsable(this.#state, operation);
  }
}

/** Calls an observer of the caller's, whose bug must not break the connection. */
function quietly(observer: () => void): void {
  try {
    observer();
  } catch {
    // ignored, see above
  }
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}
