/**
 * The session registry: one session per client id, taken over by a newer connection, discarded on Clean Start,
 * expired after its Session Expiry Interval, and restored from persistence at start.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import type { ConnectPacket, WillMessage } from "../packet/connect.ts";
import type { QoS } from "../packet/packet_type.ts";
import { MqttError } from "../mqtt_error.ts";
import { REASON_CODE } from "../packet/reason_code.ts";
import type { MatchOptions, TopicRouter } from "../topic/router.ts";
import { ALLOW_ALL, type Authorizer, type ClientIdentity } from "./auth/auth.ts";
import type { Connection } from "./connection.ts";
import { type BrokerCounters, observeDelivery } from "./counters.ts";
import { type Logger, logs, printable } from "./logger.ts";
import { EXPIRY_NEVER, type ResolvedOptions } from "./options.ts";
import { EncodeCache } from "./encode_cache.ts";
import { Session } from "./session.ts";
import { type BrokerEvents, emitClientEvent } from "./events.ts";
import type { CommitQueue } from "./storage/commit_queue.ts";
import type { LoadedSession, Message } from "./storage/persistence.ts";
import { messageFromWill, storedWill, type Wills } from "./wills.ts";

/** What {@linkcode Sessions} needs from the broker. */
export interface SessionsOptions {
  readonly options: ResolvedOptions;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Subscriptions, keyed by client id; a session's go when it ends. */
  readonly router: TopicRouter;
  /** Persistent sessions are written here. */
  readonly store: CommitQueue | undefined;
  /** A session's will goes out when it ends. */
  readonly wills: Wills;
  /** Where sessions count their drops. */
  readonly counters: BrokerCounters;
  /** Read rules, checked again for messages held since the rules changed (see {@linkcode Sessions.recheck}). */
  readonly authorizer: Authorizer;
  /** Told when an offline session expires. */
  readonly events?: BrokerEvents;
}

/** Every session the broker knows, connected or not. */
export class Sessions {
  readonly #options: ResolvedOptions;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #router: TopicRouter;
  readonly #store: CommitQueue | undefined;
  readonly #wills: Wills;
  readonly #counters: BrokerCounters;
  readonly #events: BrokerEvents | undefined;
  #authorizer: Authorizer;
  readonly #sessions = new Map<string, Session>();
  /** After {@linkcode Sessions.close}: sessions installed later (a cluster's late work) arm no expiry timer. */
  #closed = false;
  /** One function for every session: asks the authorizer in force now. */
  readonly #mayReceive = (identity: ClientIdentity, topic: string): boolean =>
    this.#authorizer.canReceive(identity, topic);

  /** Empty until CONNECTs arrive or {@linkcode Sessions.restore} runs. */
  constructor(options: SessionsOptions) {
    this.#options = options.options;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#router = options.router;
    this.#store = options.store;
    this.#wills = options.wills;
    this.#counters = options.counters;
    this.#events = options.events;
    this.#authorizer = options.authorizer;
  }

  /**
   * The read rules changed (a reload): `authorizer` is in force from now on, and every message a session holds is
   * checked against it before it goes out.
   */
  recheck(authorizer: Authorizer): void {
    this.#authorizer = authorizer;
    for (const session of this.#sessions.values()) session.recheck();
  }

  /** Sessions known, connected or not. */
  get size(): number {
    return this.#sessions.size;
  }

  /** The client's session. */
  get(clientId: string): Session | undefined {
    return this.#sessions.get(clientId);
  }

  /** Every session. */
  values(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  /** Whether a shared-subscription member can take a message now (online, window not full). */
  readonly isAvailable = (clientId: string): boolean => this.#sessions.get(clientId)?.available ?? false;
  /** Whether the session of `clientId` may read `topic`: a shared group picks only such members. */
  readonly canReceive = (clientId: string, topic: string): boolean => {
    const session = this.#sessions.get(clientId);
    return session !== undefined && this.#authorizer.canReceive(session.identity, topic);
  };
  /** Router options for a message with no publisher to exclude. */
  readonly matchAny: MatchOptions = { isAvailable: this.isAvailable };
  /** {@linkcode Sessions.matchAny} for a broker with read rules. */
  readonly matchAnyReader: MatchOptions = { isAvailable: this.isAvailable, canReceive: this.canReceive };

  /** Whether read rules apply (an authorizer other than ALLOW_ALL): shared groups then pick readers only. */
  get checksReceive(): boolean {
    return this.#authorizer !== ALLOW_ALL;
  }

  /**
   * Resumes or creates the client's session for an accepted CONNECT: takes it over from an older connection,
   * discards it on Clean Start. `present` is CONNACK's Session Present.
   */
  open(
    connection: Connection,
    packet: ConnectPacket,
    expiry: number,
  ): { session: Session; present: boolean } {
    const clientId = connection.clientId;
    let session = this.#sessions.get(clientId);
    if (session !== undefined && session.identity.username !== connection.identity.username) {
      // A session belongs to the user who made it: another user presenting its client id would get its queued
      // messages (or discard them). Refused before the owner's connection is touched; no user is one "user".
      throw new MqttError(
        REASON_CODE.NotAuthorized,
        `client id ${printable(clientId)} is a session of ${userName(session.identity)}: ` +
          `${userName(connection.identity)} may not take it over`,
      );
    }
    const previous = session?.link;
    if (previous !== undefined && previous !== connection) {
      // Session take-over [MQTT-3.1.4-3 (5.0)] [MQTT-3.1.4-2 (3.1.1)]: the old connection is told (v5 0x8E) and
      // closed, its will handled.
      this.#counters.sessionTakeovers++;
      (previous as Connection).disconnect(REASON_CODE.SessionTakenOver, "session taken over");
      // Closing it ended the session if its expiry was 0 (section 3.1.2.11.2): do not revive the removed one.
      session = this.#sessions.get(clientId);
    }
    let present = false;
    if (session !== undefined && packet.cleanStart) {
      // Back before its Will Delay passed: the will is not sent, though the session ends [MQTT-3.1.2-8 (5.0)]
      // (as Mosquitto reads it: the delay is there for a client that comes back quickly).
      this.#wills.cancel(clientId);
      this.#end(session, "clean start");
      session = undefined;
    } else if (session !== undefined) {
      present = true;
      this.#wills.cancel(clientId);
      if (session.expiryTimer !== undefined) {
        this.#clock.clearTimeout(session.expiryTimer as TimerId);
        session.expiryTimer = undefined;
      }
    }
    if (session === undefined) {
      session = this.#create(clientId, connection.protocolVersion, expiry);
      this.#sessions.set(clientId, session);
    }
    const wasPersistent = session.persistent;
    session.expiryInterval = expiry;
    session.protocolVersion = connection.protocolVersion;
    session.disconnectedAt = undefined;
    // Kept with the session: deliveries to it while offline are authorized as this user.
    session.identity = connection.identity;
    if (session.persistent) this.changed(session);
    else if (wasPersistent) this.#store?.add({ kind: "deleteSession", clientId });
    if (this.#store !== undefined && packet.will !== undefined) {
      // Armed will: if the broker dies while this client is connected, it is sent at the next start.
      this.#store.add({
        kind: "putWill",
        will: storedWill(connection.identity, messageFromWill(packet.will, clientId, this.#clock.now()), 0),
      });
    }
    return { session, present };
  }

  /** Makes `connection` the session's link, which sends what the session holds for the client. */
  attach(connection: Connection, session: Session): void {
    session.link = connection;
    session.resume(this.#clock.now());
  }

  /** The connection is gone: its will is scheduled, and the session ends or starts to expire. */
  detach(connection: Connection, session: Session, will: WillMessage | undefined): void {
    if (session.link !== connection) return;
    const now = this.#clock.now();
    session.link = undefined;
    session.disconnectedAt = now;
    if (will !== undefined) {
      const delay = connection.protocolVersion === 5 ? (will.properties?.willDelayInterval ?? 0) : 0;
      this.#wills.schedule(connection.identity, messageFromWill(will, session.clientId, now), delay, now);
    } else if (this.#store !== undefined && connection.armedWill) {
      this.#store.add({ kind: "deleteWill", clientId: session.clientId });
    }
    if (session.expiryInterval === 0) {
      this.#end(session, "connection closed");
    } else {
      this.changed(session);
      this.#scheduleExpiry(session, now);
    }
  }

  /** Stores a persistent session again after its subscriptions or expiry changed. */
  changed(session: Session): void {
    if (this.#store === undefined || !session.persistent) return;
    // Written as the session is when the batch is cut, once per batch however many SUBSCRIBEs it saw.
    this.#store.addLatest(session, () => ({
      kind: "putSession",
      session: session.toStored(this.#router.subscriptionsOf(session.clientId)),
    }));
  }

  /** Sessions stored by the previous run, with their subscriptions and queues; expired ones end at once. */
  restore(stored: readonly LoadedSession[], now: number): void {
    for (const entry of stored) {
      const session = this.#create(entry.clientId, entry.protocolVersion, entry.expiryInterval);
      session.disconnectedAt = entry.disconnectedAt ?? now;
      if (entry.username !== undefined) {
        session.identity = { clientId: entry.clientId, username: entry.username };
      }
      for (const subscription of entry.subscriptions) this.#router.subscribe(entry.clientId, subscription);
      session.restore(entry.outgoing, entry.incoming);
      // Routed under the previous run's rules: each goes out only if the owner may still read it.
      session.recheck();
      this.#sessions.set(entry.clientId, session);
      if (entry.disconnectedAt === undefined) this.changed(session);
      this.#scheduleExpiry(session, now);
    }
  }

  /**
   * Ends a session that has no connection now (an administrator's "discard session"): its subscriptions and
   * queue go, its will is sent. False when there is no such session or it is connected.
   */
  discard(clientId: string, reason: string): boolean {
    const session = this.#sessions.get(clientId);
    if (session === undefined || session.link !== undefined) return false;
    this.#end(session, reason);
    return true;
  }

  /**
   * Drops a session from this broker without ending it: no will, no store write, its subscriptions gone from the
   * router. A cluster node does this when another node owns the client id now (`cluster/ownership.ts`).
   */
  forget(clientId: string): Session | undefined {
    const session = this.#sessions.get(clientId);
    if (session === undefined) return undefined;
    if (session.expiryTimer !== undefined) this.#clock.clearTimeout(session.expiryTimer as TimerId);
    session.expiryTimer = undefined;
    this.#sessions.delete(clientId);
    this.#router.unsubscribeAll(clientId);
    return session;
  }

  /** Stops every expiry timer and arms none from now on (the broker is closing). */
  close(): void {
    this.#closed = true;
    for (const session of this.#sessions.values()) {
      if (session.expiryTimer !== undefined) this.#clock.clearTimeout(session.expiryTimer as TimerId);
    }
  }

  #create(clientId: string, protocolVersion: Session["protocolVersion"], expiry: number): Session {
    const options = this.#options;
    return new Session({
      clientId,
      protocolVersion,
      expiryInterval: expiry,
      maxQueued: options.maxQueued,
      maxQueuedBytes: options.maxQueuedBytes,
      queueQoS0: options.queueQoS0,
      onDrop: this.#onDrop,
      counters: this.#counters,
      onDelivered: this.#delivered,
      store: this.#store,
      mayReceive: this.#mayReceive,
    });
  }

  #scheduleExpiry(session: Session, now: number): void {
    let interval = session.expiryInterval;
    // "Never" gives way to the operator's limit for such sessions (Mosquitto's persistent_client_expiration).
    if (interval === EXPIRY_NEVER && this.#options.persistentClientExpiration > 0) {
      interval = this.#options.persistentClientExpiration;
    }
    if (interval === EXPIRY_NEVER || session.link !== undefined || this.#closed) return;
    // Time away so far: 0 for a live disconnect; for a restored session, by the wall clock (stored across the
    // restart), never negative when the clock went back meanwhile. The timer itself is on the monotonic clock.
    const away = Math.max(0, now - (session.disconnectedAt ?? now));
    const remaining = interval * 1000 - away;
    if (remaining <= 0) {
      this.#expire(session);
      return;
    }
    session.expiryTimer = this.#clock.setTimeout(() => {
      session.expiryTimer = undefined;
      if (session.link === undefined && this.#sessions.get(session.clientId) === session) {
        this.#expire(session);
      }
    }, remaining);
  }

  /** An offline session reached its expiry: it ends, and the event hub hears of it. */
  #expire(session: Session): void {
    this.#counters.sessionsExpired++;
    this.#end(session, "session expired");
    const events = this.#events;
    if (events !== undefined && events.listening) {
      const peer = { clientId: session.clientId, identity: session.identity, info: { remoteAddress: "" } };
      emitClientEvent(events, { ...peer, protocolVersion: session.protocolVersion }, {
        event: "disconnected",
        reason: "session_expired",
        at: this.#clock.now(),
      });
    }
  }

  /** Ends a session: its subscriptions go, shared-subscription messages go to another member, its will is sent. */
  #end(session: Session, reason: string): void {
    const clientId = session.clientId;
    if (session.expiryTimer !== undefined) this.#clock.clearTimeout(session.expiryTimer as TimerId);
    this.#sessions.delete(clientId);
    const undelivered = session.drain();
    this.#router.unsubscribeAll(clientId);
    if (this.#store !== undefined && (session.persistent || session.disconnectedAt !== undefined)) {
      this.#store.add({ kind: "deleteSession", clientId });
    }
    if (logs(this.#logger, "debug")) {
      this.#logger.debug(`session ${printable(clientId)} ended: ${reason}`, {
        event: reason === "session expired" ? "session.expired" : "session.ended",
        clientId,
        reason,
      });
    }
    // A shared-subscription message a leaving member did not acknowledge goes to another member, but not a QoS 2
    // message already sent to it [MQTT-4.8.2-5 (5.0)].
    const cache = new EncodeCache(this.#clock.now());
    for (const entry of undelivered) {
      if (entry.shareFilter === undefined || (entry.qos === 2 && entry.state !== "queued")) continue;
      const options = this.checksReceive ? this.matchAnyReader : this.matchAny;
      for (const delivery of this.#router.match(entry.message.topic, options)) {
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
    // The will goes out when the session ends, even before its delay (5.0 section 3.1.3.2.2).
    if (this.#wills.has(clientId)) this.#wills.publish(clientId);
  }

  /** A QoS 1/2 delivery was acknowledged: its latency since the PUBLISH arrived is observed (one function). */
  readonly #delivered = (message: Message, qos: QoS): void => observeDelivery(this.#counters, message, qos);

  /** Logs the first drop of a session's queue, then every 1,000th, so a full queue is seen but not flooded. */
  readonly #onDrop = (session: Session): void => {
    if (session.dropped % 1000 === 1) {
      this.#logger.warn(
        `queue of ${printable(session.clientId)} is full (${this.#options.maxQueued} messages or ` +
          `${this.#options.maxQueuedBytes} bytes): ${session.dropped} QoS 1/2 message(s) dropped so far`,
        {
          event: "messages.dropped",
          clientId: session.clientId,
          reason: "queue_full",
          dropped: session.dropped,
        },
      );
    }
  };
}

/** A session owner for log lines and refusals. */
function userName(identity: ClientIdentity): string {
  return identity.username === undefined ? "an anonymous client" : `user ${printable(identity.username)}`;
}
