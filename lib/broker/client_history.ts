/**
 * "Why did this client go?": the last lifecycle events of each client id (connected, disconnected and why,
 * refused and why, kicked, takeover) and a broker-wide ring of the latest, fed by the event hub (`events.ts`).
 * Bounded three ways: events per client, client ids kept, and the ring. Client ids live in two generations, the
 * ones heard of lately and the ones before: when the first fills (half the bound), the older generation is dropped
 * whole. That keeps the ids active lately at O(1) per event; an exact LRU's eviction from the front of a `Map`
 * cost 10 µs per connect with one-off client ids (V8 walks the deleted entries).
 *
 * @module
 */

import type { BrokerEvents, ClientEvent } from "./events.ts";

/** What {@linkcode ClientHistory} keeps. */
export interface ClientHistoryOptions {
  /** Events kept per client id. @default {20} */
  readonly perClient?: number;
  /** Client ids kept, at most; those not heard of for longest go first. @default {10000} */
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
  /** Ids per generation: half the bound. */
  readonly #generation: number;
  /** Per client id heard of lately, its events, oldest first. */
  #young = new Map<string, ClientEvent[]>();
  /** The generation before: an id heard of again moves to {@linkcode ClientHistory.#young}. */
  #old = new Map<string, ClientEvent[]>();
  readonly #ring: (ClientEvent | undefined)[];
  #next = 0;
  #size = 0;
  readonly #off: () => void;

  /** Starts recording what `events` emits. */
  constructor(events: BrokerEvents, options: ClientHistoryOptions = {}) {
    this.#perClient = positive(options.perClient ?? 20, "perClient");
    this.#generation = Math.max(1, Math.floor(positive(options.clients ?? 10_000, "clients") / 2));
    this.#ring = new Array(positive(options.recent ?? 1000, "recent"));
    this.#off = events.on((event) => this.record(event));
  }

  /** Client ids with a history. */
  get clientCount(): number {
    return this.#young.size + this.#old.size;
  }

  /** Adds one event (the hub calls this). */
  record(event: ClientEvent): void {
    const ring = this.#ring;
    ring[this.#next] = event;
    this.#next = (this.#next + 1) % ring.length;
    if (this.#size < ring.length) this.#size++;
    const id = event.clientId;
    if (id === "") return; // refused before CONNECT was read: in the ring only
    let list = this.#young.get(id);
    if (list === undefined) {
      list = this.#old.get(id);
      if (list !== undefined) this.#old.delete(id);
      else list = [];
      if (this.#young.size >= this.#generation) {
        this.#old = this.#young; // the generation before goes whole
        this.#young = new Map();
      }
      this.#young.set(id, list);
    }
    list.push(event);
    if (list.length > this.#perClient) list.shift();
  }

  /** The last events of `clientId`, oldest first (empty when it has none or was dropped). */
  of(clientId: string): readonly ClientEvent[] {
    return (this.#young.get(clientId) ?? this.#old.get(clientId))?.slice() ?? [];
  }

  /** The last event of `clientId` that says why it went (disconnected or refused), if any. */
  lastEnd(clientId: string): ClientEvent | undefined {
    const list = this.#young.get(clientId) ?? this.#old.get(clientId);
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
