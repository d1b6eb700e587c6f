/**
 * The broker as an operator sees it: a read-only view of clients, sessions, subscriptions, the topic tree and
 * retained messages, and the few actions an administrator takes (kick, discard a session, add or remove a
 * subscription, delete a retained message). The admin API (`lib/admin/api/`) is its one user; everything here runs
 * on request, never on a message's path.
 *
 * @module
 */

import type { ProtocolVersion, QoS } from "../packet/packet_type.ts";
import { REASON_CODE } from "../packet/reason_code.ts";
import { parseSharedFilter } from "../topic/topic.ts";
import type { Subscription } from "../topic/router.ts";
import type { Authorizer } from "./auth/auth.ts";
import type { Connection } from "./connection.ts";
import type { BrokerContext } from "./context.ts";
import { printable } from "./logger.ts";
import type { Session } from "./session.ts";
import type { Message } from "./storage/persistence.ts";
import { pageOf, parseCursor, topK } from "./_paging.ts";

/** The protocol names the API shows. */
export type ProtocolName = "3.1" | "3.1.1" | "5.0";

/** One client (a session, connected or not). */
export interface ClientSummary {
  readonly clientId: string;
  readonly username: string | null;
  readonly connected: boolean;
  readonly remoteAddress: string | null;
  readonly protocol: ProtocolName;
  /** Seconds; null while offline. */
  readonly keepAlive: number | null;
  /** Session Expiry Interval, seconds (4294967295: never). */
  readonly sessionExpiry: number;
  /** ms since the epoch; null while connected. */
  readonly disconnectedAt: number | null;
  readonly subscriptions: number;
  readonly inflight: number;
  /** The client's Receive Maximum (capped by the broker's); null while offline. */
  readonly inflightMax: number | null;
  readonly queued: number;
  readonly queuedBytes: number;
  readonly queueMax: number;
  readonly dropped: number;
  /** Bytes accepted for the client and not yet written. */
  readonly outputBytes: number;
  readonly congested: boolean;
}

/** A subscription as the API shows it. */
export interface SubscriptionView {
  readonly clientId: string;
  readonly filter: string;
  readonly qos: QoS;
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  readonly retainHandling: 0 | 1 | 2;
  readonly identifier: number | null;
  readonly shareGroup: string | null;
}

/** What {@linkcode BrokerInspector.client} adds to the summary. */
export interface ClientDetail extends ClientSummary {
  readonly subscriptionList: readonly SubscriptionView[];
  readonly will: { topic: string; qos: QoS; retain: boolean; delaySeconds: number } | null;
}

/** Sort orders of {@linkcode BrokerInspector.clients}. */
export const CLIENT_SORTS = ["clientId", "queued", "dropped", "inflight", "queuedBytes"] as const;

/** A sort order. */
export type ClientSort = (typeof CLIENT_SORTS)[number];

/** A query for {@linkcode BrokerInspector.clients}. */
export interface ClientQuery {
  /** Only connected or only offline sessions. */
  readonly state?: "connected" | "offline";
  /** Client ids starting with this. */
  readonly prefix?: string;
  /** Exactly this user name. */
  readonly username?: string;
  /** @default {"clientId"} (ascending); the others list the largest first. */
  readonly sort?: ClientSort;
  /** Page size. */
  readonly limit: number;
  /** The `next` of the previous page. */
  readonly after?: string;
}

/** A page of results. */
export interface Page<T> {
  readonly data: T[];
  readonly meta: { count: number; total: number; limit: number; next: string | null };
}

/** One level of the topic tree. */
export interface TopicLevel {
  readonly path: string;
  readonly children: {
    level: string;
    path: string;
    subscriptions: number;
    retained: boolean;
    descendants: number;
  }[];
}

/** A retained message in a listing (payload cut to the preview). */
export interface RetainedView {
  readonly topic: string;
  readonly qos: QoS;
  readonly bytes: number;
  readonly payload: string;
  readonly encoding: "utf8" | "base64";
  readonly expiresAt: number | null;
}

/** Outgoing messages of a session, metadata only. */
export interface QueuePeek {
  readonly inflight: { packetId: number; topic: string; qos: QoS; bytes: number; state: string }[];
  readonly queued: { topic: string; qos: QoS; bytes: number }[];
}

const PROTOCOLS: Record<ProtocolVersion, ProtocolName> = { 3: "3.1", 4: "3.1.1", 5: "5.0" };
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The payload as UTF-8 text when it is that, else base64; cut to `max` bytes (0: whole). */
export function payloadText(payload: Uint8Array, max = 0): { payload: string; encoding: "utf8" | "base64" } {
  const bytes = max > 0 && payload.length > max ? payload.subarray(0, max) : payload;
  try {
    return { payload: utf8.decode(bytes), encoding: "utf8" };
  } catch {
    // A cut may split a character: a preview that is text but for its tail still shows as text.
    if (bytes !== payload) {
      for (let cut = 1; cut <= 3 && cut < bytes.length; cut++) {
        try {
          return { payload: utf8.decode(bytes.subarray(0, bytes.length - cut)), encoding: "utf8" };
        } catch { /* try a shorter cut */ }
      }
    }
    return { payload: btoa(String.fromCharCode(...bytes)), encoding: "base64" };
  }
}

/** The read-only view and the admin actions; made by `Broker.inspect`. */
export class BrokerInspector {
  readonly #core: BrokerContext;
  readonly #connections: ReadonlySet<Connection>;

  /** A view of `core`; `connections` is the broker's registry of open connections. */
  constructor(core: BrokerContext, connections: ReadonlySet<Connection>) {
    this.#core = core;
    this.#connections = connections;
  }

  /** Open connections (MQTT handshake done or not). */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Why storage is unhealthy (its latest commit failed), or undefined when it is fine or there is none. */
  get storageProblem(): string | undefined {
    return this.#core.store?.lastCommitFailed === true ? "storage: the latest commit failed" : undefined;
  }

  /** What stores the broker's state, e.g. `sqlite:/var/lib/mqtt/broker.db`; undefined in memory only. */
  get persistenceName(): string | undefined {
    return this.#core.persistence?.name;
  }

  /** The authorizer in force now (a reload may have swapped it). */
  get authorizer(): Authorizer {
    return this.#core.authorizer;
  }

  /** Every session. */
  sessions(): IterableIterator<Session> {
    return this.#core.sessions.values();
  }

  /** A session by client id. */
  session(clientId: string): Session | undefined {
    return this.#core.sessions.get(clientId);
  }

  /** One client's summary. */
  summary(session: Session): ClientSummary {
    const link = session.link as Connection | undefined;
    const options = this.#core.options;
    return {
      clientId: session.clientId,
      username: session.identity.username ?? null,
      connected: link !== undefined,
      remoteAddress: link?.info.remoteAddress ?? null,
      protocol: PROTOCOLS[session.protocolVersion],
      keepAlive: link?.keepAlive ?? null,
      sessionExpiry: session.expiryInterval,
      disconnectedAt: session.disconnectedAt ?? null,
      subscriptions: this.#core.router.subscriptionCount(session.clientId),
      inflight: session.inflight.size,
      inflightMax: link?.sendWindow ?? null,
      queued: session.queued,
      queuedBytes: session.queuedBytes,
      queueMax: options.maxQueued,
      dropped: session.dropped,
      outputBytes: link?.pendingOutput ?? 0,
      congested: link?.congested ?? false,
    };
  }

  /**
   * A page of clients. Sorted by client id the cursor is the last id; by a count, the page is the top of a
   * bounded selection (one pass over the sessions, no full sort) and the cursor is the last `count:id`.
   */
  clients(query: ClientQuery): Page<ClientSummary> {
    const sort = query.sort ?? "clientId";
    const matches: Session[] = [];
    for (const session of this.#core.sessions.values()) {
      if (query.state !== undefined && (session.link !== undefined) !== (query.state === "connected")) {
        continue;
      }
      if (query.prefix !== undefined && !session.clientId.startsWith(query.prefix)) continue;
      if (query.username !== undefined && session.identity.username !== query.username) continue;
      matches.push(session);
    }
    const total = matches.length;
    let page: Session[];
    if (sort === "clientId") {
      const after = query.after;
      page = topK(
        after === undefined ? matches : matches.filter((s) => s.clientId > after),
        query.limit + 1,
        (a, b) => a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0,
      );
    } else {
      const value = (s: Session): number => sortValue(s, sort);
      const cursor = parseCursor(query.after);
      const order = (a: Session, b: Session): number =>
        value(b) - value(a) || (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0);
      const rest = cursor === undefined ? matches : matches.filter((s) => {
        const v = value(s);
        return v < cursor.value || (v === cursor.value && s.clientId > cursor.id);
      });
      page = topK(rest, query.limit + 1, order);
    }
    const more = page.length > query.limit;
    if (more) page.length = query.limit;
    const last = page.at(-1);
    const next = !more || last === undefined
      ? null
      : sort === "clientId"
      ? last.clientId
      : `${sortValue(last, sort)}:${last.clientId}`;
    return {
      data: page.map((s) => this.summary(s)),
      meta: { count: page.length, total, limit: query.limit, next },
    };
  }

  /** One client with its subscriptions and will; undefined when there is no such session. */
  client(clientId: string): ClientDetail | undefined {
    const session = this.#core.sessions.get(clientId);
    if (session === undefined) return undefined;
    const link = session.link as Connection | undefined;
    const will = link?.will;
    return {
      ...this.summary(session),
      subscriptionList: this.#core.router.subscriptionsOf(clientId).map((s) => subscriptionView(clientId, s)),
      will: will === undefined ? null : {
        topic: will.topic,
        qos: will.qos,
        retain: will.retain,
        delaySeconds: will.properties?.willDelayInterval ?? 0,
      },
    };
  }

  /** The first `limit` messages in flight and queued for a client; undefined when there is no such session. */
  queue(clientId: string, limit: number): QueuePeek | undefined {
    const session = this.#core.sessions.get(clientId);
    if (session === undefined) return undefined;
    const inflight: QueuePeek["inflight"] = [];
    for (const entry of session.inflight.values()) {
      if (inflight.length >= limit) break;
      inflight.push({
        packetId: entry.packetId,
        topic: entry.message.topic,
        qos: entry.qos,
        bytes: entry.message.payload.length,
        state: entry.state,
      });
    }
    const queued = session.peekQueued(limit).map((entry) => ({
      topic: entry.message.topic,
      qos: entry.qos,
      bytes: entry.message.payload.length,
    }));
    return { inflight, queued };
  }

  /**
   * Disconnects a client as an administrator: v5 gets DISCONNECT 0x98 Administrative action, v3 is closed; its
   * will is published as for any server close. With `discard` its session ends too (its will goes out at once).
   * False when there is no such session.
   */
  kick(clientId: string, discard: boolean): boolean {
    const session = this.#core.sessions.get(clientId);
    if (session === undefined) return false;
    const link = session.link as Connection | undefined;
    this.#core.logger.info(
      `client ${printable(clientId)} kicked by an administrator${discard ? " (session discarded)" : ""}`,
    );
    if (link !== undefined) {
      link.disconnect(REASON_CODE.AdministrativeAction, "disconnected by an administrator");
    }
    if (discard) this.#core.sessions.discard(clientId, "discarded by an administrator");
    return true;
  }

  /**
   * Adds or replaces a subscription of a session, as its own SUBSCRIBE would (retained messages are not sent).
   * False when there is no such session.
   *
   * @throws {import("../mqtt_error.ts").MqttError} Topic Filter invalid (0x8F) for a malformed filter.
   */
  subscribe(clientId: string, subscription: Subscription): boolean {
    const session = this.#core.sessions.get(clientId);
    if (session === undefined) return false;
    this.#core.router.subscribe(clientId, subscription);
    this.#core.sessions.changed(session);
    return true;
  }

  /** Removes a subscription; false when the session or the subscription does not exist. */
  unsubscribe(clientId: string, filter: string): boolean {
    const session = this.#core.sessions.get(clientId);
    if (session === undefined || !this.#core.router.unsubscribe(clientId, filter)) return false;
    this.#core.sessions.changed(session);
    return true;
  }

  /** Every subscription, optionally of one client, by filter prefix and share group, paged by `clientId\0filter`. */
  subscriptions(
    query: { filter?: string; clientId?: string; share?: string; limit: number; after?: string },
  ): Page<SubscriptionView> {
    const out: SubscriptionView[] = [];
    const ids = query.clientId === undefined
      ? [...this.#core.sessions.values()].map((s) => s.clientId)
      : [query.clientId];
    for (const clientId of ids) {
      for (const s of this.#core.router.subscriptionsOf(clientId)) {
        const view = subscriptionView(clientId, s);
        if (query.filter !== undefined && !s.filter.startsWith(query.filter)) continue;
        if (query.share !== undefined && view.shareGroup !== query.share) continue;
        out.push(view);
      }
    }
    const key = (v: SubscriptionView) => `${v.clientId}\0${v.filter}`;
    out.sort((a, b) => key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
    const after = query.after;
    const rest = after === undefined ? out : out.filter((v) => key(v) > after);
    return pageOf(rest, out.length, query.limit, key);
  }

  /**
   * One level of the topic tree under `path` ("" for the top): each child level with the subscriptions whose
   * filter is exactly there, whether a retained message is there, and how many filters and retained topics lie
   * below. Built from the sessions' subscriptions and the retained store on each request.
   */
  topicLevel(path: string): TopicLevel {
    const children = new Map<string, TopicLevel["children"][number]>();
    const depth = path === "" ? 0 : path.split("/").length;
    const under = path === "" ? "" : `${path}/`;
    const child = (name: string) => {
      let entry = children.get(name);
      if (entry === undefined) {
        entry = { level: name, path: under + name, subscriptions: 0, retained: false, descendants: 0 };
        children.set(name, entry);
      }
      return entry;
    };
    const visit = (topic: string, exact: (entry: TopicLevel["children"][number]) => void) => {
      if (!topic.startsWith(under)) return;
      const levels = topic.split("/");
      if (levels.length <= depth) return;
      const entry = child(levels[depth]!);
      if (levels.length === depth + 1) exact(entry);
      else entry.descendants++;
    };
    for (const session of this.#core.sessions.values()) {
      for (const s of this.#core.router.subscriptionsOf(session.clientId)) {
        visit(parseSharedFilter(s.filter)?.filter ?? s.filter, (e) => e.subscriptions++);
      }
    }
    for (const message of this.#core.retained.all()) visit(message.topic, (e) => e.retained = true);
    const sorted = [...children.values()].sort((a, b) => a.level < b.level ? -1 : a.level > b.level ? 1 : 0);
    return { path, children: sorted };
  }

  /** Retained messages whose topic starts with `prefix`, by topic, payloads cut to `preview` bytes. */
  retainedPage(
    query: { prefix?: string; limit: number; after?: string; preview: number },
  ): Page<RetainedView> & { meta: { totalBytes: number } } {
    const prefix = query.prefix ?? "";
    const all: Message[] = [];
    let totalBytes = 0;
    for (const message of this.#core.retained.all()) {
      if (!message.topic.startsWith(prefix)) continue;
      all.push(message);
      totalBytes += message.payload.length;
    }
    const after = query.after;
    const rest = topK(
      after === undefined ? all : all.filter((m) => m.topic > after),
      query.limit + 1,
      (a, b) => a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0,
    );
    const page = pageOf(
      rest.map((m) => retainedView(m, query.preview)),
      all.length,
      query.limit,
      (v) => v.topic,
    );
    return { data: page.data, meta: { ...page.meta, totalBytes } };
  }

  /** One retained message, whole. */
  retained(topic: string): RetainedView | undefined {
    const message = this.#core.retained.get(topic);
    return message === undefined ? undefined : retainedView(message, 0);
  }

  /** Deletes a retained message, persisted as an empty retained PUBLISH would be; false when there was none. */
  deleteRetained(topic: string): boolean {
    if (!this.#core.retained.delete(topic)) return false;
    if (!topic.startsWith("$SYS/")) this.#core.store?.add({ kind: "deleteRetained", topic });
    return true;
  }
}

function subscriptionView(clientId: string, s: Subscription): SubscriptionView {
  return {
    clientId,
    filter: s.filter,
    qos: s.qos,
    noLocal: s.noLocal,
    retainAsPublished: s.retainAsPublished,
    retainHandling: s.retainHandling,
    identifier: s.subscriptionId ?? null,
    shareGroup: parseSharedFilter(s.filter)?.group ?? null,
  };
}

function retainedView(message: Message, preview: number): RetainedView {
  return {
    topic: message.topic,
    qos: message.qos,
    bytes: message.payload.length,
    ...payloadText(message.payload, preview),
    expiresAt: message.expiresAt ?? null,
  };
}

function sortValue(session: Session, sort: Exclude<ClientSort, "clientId">): number {
  switch (sort) {
    case "queued":
      return session.queued;
    case "queuedBytes":
      return session.queuedBytes;
    case "dropped":
      return session.dropped;
    case "inflight":
      return session.inflight.size;
  }
}
