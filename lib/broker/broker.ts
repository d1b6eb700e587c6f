/**
 * The broker: sessions, routing, retained messages, wills, `$SYS` statistics and listeners. Connections
 * (`connection.ts`) speak the protocol; this file owns everything shared between them.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import { protocolError } from "../mqtt_error.ts";
import type { ConnectPacket, WillMessage } from "../packet/connect.ts";
import type { QoS } from "../packet/packet_type.ts";
import type { Properties } from "../packet/properties.ts";
import type { PublishPacket } from "../packet/publish.ts";
import type { AuthPacket } from "../packet/auth.ts";
import { REASON_CODE } from "../packet/reason_code.ts";
import { type MatchOptions, TopicRouter } from "../topic/router.ts";
import type { ByteStream } from "../transport/transport.ts";
import { utf8Encode } from "../codec/utf8.ts";
import {
  ALLOW_ALL,
  type AuthConversation,
  type Authenticator,
  type Authorizer,
  type AuthStepResult,
  type ClientIdentity,
  type ConnectInfo,
  type EnhancedAuthMethod,
} from "./auth/auth.ts";
import { CommitQueue } from "./storage/commit_queue.ts";
import { AddressLimiter, hostOf } from "./limits.ts";
import { DeadlineQueue } from "./deadlines.ts";
import { Connection, type ConnectionInfo } from "./connection.ts";
import type { AuthOutcome, BrokerCore, BrokerStats } from "./core.ts";
import { type BrokerOptions, EXPIRY_NEVER, type ResolvedOptions, resolveOptions } from "./options.ts";

export type { BrokerOptions } from "./options.ts";
import { type Logger, logs } from "./logger.ts";
import type { Message, Persistence } from "./storage/persistence.ts";
import { RetainedStore } from "./retained.ts";
import { EncodeCache, Session } from "./session.ts";
import { acceptLoop } from "./server/accept_loop.ts";

/** How often expired retained messages are swept out, ms. */
const SWEEP_INTERVAL = 60_000;

/** The broker's version, as `$SYS/broker/version` reports it. */
export const BROKER_VERSION = "deno-mqtt 0.1.0";

/** Where a listener is bound. */
export interface ListenAddress {
  /** The bound address, e.g. `127.0.0.1`. */
  readonly hostname: string;
  /** The bound port: the one picked by the OS when 0 was asked for. */
  readonly port: number;
}

/** Options for {@linkcode Broker.listen}. */
export interface ListenOptions {
  /** Address to bind; loopback unless told otherwise. @default {"127.0.0.1"} */
  hostname?: string;
  /** 0 picks a free port. @default {1883} */
  port?: number;
  /** Let clients in without credentials. @default {true} */
  allowAnonymous?: boolean;
}

interface PendingWill {
  readonly message: Message;
  readonly identity: ClientIdentity;
  timer: TimerId | undefined;
  /** When the message was made: its expiry is moved on by the time the will waited. */
  readonly since?: number;
}

type BrokerState = "new" | "starting" | "running" | "closing" | "closed";

/**
 * An MQTT 3.1 / 3.1.1 / 5.0 broker.
 *
 * @example
 * ```ts ignore
 * import { Broker } from "./broker.ts";
 * const broker = new Broker();
 * const { port } = await broker.listen({ hostname: "127.0.0.1", port: 0 });
 * // ... clients connect to port ...
 * await broker.close();
 * ```
 */
export class Broker implements BrokerCore {
  readonly options: ResolvedOptions;
  readonly stats: BrokerStats = {
    bytesReceived: 0,
    bytesSent: 0,
    packetsReceived: 0,
    packetsSent: 0,
    messagesReceived: 0,
    messagesSent: 0,
    connections: 0,
  };
  readonly clock: Clock;
  readonly logger: Logger;
  readonly authorizer: Authorizer;
  readonly router: TopicRouter = new TopicRouter();
  readonly retained: RetainedStore = new RetainedStore();
  readonly store: CommitQueue | undefined;
  readonly connackProperties: Properties;
  readonly #persistence: Persistence | undefined;
  readonly #authenticator: Authenticator;
  readonly #authMethods: Map<string, EnhancedAuthMethod>;
  readonly #conversations = new WeakMap<Connection, { method: string; conversation: AuthConversation }>();
  readonly #sessions = new Map<string, Session>();
  readonly #connections = new Set<Connection>();
  readonly #perAddress = new Map<string, number>();
  /** Connect timeouts and keep alives of every connection, on one timer. */
  readonly deadlines: DeadlineQueue<Connection>;
  /** CONNECT rate per IP address (checked by connections). */
  readonly connectLimiter: AddressLimiter;
  readonly #pendingWills = new Map<string, PendingWill>();
  /** What {@linkcode Broker.listen} started: `close()` stops accepting (the loops are the listeners' own). */
  readonly #listeners = new Set<{ close(): void }>();
  readonly #accepting = new Set<Promise<void>>();
  readonly #startedAt: number;
  #state: BrokerState = "new";
  #starting: Promise<void> | undefined;
  #sysTimer: TimerId | undefined;
  #sweepTimer: TimerId | undefined;
  #clientIdCounter = 0;
  #sysPrevious = { at: 0, received: 0, sent: 0, bytesReceived: 0, bytesSent: 0, connections: 0 };
  #loads = new Map<string, number>();

  /**
   * Nothing runs until {@linkcode Broker.start} (or {@linkcode Broker.listen}, which calls it).
   *
   * @throws {RangeError} when `maxPacketSize` or `receiveMaximum` is outside what the protocol can express.
   */
  constructor(options: BrokerOptions = {}) {
    this.options = resolveOptions(options);
    this.clock = this.options.clock;
    this.logger = this.options.logger;
    this.authorizer = this.options.authorizer;
    this.#authenticator = this.options.authenticator;
    this.#authMethods = new Map((options.authMethods ?? []).map((m) => [m.name, m]));
    this.#persistence = options.persistence;
    this.connectLimiter = new AddressLimiter(this.options.connectRatePerAddress, this.clock);
    this.deadlines = new DeadlineQueue(this.clock, (connection, now) => connection.checkDeadline(now));
    this.store = options.persistence === undefined
      ? undefined
      : new CommitQueue(options.persistence, (error) =>
        this.logger.error(`storage commit failed: ${String(error)}`));
    this.#startedAt = this.clock.now();
    const o = this.options;
    this.connackProperties = {
      receiveMaximum: o.receiveMaximum,
      maximumPacketSize: o.maxPacketSize,
      topicAliasMaximum: o.topicAliasMaximum,
      ...(o.maxQoS < 2 ? { maximumQoS: o.maxQoS } : {}),
      retainAvailable: o.retainAvailable ? 1 : 0,
      wildcardSubscriptionAvailable: o.wildcardSubscriptionsAvailable ? 1 : 0,
      subscriptionIdentifiersAvailable: o.subscriptionIdentifiersAvailable ? 1 : 0,
      sharedSubscriptionAvailable: o.sharedSubscriptionsAvailable ? 1 : 0,
    };
  }

  /** Sessions currently known (connected or not). */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Connections currently open. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** A session by client id (for tests and tools). */
  session(clientId: string): Session | undefined {
    return this.#sessions.get(clientId);
  }

  /** Loads persisted state and starts `$SYS` updates. Called by {@linkcode Broker.listen}; idempotent. */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    this.#state = "starting";
    if (this.#persistence !== undefined) await this.#restore(this.#persistence);
    this.#state = "running";
    const sweep = () => {
      this.#sweepExpired();
      this.#sweepTimer = this.clock.setTimeout(sweep, SWEEP_INTERVAL);
    };
    this.#sweepTimer = this.clock.setTimeout(sweep, SWEEP_INTERVAL);

    if (this.options.sysInterval > 0) {
      this.#publishSys();
      const tick = () => {
        this.#publishSys();
        this.#sysTimer = this.clock.setTimeout(tick, this.options.sysInterval * 1000);
      };
      this.#sysTimer = this.clock.setTimeout(tick, this.options.sysInterval * 1000);
    }
  }

  async #restore(persistence: Persistence): Promise<void> {
    const state = await persistence.load();
    const now = this.clock.now();
    for (const message of state.retained) {
      if (message.expiresAt === undefined || message.expiresAt > now) this.retained.set(message);
    }
    for (const stored of state.sessions) {
      const session = new Session({
        clientId: stored.clientId,
        protocolVersion: stored.protocolVersion,
        expiryInterval: stored.expiryInterval,
        maxQueued: this.options.maxQueued,
        maxQueuedBytes: this.options.maxQueuedBytes,
        queueQoS0: this.options.queueQoS0,
        onDrop: this.#onDrop,
        store: this.store,
      });
      session.disconnectedAt = stored.disconnectedAt ?? now;
      if (stored.username !== undefined) {
        session.identity = { clientId: stored.clientId, username: stored.username };
      }
      for (const subscription of stored.subscriptions) this.router.subscribe(stored.clientId, subscription);
      session.restore(stored.outgoing, stored.incoming);
      this.#sessions.set(stored.clientId, session);
      if (stored.disconnectedAt === undefined) this.sessionChanged(session);
      this.#scheduleExpiry(session, now);
    }
    for (const will of state.wills) {
      // A will armed for a connection that was open when the broker stopped: that connection is gone now.
      const identity: ClientIdentity = { clientId: will.clientId };
      const pending: PendingWill = { message: will.message, identity, timer: undefined };
      this.#pendingWills.set(will.clientId, pending);
      pending.timer = this.clock.setTimeout(
        () => this.#publishWill(will.clientId),
        Math.max(0, will.sendAt - now),
      );
    }
    this.logger.info(
      `restored ${state.sessions.length} session(s), ${state.retained.length} retained message(s), ` +
        `${state.wills.length} will(s) from ${persistence.name}`,
    );
  }

  /**
   * Listens for MQTT over TCP. Resolves with the bound address (port 0 picks one). The accept loop is the one
   * the configured listeners use (`server/accept_loop.ts`).
   */
  async listen(options: ListenOptions = {}): Promise<ListenAddress> {
    await this.start();
    const listener = Deno.listen({ hostname: options.hostname ?? "127.0.0.1", port: options.port ?? 1883 });
    const loop = acceptLoop(this, listener, {
      type: "tcp",
      name: "tcp listener",
      allowAnonymous: options.allowAnonymous ?? true,
    });
    // close() closes what is in #listeners, then waits for #accepting.
    const closing = Promise.withResolvers<void>();
    this.#listeners.add({ close: () => loop.close().then(closing.resolve, closing.resolve) });
    this.#accepting.add(closing.promise);
    const addr = loop.addr;
    this.logger.info(`listening on ${addr.hostname}:${addr.port} (mqtt over tcp)`);
    return { hostname: addr.hostname, port: addr.port };
  }

  /** Serves one client over any byte stream (TCP, TLS, WebSocket, in-memory). Resolves when it is closed. */
  handle(stream: ByteStream, info: ConnectionInfo): Promise<void> {
    if (this.#state !== "running") {
      stream.close();
      return Promise.resolve();
    }
    // Connections are counted per host only when that has a limit: it costs a string and a map update each.
    const perAddress = this.options.maxConnectionsPerAddress !== Infinity;
    const host = perAddress ? hostOf(info.remoteAddress) : "";
    const fromHost = perAddress ? this.#perAddress.get(host) ?? 0 : 0;
    if (
      this.#connections.size >= this.options.maxConnections ||
      fromHost >= this.options.maxConnectionsPerAddress
    ) {
      // Refused before reading anything, as Mosquitto's max_connections does.
      this.logger.warn(`connection from ${info.remoteAddress} refused: connection limit reached`);
      stream.close();
      return Promise.resolve();
    }
    if (perAddress) this.#perAddress.set(host, fromHost + 1);
    const connection = new Connection(this, stream, info);
    this.#connections.add(connection);
    this.stats.connections++;
    return connection.run();
  }

  /**
   * Stops: closes listeners, disconnects every client (v5: DISCONNECT 0x8B Server shutting down), publishes
   * wills as the spec says, flushes storage and closes it.
   */
  async close(): Promise<void> {
    if (this.#state === "closed" || this.#state === "closing") return;
    this.#state = "closing";
    for (const listener of this.#listeners) {
      try {
        listener.close();
      } catch {
        // already closed
      }
    }
    await Promise.all(this.#accepting);
    if (this.#sysTimer !== undefined) this.clock.clearTimeout(this.#sysTimer);
    if (this.#sweepTimer !== undefined) this.clock.clearTimeout(this.#sweepTimer);
    this.deadlines.close();
    const closing: Promise<void>[] = [];
    for (const connection of [...this.#connections]) {
      connection.disconnect(REASON_CODE.ServerShuttingDown, "server shutting down");
      closing.push(connection.close("server shutting down", true));
    }
    await Promise.all(closing);
    for (const session of this.#sessions.values()) {
      if (session.expiryTimer !== undefined) this.clock.clearTimeout(session.expiryTimer as TimerId);
    }
    for (const pending of this.#pendingWills.values()) {
      if (pending.timer !== undefined) this.clock.clearTimeout(pending.timer);
    }
    if (this.store !== undefined) {
      try {
        await this.store.settled();
      } catch {
        // logged by the commit queue
      }
    }
    await this.#persistence?.close();
    this.#state = "closed";
  }

  // ---- BrokerCore ------------------------------------------------------------------------------------------

  assignClientId(): string {
    return `auto-${crypto.randomUUID()}`;
  }

  authenticate(connection: Connection, packet: ConnectPacket): AuthOutcome | Promise<AuthOutcome> {
    const method = packet.properties?.authenticationMethod;
    if (method !== undefined) return this.#beginAuth(connection, packet, method);
    // Built field by field: spreading optional fields made two objects per CONNECT (bench/load_bench.ts "idle").
    const info = connection.info;
    const request: { -readonly [K in keyof ConnectInfo]: ConnectInfo[K] } = {
      clientId: connection.clientId,
      remoteAddress: info.remoteAddress,
      allowAnonymous: info.allowAnonymous,
    };
    if (packet.username !== undefined) request.username = packet.username;
    if (packet.password !== undefined) request.password = packet.password;
    if (info.certificateCommonName !== undefined) request.certificateCommonName = info.certificateCommonName;
    return this.#authenticator.authenticate(request);
  }

  /** Starts the enhanced authentication `method` asked for in CONNECT (section 4.12). */
  async #beginAuth(connection: Connection, packet: ConnectPacket, method: string): Promise<AuthOutcome> {
    const handler = this.#authMethods.get(method);
    if (handler === undefined) {
      return {
        reasonCode: REASON_CODE.BadAuthenticationMethod,
        reason: `authentication method ${method} is not supported`,
      };
    }
    const conversation = handler.begin({
      clientId: connection.clientId,
      ...(packet.username === undefined ? {} : { username: packet.username }),
    });
    this.#conversations.set(connection, { method, conversation });
    return this.#authStep(method, await conversation.step(packet.properties?.authenticationData));
  }

  #authStep(method: string, result: AuthStepResult): AuthOutcome {
    switch (result.kind) {
      case "continue":
        return { challenge: { authenticationMethod: method, authenticationData: result.data } };
      case "success":
        return {
          reasonCode: REASON_CODE.Success,
          ...(result.username === undefined ? {} : { username: result.username }),
          properties: {
            authenticationMethod: method,
            ...(result.data === undefined ? {} : { authenticationData: result.data }),
          },
        };
      case "failure":
        return {
          reasonCode: result.reasonCode ?? REASON_CODE.NotAuthorized,
          reason: result.reason ?? "authentication failed",
        };
    }
  }

  async continueAuth(connection: Connection, packet: AuthPacket): Promise<AuthOutcome> {
    const current = this.#conversations.get(connection);
    if (current === undefined) {
      throw protocolError("AUTH without an authentication in progress (section 4.12)");
    }
    if (packet.properties?.authenticationMethod !== current.method) {
      throw protocolError("AUTH with another Authentication Method than CONNECT's [MQTT-4.12.0-5]");
    }
    return this.#authStep(
      current.method,
      await current.conversation.step(packet.properties?.authenticationData),
    );
  }

  async reauthenticate(connection: Connection, packet: AuthPacket): Promise<AuthOutcome> {
    const current = this.#conversations.get(connection);
    const method = packet.properties?.authenticationMethod;
    if (current === undefined || method !== current.method) {
      throw protocolError("Re-authentication must use the Authentication Method of CONNECT [MQTT-4.12.1-1]");
    }
    if (packet.reasonCode === REASON_CODE.ReAuthenticate) {
      const handler = this.#authMethods.get(method)!;
      current.conversation = handler.begin({
        clientId: connection.clientId,
        ...(connection.identity.username === undefined ? {} : { username: connection.identity.username }),
      });
    } else if (packet.reasonCode !== REASON_CODE.ContinueAuthentication) {
      throw protocolError("AUTH with reason Success from a client (section 3.15.2.1)");
    }
    return this.#authStep(method, await current.conversation.step(packet.properties?.authenticationData));
  }

  openSession(
    connection: Connection,
    packet: ConnectPacket,
    expiry: number,
  ): { session: Session; present: boolean } {
    const clientId = connection.clientId;
    let session = this.#sessions.get(clientId);
    const previous = session?.link;
    if (previous !== undefined && previous !== connection) {
      // Session take-over [MQTT-3.1.4-3]: the old connection is told (v5 0x8E) and closed, its will handled.
      (previous as Connection).disconnect(REASON_CODE.SessionTakenOver, "session taken over");
      // Closing it ended the session if its expiry was 0 (section 3.1.2.11.2): do not revive the removed one.
      session = this.#sessions.get(clientId);
    }
    let present = false;
    if (session !== undefined && packet.cleanStart) {
      this.#endSession(session, "clean start");
      session = undefined;
    } else if (session !== undefined) {
      present = true;
      this.#cancelWill(clientId);
      if (session.expiryTimer !== undefined) {
        this.clock.clearTimeout(session.expiryTimer as TimerId);
        session.expiryTimer = undefined;
      }
    }
    if (session === undefined) {
      session = new Session({
        clientId,
        protocolVersion: connection.protocolVersion,
        expiryInterval: expiry,
        maxQueued: this.options.maxQueued,
        maxQueuedBytes: this.options.maxQueuedBytes,
        queueQoS0: this.options.queueQoS0,
        onDrop: this.#onDrop,
        store: this.store,
      });
      this.#sessions.set(clientId, session);
    }
    const wasPersistent = session.persistent;
    session.expiryInterval = expiry;
    session.protocolVersion = connection.protocolVersion;
    session.disconnectedAt = undefined;
    // Kept with the session: deliveries to it while offline are authorized as this user.
    session.identity = connection.identity;
    if (session.persistent) this.sessionChanged(session);
    else if (wasPersistent) this.store?.add({ kind: "deleteSession", clientId });
    if (this.store !== undefined && packet.will !== undefined) {
      // Armed will: if the broker dies while this client is connected, it is sent at the next start.
      this.store.add({
        kind: "putWill",
        will: { clientId, message: this.messageFromWill(packet.will, clientId), sendAt: 0 },
      });
    }
    return { session, present };
  }

  attach(connection: Connection, session: Session): void {
    session.link = connection;
    session.resume(this.clock.now());
  }

  detach(connection: Connection, session: Session, will: WillMessage | undefined): void {
    if (session.link !== connection) return;
    const now = this.clock.now();
    session.link = undefined;
    session.disconnectedAt = now;
    if (will !== undefined) {
      const delay = connection.protocolVersion === 5 ? (will.properties?.willDelayInterval ?? 0) : 0;
      this.#scheduleWill(connection.identity, this.messageFromWill(will, session.clientId), delay, now);
    } else if (this.store !== undefined && connection.armedWill) {
      this.store.add({ kind: "deleteWill", clientId: session.clientId });
    }
    if (session.expiryInterval === 0) {
      this.#endSession(session, "connection closed");
    } else {
      this.sessionChanged(session);
      this.#scheduleExpiry(session, now);
    }
  }

  #scheduleExpiry(session: Session, now: number): void {
    if (session.expiryInterval === EXPIRY_NEVER || session.link !== undefined) return;
    const since = now - (session.disconnectedAt ?? now);
    const remaining = session.expiryInterval * 1000 - since;
    if (remaining <= 0) {
      this.#endSession(session, "session expired");
      return;
    }
    session.expiryTimer = this.clock.setTimeout(() => {
      session.expiryTimer = undefined;
      if (session.link === undefined && this.#sessions.get(session.clientId) === session) {
        this.#endSession(session, "session expired");
      }
    }, remaining);
  }

  /** Ends a session: its subscriptions go, shared-subscription messages go to another member, its will is sent. */
  #endSession(session: Session, reason: string): void {
    const clientId = session.clientId;
    if (session.expiryTimer !== undefined) this.clock.clearTimeout(session.expiryTimer as TimerId);
    this.#sessions.delete(clientId);
    const undelivered = session.drain();
    this.router.unsubscribeAll(clientId);
    if (this.store !== undefined && (session.persistent || session.disconnectedAt !== undefined)) {
      this.store.add({ kind: "deleteSession", clientId });
    }
    if (logs(this.logger, "debug")) this.logger.debug(`session ${clientId} ended: ${reason}`);
    // A shared-subscription message a leaving member did not acknowledge goes to another member, but not a QoS 2
    // message already sent to it [MQTT-4.8.2-5].
    const cache = new EncodeCache(this.clock.now());
    for (const entry of undelivered) {
      if (entry.shareFilter === undefined || (entry.qos === 2 && entry.state !== "queued")) continue;
      for (
        const delivery of this.router.match(entry.message.topic, this.#matchAny)
      ) {
        if (delivery.filter !== entry.shareFilter) continue;
        this.#sessions.get(delivery.clientId)?.deliver(
          entry.message,
          Math.min(entry.message.qos, delivery.qos) as QoS,
          entry.retain,
          delivery.subscriptionIds.length === 0 ? undefined : delivery.subscriptionIds, // the new member's
          cache,
          entry.shareFilter,
        );
      }
    }
    // The will goes out when the session ends, even before its delay [MQTT-3.1.3-9] (section 3.1.3.2.2).
    if (this.#pendingWills.has(clientId)) this.#publishWill(clientId);
  }

  #scheduleWill(identity: ClientIdentity, message: Message, delaySeconds: number, now: number): void {
    const clientId = identity.clientId;
    this.#cancelWill(clientId);
    const pending: PendingWill = { message, identity, timer: undefined, since: now };
    this.#pendingWills.set(clientId, pending);
    if (delaySeconds === 0) {
      this.#publishWill(clientId);
      return;
    }
    this.store?.add({ kind: "putWill", will: { clientId, message, sendAt: now + delaySeconds * 1000 } });
    pending.timer = this.clock.setTimeout(() => this.#publishWill(clientId), delaySeconds * 1000);
  }

  #cancelWill(clientId: string): void {
    const pending = this.#pendingWills.get(clientId);
    if (pending === undefined) return;
    if (pending.timer !== undefined) this.clock.clearTimeout(pending.timer);
    this.#pendingWills.delete(clientId);
    this.store?.add({ kind: "deleteWill", clientId });
  }

  #publishWill(clientId: string): void {
    const pending = this.#pendingWills.get(clientId);
    if (pending === undefined) return;
    if (pending.timer !== undefined) this.clock.clearTimeout(pending.timer);
    this.#pendingWills.delete(clientId);
    this.store?.add({ kind: "deleteWill", clientId });
    if (!this.authorizer.canPublish(pending.identity, pending.message.topic)) {
      this.logger.info(`will of ${clientId} to ${pending.message.topic} not published: not authorized`);
      return;
    }
    this.logger.debug(`publishing will of ${clientId} to ${pending.message.topic}`);
    let message = pending.message;
    if (message.expiresAt !== undefined && pending.since !== undefined) {
      // The will's Message Expiry Interval starts when it is published (section 3.1.3.2.4), not at the disconnect.
      message = { ...message, expiresAt: message.expiresAt + (this.clock.now() - pending.since) };
    }
    this.publish(message);
  }

  sessionChanged(session: Session): void {
    if (this.store === undefined || !session.persistent) return;
    // Written as the session is when the batch is cut, once per batch however many SUBSCRIBEs it saw.
    this.store.addLatest(session, () => ({
      kind: "putSession",
      session: session.toStored(this.router.subscriptionsOf(session.clientId)),
    }));
  }

  messageFrom(topic: string, packet: PublishPacket, origin: string): Message {
    const props = packet.properties;
    let properties: Properties | undefined;
    let expiresAt: number | undefined;
    if (props !== undefined) {
      const { topicAlias: _alias, messageExpiryInterval, subscriptionIdentifiers: _ids, ...rest } = props;
      if (messageExpiryInterval !== undefined) expiresAt = this.clock.now() + messageExpiryInterval * 1000;
      properties = Object.keys(rest).length === 0 ? undefined : rest;
    }
    // Per-PUBLISH hot path: one object, the optional fields added only when present (no spread temporaries).
    const message: { -readonly [K in keyof Message]: Message[K] } = {
      topic,
      payload: packet.payload.slice(),
      qos: packet.qos,
      retain: packet.retain,
      origin,
    };
    if (properties !== undefined) message.properties = properties;
    if (expiresAt !== undefined) message.expiresAt = expiresAt;
    return message;
  }

  messageFromWill(will: WillMessage, origin: string): Message {
    let properties: Properties | undefined;
    let expiresAt: number | undefined;
    if (will.properties !== undefined) {
      const { willDelayInterval: _delay, messageExpiryInterval, ...rest } = will.properties;
      if (messageExpiryInterval !== undefined) expiresAt = this.clock.now() + messageExpiryInterval * 1000;
      properties = Object.keys(rest).length === 0 ? undefined : rest;
    }
    return {
      topic: will.topic,
      payload: will.payload.slice(),
      qos: will.qos,
      retain: will.retain,
      origin,
      ...(properties === undefined ? {} : { properties }),
      ...(expiresAt === undefined ? {} : { expiresAt }),
    };
  }

  /** Routes a message to every matching session; returns how many sessions it was given to. */
  publish(message: Message): number {
    if (message.retain) this.#retain(message);
    // Per-PUBLISH hot path: no closure or spread per message, at most one small options object.
    const deliveries = this.router.match(
      message.topic,
      message.origin === undefined
        ? this.#matchAny
        : { publisherId: message.origin, isAvailable: this.#isAvailable },
    );
    if (deliveries.length === 0) return 0;
    const cache = new EncodeCache(this.clock.now());
    const authorizer = this.authorizer;
    const checkReceive = authorizer !== ALLOW_ALL;
    let receivers = 0;
    for (const delivery of deliveries) {
      const session = this.#sessions.get(delivery.clientId);
      if (session === undefined) continue;
      if (checkReceive) {
        if (!authorizer.canReceive(session.identity, message.topic)) continue;
      }
      const qos = (delivery.qos < message.qos ? delivery.qos : message.qos) as QoS;
      // RETAIN is cleared on forwarding unless Retain As Published [MQTT-3.3.1-12] [MQTT-3.3.1-13].
      const retain = delivery.retainAsPublished && message.retain;
      const ids = delivery.subscriptionIds.length === 0 ? undefined : delivery.subscriptionIds;
      session.deliver(
        message,
        qos,
        retain,
        ids,
        cache,
        delivery.shareGroup === undefined ? undefined : delivery.filter,
      );
      receivers++;
    }
    return receivers;
  }

  /** Drops retained messages whose Message Expiry Interval has passed (section 3.3.2.3.3). */
  #sweepExpired(): void {
    const now = this.clock.now();
    const expired: string[] = [];
    for (const message of this.retained.all()) {
      if (message.expiresAt !== undefined && message.expiresAt <= now) expired.push(message.topic);
    }
    for (const topic of expired) {
      this.retained.delete(topic);
      this.store?.add({ kind: "deleteRetained", topic });
    }
  }

  /** Logs the first drop of a session's queue, then every 1,000th, so a full queue is seen but not flooded. */
  readonly #onDrop = (session: Session): void => {
    if (session.dropped % 1000 === 1) {
      this.logger.warn(
        `queue of ${session.clientId} is full (${this.options.maxQueued} messages or ${this.options.maxQueuedBytes} ` +
          `bytes): ${session.dropped} QoS 1/2 message(s) dropped so far`,
      );
    }
  };

  /** Whether a shared-subscription member can take a message now (online, window not full). */
  readonly #isAvailable = (clientId: string): boolean => this.#sessions.get(clientId)?.available ?? false;
  readonly #matchAny: MatchOptions = { isAvailable: this.#isAvailable };

  #retain(message: Message): void {
    const persist = this.store !== undefined && !message.topic.startsWith("$SYS/");
    if (message.payload.length === 0) {
      // An empty retained message deletes the topic's retained message [MQTT-3.3.1-10].
      if (this.retained.delete(message.topic) && persist) {
        this.store!.add({ kind: "deleteRetained", topic: message.topic });
      }
      return;
    }
    const existing = this.retained.get(message.topic);
    if (existing === undefined && this.retained.size >= this.options.maxRetained) {
      this.logger.warn(
        `retained message for ${message.topic} dropped: ${this.options.maxRetained} retained messages stored`,
      );
      return;
    }
    const growth = message.payload.length - (existing?.payload.length ?? 0);
    if (growth > 0 && this.retained.bytes + growth > this.options.maxRetainedBytes) {
      this.logger.warn(`retained message for ${message.topic} dropped: retained byte limit reached`);
      return;
    }
    const stored: Message = { ...message, retain: true };
    this.retained.set(stored);
    if (persist) this.store!.add({ kind: "putRetained", message: stored });
  }

  connectionClosed(connection: Connection): void {
    if (!this.#connections.delete(connection) || this.options.maxConnectionsPerAddress === Infinity) return;
    const host = hostOf(connection.info.remoteAddress);
    const count = (this.#perAddress.get(host) ?? 1) - 1;
    if (count <= 0) this.#perAddress.delete(host);
    else this.#perAddress.set(host, count);
  }

  // ---- $SYS ------------------------------------------------------------------------------------------------

  #publishSys(): void {
    const now = this.clock.now();
    const stats = this.stats;
    let connected = 0;
    for (const session of this.#sessions.values()) if (session.link !== undefined) connected++;
    const total = this.#sessions.size;
    let dropped = 0;
    for (const session of this.#sessions.values()) dropped += session.dropped;
    const previous = this.#sysPrevious;
    const interval = (now - previous.at) / 1000;
    const values: [string, string | number][] = [
      ["version", BROKER_VERSION],
      ["uptime", `${Math.floor((now - this.#startedAt) / 1000)} seconds`],
      ["clients/connected", connected],
      ["clients/active", connected],
      ["clients/disconnected", total - connected],
      ["clients/inactive", total - connected],
      ["clients/total", total],
      ["messages/received", stats.packetsReceived],
      ["messages/sent", stats.packetsSent],
      ["publish/messages/received", stats.messagesReceived],
      ["publish/messages/sent", stats.messagesSent],
      ["publish/messages/dropped", dropped],
      ["bytes/received", stats.bytesReceived],
      ["bytes/sent", stats.bytesSent],
      ["subscriptions/count", this.router.size],
      ["retained messages/count", this.retained.size],
    ];
    if (previous.at > 0 && interval > 0) {
      // Per-minute rates as exponentially damped averages, as Mosquitto's $SYS/broker/load/... do.
      for (
        const [name, delta] of [
          ["messages/received", stats.packetsReceived - previous.received],
          ["messages/sent", stats.packetsSent - previous.sent],
          ["bytes/received", stats.bytesReceived - previous.bytesReceived],
          ["bytes/sent", stats.bytesSent - previous.bytesSent],
          ["connections", stats.connections - previous.connections],
        ] as const
      ) {
        for (const [window, minutes] of [["1min", 1], ["5min", 5], ["15min", 15]] as const) {
          const key = `load/${name}/${window}`;
          const rate = (delta / interval) * 60;
          const factor = Math.exp(-interval / (60 * minutes));
          const value = (this.#loads.get(key) ?? rate) * factor + rate * (1 - factor);
          this.#loads.set(key, value);
          values.push([key, value.toFixed(2)]);
        }
      }
    }
    this.#sysPrevious = {
      at: now,
      received: stats.packetsReceived,
      sent: stats.packetsSent,
      bytesReceived: stats.bytesReceived,
      bytesSent: stats.bytesSent,
      connections: stats.connections,
    };
    for (const [name, value] of values) {
      this.publish({
        topic: `$SYS/broker/${name}`,
        payload: utf8Encode(String(value)),
        qos: 0,
        retain: true,
      });
    }
  }
}

/** Queue limits follow Mosquitto: 0 means no limit. */
