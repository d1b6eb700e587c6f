/**
 * "Why did this client go?": the last lifecycle events of each client id (connected, disconnected and why,
 * refused and why, kicked, takeover) and a broker-wide ring of the latest, fed by the event hub (`events.ts`).
 * Bounded three ways: events per client, client ids kept (least recently active dropped first), and the ring.
 *
 * @module
 */

import type { BrokerEvents, ClientEvent } from "./events.ts";

/** What {@linkcode ClientHistory} keeps. */
export interface ClientHistoryOptions {
  /** Events kept per client id. @default {20} */
  readonly perClient?: number;
  /** Client ids kept; the one least recently heard of goes first. @default {10000} */
  readonly clients?: number;
  /** Events kept in the broker-wide ring. @default {1000} */
  readonly recent?: number;
}

/** A search of the broker-wide ring ({@linkcode ClientHistory.recent}). */
export interface ClientHistoryQuery {
  /** Only events whose client id contains this text. */
  readonly clientId?: string;
  /** Only events of this kind. */
  readonly event?: ClientEvent["event"];
  /** Only events with this reason (`keepalive`, `auth`, ...). */
  readonly reason?: string;
  /** Only events after this time, epoch ms. */
  readonly since?: number;
  /** At most this many, the newest. */
  readonly limit?: number;
}

/**
 * The history. It listens from construction until {@linkcode ClientHistory.close}.
 *
 * @example
 * ```ts
 * import { BrokerEvents } from "./events.ts";
 * import { ClientHistory } from "./client_history.ts";
 * const events = new BrokerEvents();
 * const history = new ClientHistory(events);
 * events.emit({ event: "disconnected", clientId: "a", remote: "10.0.0.5:1", reason: "keepalive", at: 1 });
 * console.assert(history.of("a")[0]!.reason === "keepalive");
 * history.close();
 * ```
 */
export class ClientHistory {
  readonly #perClient: number;
  readonly #clients: number;
  /** Per client id, oldest event first; the Map's order is the order ids were last heard of. */
  readonly #byClient = new Map<string, ClientEvent[]>();
  readonly #ring: (ClientEvent | undefined)[];
  #next = 0;
  #size = 0;
  readonly #off: () => void;

  /** Starts recording what `events` emits. */
  constructor(events: BrokerEvents, options: ClientHistoryOptions = {}) {
    this.#perClient = positive(options.perClient ?? 20, "perClient");
    this.#clients = positive(options.clients ?? 10_000, "clients");
    this.#ring = new Array(positive(options.recent ?? 1000, "recent"));
    this.#off = events.on((event) => this.record(event));
  }

  /** Client ids with a history. */
  get clientCount(): number {
    return this.#byClient.size;
  }

  /** Adds one event (the hub calls this). */
  record(event: ClientEvent): void {
    const ring = this.#ring;
    ring[this.#next] = event;
    this.#next = (this.#next + 1) % ring.length;
    if (this.#size < ring.length) this.#size++;
    const id = event.clientId;
    if (id === "") return; // refused before CONNECT was read: in the ring only
    let list = this.#byClient.get(id);
    if (list === undefined) {
      if (this.#byClient.size >= this.#clients) {
        const oldest = this.#byClient.keys().next().value;
        if (oldest !== undefined) this.#byClient.delete(oldest);
      }
      list = [];
    } else {
      this.#byClient.delete(id); // set again below: now the most recently heard of
    }
    this.#byClient.set(id, list);
    list.push(event);
    if (list.length > this.#perClient) list.shift();
  }

  /** The last events of `clientId`, oldest first (empty when it has none or was dropped). */
  of(clientId: string): readonly ClientEvent[] {
    return this.#byClient.get(clientId)?.slice() ?? [];
  }

  /** The last event of `clientId` that says why it went (disconnected or refused), if any. */
  lastEnd(clientId: string): ClientEvent | undefined {
    const list = this.#byClient.get(clientId);
    if (list === undefined) return undefined;
    for (let i = list.length - 1; i >= 0; i--) {
      const e = list[i]!;
      if (e.event === "disconnected" || e.event === "refused") return e;
    }
    return undefined;
  }

  /** The broker-wide ring, oldest first, filtered by `query`. */
  recent(query: ClientHistoryQuery = {}): ClientEvent[] {
    const ring = this.#ring;
    const out: ClientEvent[] = [];
    const start = (this.#next - this.#size + ring.length) % ring.length;
    for (let i = 0; i < this.#size; i++) {
      const e = ring[(start + i) % ring.length]!;
      if (query.clientId !== undefined && !e.clientId.includes(query.clientId)) continue;
      if (query.event !== undefined && e.event !== query.event) continue;
      if (query.reason !== undefined && e.reason !== query.reason) continue;
      if (query.since !== undefined && e.at <= query.since) continue;
      out.push(e);
    }
    const limit = query.limit;
    return limit !== undefined && out.length > limit ? out.slice(out.length - limit) : out;
  }

  /** Stops recording (what is kept stays readable). */
  close(): void {
    this.#off();
  }
}

function positive(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${what} must be a positive integer, got ${n}`);
  return n;
}
