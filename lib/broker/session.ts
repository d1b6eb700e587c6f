/**
 * A session (section 4.1): subscriptions live in the router; this holds what flows to and from one client id —
 * the inflight window of outgoing QoS 1/2 messages and their QoS 1/2 states, the queue behind it
 * (`outgoing_queue.ts`) with its limits, offline QoS 0, incoming QoS 2 state, packet identifiers, and the read
 * re-check. Deliveries are written to the connection by `publish_writer.ts`.
 *
 * @module
 */

import type { ProtocolVersion, QoS } from "../packet/packet_type.ts";
import type { CommitQueue } from "./storage/commit_queue.ts";
import type { Message, OutgoingMessage, StoredSession } from "./storage/persistence.ts";
import type { Subscription } from "../topic/router.ts";
import type { ClientIdentity } from "./auth/auth.ts";
import { type BrokerCounters, countDrop, DROP, type DropReason } from "./counters.ts";
import { EncodeCache } from "./encode_cache.ts";
import { fromStoredOutgoing, type Outgoing, toStoredOutgoing } from "./outgoing.ts";
import { OutgoingQueue } from "./outgoing_queue.ts";
import { type OutgoingAliases, writeOutgoing, writeQoS0, WRITTEN } from "./publish_writer.ts";
import type { SessionLink } from "./session_link.ts";

// Fan-outs build an EncodeCache; it lives in its own file, re-exported for the session's callers.
export { EncodeCache } from "./encode_cache.ts";

/** Options a session is created with. */
export interface SessionOptions {
  /** The client identifier the session belongs to. */
  readonly clientId: string;
  /** The protocol of the connection that opens it (or of the stored session). */
  readonly protocolVersion: ProtocolVersion;
  /** Seconds (0 = ends with the connection; 0xFFFFFFFF = never expires). */
  readonly expiryInterval: number;
  /** Maximum QoS 1/2 messages queued behind the inflight window. */
  readonly maxQueued: number;
  /** Maximum payload bytes queued behind the inflight window. */
  readonly maxQueuedBytes: number;
  /** Called when a QoS 1/2 message is dropped because the queue is full (for a log line). */
  readonly onDrop?: (session: Session) => void;
  /** The broker-wide counts every drop of this session is added to (`counters.ts`), by reason. */
  readonly counters?: BrokerCounters;
  /** Called when a QoS 1/2 delivery is acknowledged (PUBACK, PUBCOMP): the broker observes its latency. */
  readonly onDelivered?: (message: Message, qos: QoS) => void;
  /** Whether QoS 0 messages are queued while the client is offline. */
  readonly queueQoS0: boolean;
  /** Where durable changes go; undefined when nothing is persisted. */
  readonly store: CommitQueue | undefined;
  /**
   * Whether the session's user may read a topic now: asked again when a message routed before the rules changed
   * (see {@linkcode Session.recheck}) leaves the queue or is resent.
   */
  readonly mayReceive?: (identity: ClientIdentity, topic: string) => boolean;
}

/**
 * What {@linkcode Session.deliver} did with a message: `sent` (written, or in flight), `queued` (behind the window
 * or offline), dropped because the queue was full (`queue_full`), the connection's output was full
 * (`output_full`), it expired or is too large for the client (`unsendable`), or QoS 0 to an offline session that
 * keeps none (`offline`).
 */
export type DeliveryOutcome = "sent" | "queued" | "queue_full" | "output_full" | "unsendable" | "offline";

/** A session. */
export class Session {
  /** The client identifier the session belongs to. */
  readonly clientId: string;
  /** The protocol of the last connection: queued messages are encoded for it. */
  protocolVersion: ProtocolVersion;
  /** Seconds the session outlives its connection (0 = ends with it; 0xFFFFFFFF = never expires). */
  expiryInterval: number;
  /** Who owns the session (the user name of its last connection), for read authorization. */
  identity: ClientIdentity;
  /** The live connection, if any. */
  link: SessionLink | undefined;
  /** When the client went away (ms since the epoch). */
  disconnectedAt: number | undefined;
  // The four collections below are made on first use and dropped when empty where that is cheap: an idle
  // session has none, and an empty Map or Set costs about 200 bytes (bench/load_bench.ts "idle").
  /** Outgoing QoS 1/2 messages in flight, by packet identifier, in send order. */
  #inflight: Map<number, Outgoing> | undefined;
  /** Messages waiting for room in the inflight window, oldest first. */
  #queue: OutgoingQueue | undefined;
  /** Offline QoS 0 messages (only with queueQoS0), with the RETAIN and identifiers they are forwarded with. */
  #qos0: { message: Message; retain: boolean; subscriptionIds: readonly number[] | undefined }[] | undefined;
  /** Incoming QoS 2 packet identifiers answered with PUBREC and waiting for PUBREL. */
  #incoming: Set<number> | undefined;
  /**
   * Messages dropped: the queue was full, the client too slow, the message expired or too large for the client,
   * or no longer readable by it.
   */
  dropped = 0;
  #nextPacketId = 1;
  #seq = 0;
  readonly #maxQueued: number;
  readonly #maxQueuedBytes: number;
  readonly #onDrop: ((session: Session) => void) | undefined;
  readonly #counters: BrokerCounters | undefined;
  readonly #onDelivered: ((message: Message, qos: QoS) => void) | undefined;
  readonly #queueQoS0: boolean;
  readonly #store: CommitQueue | undefined;
  /** Outgoing topic aliases of the current connection (topic -> alias). */
  #aliases: Map<string, number> | undefined;
  /** The broker's timer that ends the session when its expiry interval has passed with no connection. */
  expiryTimer: unknown;
  readonly #mayReceive: ((identity: ClientIdentity, topic: string) => boolean) | undefined;
  /**
   * Messages up to this `seq` (and offline QoS 0 while set) were routed under rules that may have changed since:
   * read access is checked again before they go out. 0 when every held message was checked under today's rules,
   * so a steady broker pays one comparison per message.
   */
  #recheckThrough = 0;
  /** QoS 2 packet ids in flight but not yet written (waiting for their commit): a resume sends them without DUP. */
  #unwritten: Set<number> | undefined;

  /** A session with nothing in flight or queued; the broker attaches a connection to it. */
  constructor(options: SessionOptions) {
    this.clientId = options.clientId;
    this.identity = { clientId: options.clientId };
    this.protocolVersion = options.protocolVersion;
    this.expiryInterval = options.expiryInterval;
    this.#maxQueued = options.maxQueued;
    this.#maxQueuedBytes = options.maxQueuedBytes;
    this.#onDrop = options.onDrop;
    this.#counters = options.counters;
    this.#onDelivered = options.onDelivered;
    this.#queueQoS0 = options.queueQoS0;
    this.#store = options.store;
    this.#mayReceive = options.mayReceive;
  }

  /**
   * The read rules may have changed (a reload, a restart) or the messages were routed for another identity: every
   * message held now is checked again before it is sent or resent.
   */
  recheck(): void {
    if (this.#mayReceive !== undefined) this.#recheckThrough = this.#seq === 0 ? -1 : this.#seq;
  }

  /** False (and the message counted as dropped) when a message held since the rules changed may not be read now. */
  #readable(seq: number, topic: string): boolean {
    if (seq > this.#recheckThrough) return true; // routed under today's rules (seq starts at 1)
    if (this.#mayReceive!(this.identity, topic)) return true;
    this.#drop(DROP.notAuthorized);
    return false;
  }

  /** True when the session outlives its connection and so is persisted. */
  get persistent(): boolean {
    return this.expiryInterval > 0;
  }

  /** Outgoing QoS 1/2 messages in flight, by packet identifier, in send order. */
  get inflight(): ReadonlyMap<number, Outgoing> {
    return this.#inflight ?? NO_INFLIGHT;
  }

  /** Incoming QoS 2 packet identifiers answered with PUBREC and waiting for PUBREL. */
  get incoming(): ReadonlySet<number> {
    return this.#incoming ?? NO_INCOMING;
  }

  /** Remembers an incoming QoS 2 packet identifier answered with PUBREC. */
  addIncoming(packetId: number): void {
    (this.#incoming ??= new Set()).add(packetId);
  }

  /** Forgets an incoming QoS 2 packet identifier (PUBREL received); false when it was not waiting. */
  deleteIncoming(packetId: number): boolean {
    return this.#incoming?.delete(packetId) ?? false;
  }

  /** Messages waiting behind the inflight window. */
  get queued(): number {
    return this.#queue?.length ?? 0;
  }

  /** Payload bytes waiting behind the inflight window (what `maxQueuedBytes` limits). */
  get queuedBytes(): number {
    return this.#queue?.bytes ?? 0;
  }

  /** The first `limit` messages waiting behind the inflight window, oldest first (for the admin API). */
  peekQueued(limit: number): Outgoing[] {
    return this.#queue?.toArray().slice(0, limit) ?? [];
  }

  /** True when a shared-subscription message would be sent right away. */
  get available(): boolean {
    const link = this.link;
    return link !== undefined && !link.congested && this.inflight.size < link.sendWindow;
  }

  /** What the store keeps of this session. */
  toStored(subscriptions: readonly Subscription[]): StoredSession {
    return {
      clientId: this.clientId,
      protocolVersion: this.protocolVersion,
      expiryInterval: this.expiryInterval,
      ...(this.disconnectedAt === undefined ? {} : { disconnectedAt: this.disconnectedAt }),
      ...(this.identity.username === undefined ? {} : { username: this.identity.username }),
      subscriptions,
    };
  }

  /**
   * Delivers one message at `qos` (already the lower of published and granted QoS). QoS 0 goes straight out (or
   * is dropped when the client is away or congested); QoS 1/2 enter the inflight window or wait in the queue.
   * Returns what became of it, for the message trace (`trace.ts`); a constant, nothing built.
   */
  deliver(
    message: Message,
    qos: QoS,
    retain: boolean,
    subscriptionIds: readonly number[] | undefined,
    cache: EncodeCache,
    shareFilter?: string,
  ): DeliveryOutcome {
    const link = this.link;
    if (qos === 0) {
      if (link === undefined) {
        if (!this.#queueQoS0 || !this.persistent) return "offline";
        const qos0 = this.#qos0 ??= [];
        if (qos0.length >= this.#maxQueued) {
          this.#drop(DROP.queueFull);
          return "queue_full";
        }
        qos0.push({ message, retain, subscriptionIds });
        return "queued";
      }
      if (link.congested) {
        this.#drop(DROP.outputFull);
        return "output_full";
      }
      const written = writeQoS0(link, this.#aliasesOf(link), message, retain, subscriptionIds, cache);
      if (written === WRITTEN) return "sent";
      this.#drop(written);
      return "unsendable";
    }
    const windowFull = link === undefined || this.inflight.size >= link.sendWindow || this.queued > 0;
    if (
      windowFull &&
      (this.queued >= this.#maxQueued ||
        (this.#queue?.bytes ?? 0) + message.payload.length > this.#maxQueuedBytes)
    ) {
      // A full queue drops the new message (as Mosquitto's max_queued_messages); the owner is told, rarely.
      this.#drop(DROP.queueFull);
      this.#onDrop?.(this);
      return "queue_full";
    }
    const entry: Outgoing = {
      seq: ++this.#seq,
      message,
      qos,
      retain,
      subscriptionIds,
      packetId: 0,
      state: "queued",
      ...(shareFilter === undefined ? {} : { shareFilter }),
    };
    if (link !== undefined && this.queued === 0 && this.inflight.size < link.sendWindow) {
      return this.#sendNew(link, entry, cache) ? "sent" : "unsendable";
    }
    (this.#queue ??= new OutgoingQueue()).push(entry);
    if (this.persistent) this.#persist(entry);
    return "queued";
  }

  /** Counts a message not delivered, here and broker-wide (by reason). */
  #drop(reason: DropReason): void {
    this.dropped++;
    if (this.#counters !== undefined) countDrop(this.#counters, reason);
  }

  /** Writes an inflight entry; one that expired or is too large is counted as dropped. False when not written. */
  #write(link: SessionLink, entry: Outgoing, dup: boolean, cache: EncodeCache): boolean {
    const written = writeOutgoing(link, this.#aliasesOf(link), entry, dup, cache);
    if (written === WRITTEN) return true;
    this.#drop(written);
    return false;
  }

  /**
   * Puts a new entry in flight: assigns its packet id, writes it and stores it as sent. False when it could not
   * be written (expired, too large for the client).
   */
  #sendNew(link: SessionLink, entry: Outgoing, cache: EncodeCache): boolean {
    entry.packetId = this.#allocatePacketId();
    entry.state = "sent";
    (this.#inflight ??= new Map()).set(entry.packetId, entry);
    const store = this.persistent ? this.#store : undefined;
    if (store !== undefined && entry.qos === 2) {
      // QoS 2 is written once "sent" with its packet id is committed: written earlier, a crash would bring it
      // back as queued, under a new packet id the client cannot recognise, a second delivery (section 4.3.3).
      this.#persist(entry);
      (this.#unwritten ??= new Set()).add(entry.packetId);
      const now = cache.now;
      store.settled().then(() => {
        if (this.link !== link || this.#inflight?.get(entry.packetId) !== entry || entry.state !== "sent") {
          return;
        }
        this.#unwritten?.delete(entry.packetId);
        if (!this.#write(link, entry, false, new EncodeCache(now))) {
          this.#complete(entry);
          this.pump(now);
        }
      }, () => {}); // logged by the commit queue; sent when the client reconnects
      return true;
    }
    if (!this.#write(link, entry, false, cache)) {
      this.#complete(entry);
      return false;
    }
    if (store !== undefined) this.#persist(entry);
    return true;
  }

  /** The connection's outgoing Topic Aliases when it takes them (v5, Topic Alias Maximum above 0). */
  #aliasesOf(link: SessionLink): OutgoingAliases {
    return link.protocolVersion === 5 && link.topicAliasMaximum > 0
      ? (this.#aliases ??= new Map())
      : undefined;
  }

  #allocatePacketId(): number {
    for (;;) {
      const id = this.#nextPacketId;
      this.#nextPacketId = id === 65535 ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
  }

  /** Moves queued messages into the inflight window while it has room. */
  pump(now: number): void {
    const link = this.link;
    const queue = this.#queue;
    if (link === undefined || queue === undefined) return;
    let cache: EncodeCache | undefined;
    while (queue.length > 0 && this.inflight.size < link.sendWindow) {
      const entry = queue.shift()!;
      if (!this.#readable(entry.seq, entry.message.topic)) {
        this.#forget(entry);
        continue;
      }
      this.#sendNew(link, entry, cache ??= new EncodeCache(now));
    }
    if (this.#queue !== queue) return;
    if (queue.length === 0) {
      this.#queue = undefined;
      if (this.inflight.size === 0) this.#recheckThrough = 0; // nothing held from before the change
    } else {
      queue.compact();
    }
  }

  /**
   * After (re)attaching: resends unacknowledged PUBLISH with DUP and PUBREL [MQTT-4.4.0-1 (5.0)], in order, then
   * queued QoS 0 and the queue.
   */
  resume(now: number): void {
    const link = this.link;
    if (link === undefined) return;
    this.#aliases = undefined;
    const inflight = this.#inflight;
    const qos0 = this.#qos0;
    if (inflight === undefined && qos0 === undefined && this.#queue === undefined) return; // a new session
    const cache = new EncodeCache(now);
    if (inflight !== undefined) {
      for (const entry of [...inflight.values()]) {
        if (entry.state === "released") {
          link.sendPubrel(entry.packetId);
        } else if (
          !this.#readable(entry.seq, entry.message.topic) ||
          // DUP only for a PUBLISH that went out before [MQTT-3.3.1-1 (5.0)].
          !this.#write(link, entry, this.#unwritten?.delete(entry.packetId) !== true, cache)
        ) {
          this.#complete(entry);
        }
      }
    }
    this.#qos0 = undefined;
    for (const { message, retain, subscriptionIds } of qos0 ?? []) {
      // Offline QoS 0 has no seq: while a recheck is pending, all of it is checked (seq 0 is always covered).
      if (this.#recheckThrough !== 0 && !this.#mayReceive!(this.identity, message.topic)) {
        this.#drop(DROP.notAuthorized);
        continue;
      }
      const written = writeQoS0(link, this.#aliasesOf(link), message, retain, subscriptionIds, cache);
      if (written !== WRITTEN) this.#drop(written);
    }
    this.pump(now);
  }

  /** PUBACK received. Returns false for an unknown packet id. */
  acknowledge(packetId: number, now: number): boolean {
    const entry = this.inflight.get(packetId);
    if (entry === undefined || entry.qos !== 1) return false;
    this.#complete(entry);
    this.#onDelivered?.(entry.message, 1);
    this.pump(now);
    return true;
  }

  /** PUBREC received: the message is delivered; send PUBREL. False for an unknown packet id. */
  received(packetId: number, reasonCode: number, now: number): boolean {
    const entry = this.inflight.get(packetId);
    if (entry === undefined || entry.qos !== 2) return false;
    if (reasonCode >= 0x80) {
      // The receiver refused it: the flow ends here (section 4.3.3).
      this.#complete(entry);
      this.pump(now);
      return true;
    }
    if (entry.state === "sent") {
      entry.state = "released";
      if (this.persistent) this.#persist(entry);
    }
    const store = this.#store;
    if (store === undefined || !this.persistent) {
      this.link?.sendPubrel(packetId);
      return true;
    }
    // PUBREL only once "released" is committed, as PUBACK waits for its commit: sent earlier, a crash would bring
    // the PUBLISH back with DUP to a client that already completed it, a second delivery (5.0 section 4.3.3).
    // Batches commit in order, so PUBRELs keep the order of their PUBRECs [MQTT-4.6.0-4 (5.0)].
    const link = this.link;
    store.settled().then(
      () => {
        if (link !== undefined && this.link === link && this.#inflight?.get(packetId) === entry) {
          link.sendPubrel(packetId);
        }
      },
      () => {}, // logged by the commit queue; the PUBREL goes out again when the client reconnects
    );
    return true;
  }

  /** PUBCOMP received. False for an unknown packet id. */
  completed(packetId: number, now: number): boolean {
    const entry = this.inflight.get(packetId);
    if (entry === undefined || entry.state !== "released") return false;
    this.#complete(entry);
    this.#onDelivered?.(entry.message, 2);
    this.pump(now);
    return true;
  }

  #complete(entry: Outgoing): void {
    this.#inflight?.delete(entry.packetId);
    this.#unwritten?.delete(entry.packetId);
    if (this.persistent) {
      this.#store?.add({ kind: "deleteOutgoing", clientId: this.clientId, seq: entry.seq });
    }
  }

  /** A queued message that will not be sent: gone from the store too. */
  #forget(entry: Outgoing): void {
    if (this.persistent) {
      this.#store?.add({ kind: "deleteOutgoing", clientId: this.clientId, seq: entry.seq });
    }
  }

  #persist(entry: Outgoing): void {
    this.#store?.add({ kind: "putOutgoing", clientId: this.clientId, entry: toStoredOutgoing(entry) });
  }

  /** Takes every undelivered QoS 1/2 message out (for shared-subscription redelivery when the session ends). */
  drain(): Outgoing[] {
    const out = [...this.inflight.values(), ...(this.#queue?.toArray() ?? [])];
    this.#inflight = undefined;
    this.#unwritten = undefined;
    this.#queue = undefined;
    return out;
  }

  /** Restores stored outgoing messages (at broker start). */
  restore(entries: readonly OutgoingMessage[], incoming: readonly number[]): void {
    for (const stored of entries) {
      const entry = fromStoredOutgoing(stored);
      this.#seq = Math.max(this.#seq, stored.seq);
      if (entry.state !== "queued" && entry.packetId > 0 && !this.inflight.has(entry.packetId)) {
        (this.#inflight ??= new Map()).set(entry.packetId, entry);
      } else {
        entry.state = "queued";
        entry.packetId = 0;
        (this.#queue ??= new OutgoingQueue()).push(entry);
      }
    }
    for (const id of incoming) this.addIncoming(id);
  }
}

const NO_INFLIGHT: ReadonlyMap<number, Outgoing> = new Map();
const NO_INCOMING: ReadonlySet<number> = new Set();
