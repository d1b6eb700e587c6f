/**
 * The broker's insides, as connections see them: the shared state (options, router, retained store, storage,
 * deadlines) and the steps of a connection's life that touch other clients, each handed to the room that owns it
 * (`sessions.ts`, `wills.ts`, `auth/conversations.ts`). The {@linkcode Broker} facade builds one and gives it to
 * each connection; it is not public API.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { AuthPacket } from "../packet/auth.ts";
import type { ConnectPacket, WillMessage } from "../packet/connect.ts";
import type { QoS } from "../packet/packet_type.ts";
import type { Properties } from "../packet/properties.ts";
import type { PublishPacket } from "../packet/publish.ts";
import { REASON_CODE } from "../packet/reason_code.ts";
import { TopicRouter } from "../topic/router.ts";
import { ALLOW_ALL, type Authenticator, type Authorizer, type ConnectInfo } from "./auth/auth.ts";
import { AuthConversations } from "./auth/conversations.ts";
import type { Connection } from "./connection.ts";
import { ClusterNode, type ClusterOptions } from "../cluster/node.ts";
import { forward } from "../cluster/forwarding.ts";
import type { Delivery } from "../topic/subscription.ts";
import type { AuthOutcome, BrokerCore } from "./core.ts";
import { type BrokerCounters, createCounters } from "./counters.ts";
import { DeadlineQueue } from "./deadlines.ts";
import { brokerConnackProperties } from "./handlers/connect_negotiation.ts";
import { AddressLimiter } from "./limits.ts";
import { type Logger, printable } from "./logger.ts";
import { type BrokerOptions, type ResolvedOptions, resolveOptions } from "./options.ts";
import { RetainedStore } from "./retained.ts";
import { EncodeCache } from "./encode_cache.ts";
import type { Session } from "./session.ts";
import { Sessions } from "./sessions.ts";
import { CommitQueue } from "./storage/commit_queue.ts";
import type { Message, Persistence } from "./storage/persistence.ts";
import { SysPublisher } from "./sys.ts";
import { messageFromWill, Wills } from "./wills.ts";

/** What {@linkcode BrokerContext.updateSecurity} swaps; what is not given stays (and is re-checked). */
export interface SecurityUpdate {
  /** The new authenticator. */
  readonly authenticator?: Authenticator;
  /** The new authorizer. */
  readonly authorizer?: Authorizer;
}

/** What every connection shares; implements {@linkcode BrokerCore} for them. */
export class BrokerContext implements BrokerCore {
  readonly options: ResolvedOptions;
  /** Broker-wide counters that only grow; `$SYS` is derived from them. */
  readonly stats: BrokerCounters = createCounters();
  readonly clock: Clock;
  readonly logger: Logger;
  /** Swapped by {@linkcode BrokerContext.updateSecurity}; connections read it at every check. */
  authorizer: Authorizer;
  readonly router: TopicRouter;
  /** The cluster this broker is a node of; `undefined` for a single broker (then nothing below costs a thing). */
  readonly cluster: ClusterNode | undefined;
  readonly retained: RetainedStore;
  readonly store: CommitQueue | undefined;
  readonly persistence: Persistence | undefined;
  readonly connackProperties: Properties;
  /** Connect timeouts and keep alives of every connection, on one timer. */
  readonly deadlines: DeadlineQueue<Connection>;
  /** CONNECT rate per IP address (checked by connections). */
  readonly connectLimiter: AddressLimiter;
  readonly wills: Wills;
  readonly sessions: Sessions;
  readonly sys: SysPublisher;
  #authenticator: Authenticator;
  readonly #conversations: AuthConversations;
  /** Enhanced methods and no password authenticator: a plain CONNECT's user name cannot be checked. */
  #scramOnly: boolean;
  /** Connections let in by an enhanced method (SCRAM): the authenticator's reload check is not theirs. */
  readonly #enhanced = new WeakSet<Connection>();
  readonly #connectionClosed: (connection: Connection) => void;

  /**
   * `connectionClosed` is the facade's: it keeps the connection registry.
   *
   * @throws {RangeError} when `maxPacketSize` or `receiveMaximum` is outside what the protocol can express.
   */
  constructor(
    options: BrokerOptions & { readonly cluster?: ClusterOptions },
    connectionClosed: (connection: Connection) => void,
  ) {
    this.options = resolveOptions(options);
    const o = this.options;
    this.clock = o.clock;
    this.logger = o.logger;
    this.authorizer = o.authorizer;
    this.#authenticator = o.authenticator;
    this.#conversations = new AuthConversations(options.authMethods ?? []);
    this.#scramOnly = (options.authMethods ?? []).length > 0 && options.authenticator === undefined;
    this.#connectionClosed = connectionClosed;
    const cluster = options.cluster === undefined ? undefined : new ClusterNode(options.cluster);
    this.cluster = cluster;
    // In a cluster the engine is the store (sessions fenced by epoch), and the router reports route changes.
    this.router = cluster?.router ?? new TopicRouter();
    this.persistence = cluster?.store ?? options.persistence;
    this.connectLimiter = new AddressLimiter(o.connectRatePerAddress, this.clock);
    this.retained = new RetainedStore({ maxCount: o.maxRetained, maxBytes: o.maxRetainedBytes });
    this.deadlines = new DeadlineQueue(this.clock, (connection, now) => connection.checkDeadline(now));
    this.store = this.persistence === undefined
      ? undefined
      : new CommitQueue(this.persistence, (error) =>
        this.logger.error(`storage commit failed: ${String(error)}`));
    this.connackProperties = brokerConnackProperties(o);
    const publish = (message: Message): number => this.publish(message);
    this.wills = new Wills({
      clock: this.clock,
      logger: this.logger,
      authorizer: this.authorizer,
      store: this.store,
      publish,
    });
    this.sessions = new Sessions({
      options: o,
      clock: this.clock,
      logger: this.logger,
      router: this.router,
      store: this.store,
      wills: this.wills,
      counters: this.stats,
      authorizer: this.authorizer,
    });
    this.sys = new SysPublisher({
      clock: this.clock,
      counters: this.stats,
      sessions: this.sessions,
      router: this.router,
      retained: this.retained,
      publish,
    });
    cluster?.attach(this);
  }

  /** Loads what the previous run stored: retained messages, sessions, wills. */
  async restore(persistence: Persistence): Promise<void> {
    const state = await persistence.load();
    const now = this.clock.now();
    for (const message of state.retained) {
      if (message.expiresAt === undefined || message.expiresAt > now) this.retained.set(message);
    }
    this.sessions.restore(state.sessions, now);
    // Wills armed for connections that were open when the broker stopped: those connections are gone now.
    this.wills.restore(state.wills, now);
    this.logger.info(
      `restored ${state.sessions.length} session(s), ${state.retained.length} retained message(s), ` +
        `${state.wills.length} will(s) from ${persistence.name}`,
    );
  }

  assignClientId(): string {
    return `auto-${crypto.randomUUID()}`;
  }

  authenticate(
    connection: Connection,
    packet: ConnectPacket,
    signal: AbortSignal,
  ): AuthOutcome | Promise<AuthOutcome> {
    const method = packet.properties?.authenticationMethod;
    if (method !== undefined) {
      this.#enhanced.add(connection);
      return this.#conversations.begin(connection, packet, method);
    }
    if (this.#scramOnly && packet.username !== undefined) {
      // Enhanced methods check users here; a plain CONNECT's user name would be taken on trust.
      return {
        reasonCode: REASON_CODE.NotAuthorized,
        reason: "user names are checked by enhanced authentication only (Authentication Method)",
      };
    }
    // Built field by field: spreading optional fields made two objects per CONNECT (bench/load_bench.ts "idle").
    const info = connection.info;
    const request: { -readonly [K in keyof ConnectInfo]: ConnectInfo[K] } = {
      clientId: connection.clientId,
      remoteAddress: info.remoteAddress,
      allowAnonymous: info.allowAnonymous,
      signal,
    };
    if (packet.username !== undefined) request.username = packet.username;
    // Copied: the connection reads on into the buffer it is a view of while the verification waits.
    if (packet.password !== undefined) request.password = packet.password.slice();
    if (info.certificateCommonName !== undefined) request.certificateCommonName = info.certificateCommonName;
    return this.#authenticator.authenticate(request);
  }

  /**
   * The password file or ACL changed (reloaded in place, or swapped here): connected clients the authenticator no
   * longer passes are disconnected (v5 0x87), and every message a session holds is checked against the read
   * rules before it goes out. Wills are checked when they are published.
   */
  updateSecurity(change: SecurityUpdate): void {
    if (change.authenticator !== undefined) {
      this.#authenticator = change.authenticator;
      this.#scramOnly = false;
    }
    if (change.authorizer !== undefined) {
      this.authorizer = change.authorizer;
      this.wills.setAuthorizer(change.authorizer);
    }
    this.sessions.recheck(this.authorizer);
    const authenticator = this.#authenticator;
    if (authenticator.stillValid === undefined) return;
    const revoked: Connection[] = [];
    for (const session of this.sessions.values()) {
      const connection = session.link as Connection | undefined;
      if (connection === undefined || this.#enhanced.has(connection)) continue;
      const cn = connection.info.certificateCommonName;
      const client = cn === undefined
        ? connection.identity
        : { ...connection.identity, certificateCommonName: cn };
      if (!authenticator.stillValid(client)) revoked.push(connection);
    }
    for (const connection of revoked) {
      this.logger.info(
        `client ${printable(connection.clientId)} (user ${
          printable(connection.identity.username ?? "")
        }) disconnected: ` +
          `no longer passes authentication after a reload`,
      );
      connection.disconnect(REASON_CODE.NotAuthorized, "credentials revoked");
    }
  }

  continueAuth(connection: Connection, packet: AuthPacket): Promise<AuthOutcome> {
    return this.#conversations.continue(connection, packet);
  }

  reauthenticate(connection: Connection, packet: AuthPacket): Promise<AuthOutcome> {
    return this.#conversations.reauthenticate(connection, packet);
  }

  openSession(
    connection: Connection,
    packet: ConnectPacket,
    expiry: number,
  ): { session: Session; present: boolean } {
    return this.sessions.open(connection, packet, expiry);
  }

  attach(connection: Connection, session: Session): void {
    this.sessions.attach(connection, session);
  }

  detach(connection: Connection, session: Session, will: WillMessage | undefined): void {
    this.sessions.detach(connection, session, will);
  }

  sessionChanged(session: Session): void {
    this.sessions.changed(session);
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
    return messageFromWill(will, origin, this.clock.now());
  }

  /** Routes a message to every matching session; returns how many sessions it was given to. */
  publish(message: Message): number {
    if (message.retain) this.#retain(message);
    const sessions = this.sessions;
    const authorizer = this.authorizer;
    const checkReceive = authorizer !== ALLOW_ALL;
    // Per-PUBLISH hot path: no closure or spread per message, at most one small options object. With read rules,
    // a shared group picks only a member who may read the topic (one who may not would drop it).
    const deliveries = this.router.match(
      message.topic,
      message.origin === undefined
        ? (checkReceive ? sessions.matchAnyReader : sessions.matchAny)
        : checkReceive
        ? { publisherId: message.origin, isAvailable: sessions.isAvailable, canReceive: sessions.canReceive }
        : { publisherId: message.origin, isAvailable: sessions.isAvailable },
    );
    // Other nodes with a matching route get one forward each (`cluster/forwarding.ts`).
    const forwarded = this.cluster === undefined ? 0 : forward(this.cluster, message, deliveries);
    if (deliveries.length === 0) return forwarded;
    const cache = new EncodeCache(this.clock.now());
    let receivers = forwarded;
    for (const delivery of deliveries) {
      if (this.deliverTo(message, delivery, cache)) receivers++;
    }
    return receivers;
  }

  /**
   * Gives `message` to the session of one router delivery, at the delivery's QoS and flags; false when that
   * session is gone or may not read the topic.
   */
  deliverTo(message: Message, delivery: Delivery, cache: EncodeCache): boolean {
    const session = this.sessions.get(delivery.clientId);
    if (session === undefined) return false;
    const authorizer = this.authorizer;
    if (authorizer !== ALLOW_ALL && !authorizer.canReceive(session.identity, message.topic)) return false;
    const qos = (delivery.qos < message.qos ? delivery.qos : message.qos) as QoS;
    // RETAIN is cleared on forwarding unless Retain As Published [MQTT-3.3.1-12 (5.0)] [MQTT-3.3.1-13 (5.0)].
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
    return true;
  }

  /** Drops retained messages whose Message Expiry Interval has passed (5.0 section 3.3.2.3.3). */
  sweepExpired(): void {
    for (const topic of this.retained.sweepExpired(this.clock.now())) {
      this.store?.add({ kind: "deleteRetained", topic });
    }
  }

  /** Keeps a retained PUBLISH by the store's rules (`retained.ts`), and persists what changed. */
  #retain(message: Message): void {
    const persist = this.store !== undefined && !message.topic.startsWith("$SYS/");
    const stored: Message = message.payload.length === 0 ? message : { ...message, retain: true };
    switch (this.retained.retain(stored)) {
      case "stored":
        if (persist) this.store!.add({ kind: "putRetained", message: stored });
        return;
      case "deleted":
        if (persist) this.store!.add({ kind: "deleteRetained", topic: message.topic });
        return;
      case "count-limit":
        this.logger.warn(
          `retained message for ${
            printable(message.topic)
          } dropped: ${this.options.maxRetained} retained messages stored`,
        );
        return;
      case "byte-limit":
        this.logger.warn(
          `retained message for ${printable(message.topic)} dropped: retained byte limit reached`,
        );
        return;
      case "unchanged":
        return;
    }
  }

  connectionClosed(connection: Connection): void {
    this.#connectionClosed(connection);
  }
}
