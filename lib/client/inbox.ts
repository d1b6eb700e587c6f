/**
 * Where incoming messages wait for the application: async iterators, each for all topics or for some filters.
 * A QoS 1/2 message is acknowledged only once taken from an iterator, so a slow reader holds back the
 * acknowledgements and the server's inflight window (the client's Receive Maximum) becomes the buffer limit.
 *
 * @module
 */

import { MqttError } from "../mqtt_error.ts";
import type { Properties } from "../packet/properties.ts";
import type { QoS } from "../packet/packet_type.ts";
import { REASON_CODE } from "../packet/reason_code.ts";
import { matchesFilter, parseSharedFilter, validateTopicFilter } from "../topic/topic.ts";
import { Fifo } from "./_fifo.ts";

/** A message received from the server. */
export interface MqttMessage {
  /** The topic (a Topic Alias already resolved). */
  readonly topic: string;
  /** The payload bytes (the message's own copy). */
  readonly payload: Uint8Array;
  /** The QoS it was delivered with. */
  readonly qos: QoS;
  /** Set for a retained message sent because of a new subscription. */
  readonly retain: boolean;
  /** Set when the server says this may be a redelivery. */
  readonly dup: boolean;
  /** The packet identifier it arrived with (QoS 1/2), for display; the client acknowledges it. */
  readonly packetId?: number;
  /** v5 properties (without Topic Alias). */
  readonly properties?: Properties;
}

/** Options for {@linkcode Inbox.messages}. */
export interface MessagesOptions {
  /** Ends the iterator: a pending `next()` rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Options for {@linkcode Inbox}. */
export interface InboxOptions {
  /**
   * How many messages no iterator wanted are kept for an iterator opened later. Past it the oldest QoS 0 message
   * is dropped (QoS 1/2 messages are bounded by the server's inflight window and are never dropped).
   * @default {1000}
   */
  maxUnclaimed?: number;
}

/** One message on its way to the iterators that want it. */
interface Delivery {
  readonly message: MqttMessage;
  readonly seq: number;
  /** Iterators holding it and not yet past it. */
  holders: number;
  taken: boolean;
  readonly onTaken: (() => void) | undefined;
}

type InboxState = { kind: "open" } | { kind: "closed"; error: Error | undefined };

/**
 * Routes incoming messages to iterators and keeps the unclaimed ones.
 *
 * @example
 * ```ts
 * import { Inbox } from "./inbox.ts";
 * const inbox = new Inbox();
 * const iterator = inbox.messages(["a/#"]);
 * inbox.deliver({ topic: "a/b", payload: new Uint8Array(), qos: 0, retain: false, dup: false });
 * const first = await iterator.next();
 * console.assert(first.value?.topic === "a/b");
 * inbox.close();
 * ```
 */
export class Inbox {
  #streams = new Set<MessageStream>();
  #unclaimed: Delivery[] = [];
  #seq = 0;
  #dropped = 0;
  #maxUnclaimed: number;
  #state: InboxState = { kind: "open" };

  /** How the streams report back; not part of the public surface. */
  #hooks: StreamHooks = {
    taken: (delivery) => {
      delivery.taken = true;
      this.#release(delivery);
    },
    released: (stream, deliveries) => {
      this.#streams.delete(stream);
      for (const delivery of deliveries) this.#release(delivery);
    },
  };

  /** Creates an empty inbox. */
  constructor(options: InboxOptions = {}) {
    this.#maxUnclaimed = options.maxUnclaimed ?? 1000;
  }

  /** QoS 0 messages dropped because nobody read them. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Messages waiting for an iterator. */
  get unclaimed(): number {
    return this.#unclaimed.length;
  }

  /**
   * Hands `message` to every open iterator whose filters match it, or keeps it for a later one. `onTaken` runs
   * once every iterator holding it has taken it (or closed).
   */
  deliver(message: MqttMessage, onTaken?: () => void): void {
    if (this.#state.kind !== "open") return;
    const delivery: Delivery = { message, seq: this.#seq++, holders: 0, taken: false, onTaken };
    const matching: MessageStream[] = [];
    for (const stream of this.#streams) if (stream.matches(message.topic)) matching.push(stream);
    if (matching.length === 0) {
      this.#park(delivery);
      return;
    }
    // Count every holder before the first push: a waiting reader takes it at once.
    delivery.holders = matching.length;
    for (const stream of matching) stream.push(delivery);
  }

  /**
   * An iterator over incoming messages: all of them, or those matching one of `filters`. Messages that arrived
   * before with no iterator to take them come first.
   * @throws {MqttError} Topic Filter invalid (0x8F) for a bad filter.
   */
  messages(filters?: readonly string[], options: MessagesOptions = {}): AsyncIterableIterator<MqttMessage> {
    const matchers = filters?.map(toMatcher);
    const stream = new MessageStream(matchers, this.#hooks, options.signal);
    if (this.#state.kind === "closed") {
      stream.end(this.#state.error);
      return stream;
    }
    const keep: Delivery[] = [];
    for (const delivery of this.#unclaimed) {
      if (stream.matches(delivery.message.topic)) {
        delivery.holders++;
        stream.push(delivery);
      } else {
        keep.push(delivery);
      }
    }
    this.#unclaimed = keep;
    this.#streams.add(stream);
    return stream;
  }

  /** Ends every iterator (after what it already holds); `error` makes them throw instead of finishing. */
  close(error?: Error): void {
    if (this.#state.kind === "closed") return;
    this.#state = { kind: "closed", error };
    for (const stream of this.#streams) stream.end(error);
    this.#streams.clear();
    this.#unclaimed = [];
  }

  #release(delivery: Delivery): void {
    delivery.holders--;
    if (delivery.holders > 0) return;
    if (delivery.taken) delivery.onTaken?.();
    else if (this.#state.kind === "open") this.#park(delivery);
  }

  /** Keeps an unclaimed delivery in arrival order, within the limit. */
  #park(delivery: Delivery): void {
    const list = this.#unclaimed;
    let index = list.length;
    while (index > 0 && list[index - 1]!.seq > delivery.seq) index--;
    list.splice(index, 0, delivery);
    if (list.length <= this.#maxUnclaimed) return;
    const oldestQoS0 = list.findIndex((d) => d.message.qos === 0);
    if (oldestQoS0 >= 0) {
      list.splice(oldestQoS0, 1);
      this.#dropped++;
    }
  }
}

type Matcher = (topic: string) => boolean;

interface StreamHooks {
  /** A stream handed `delivery` to its reader. */
  taken(delivery: Delivery): void;
  /** A stream closed while holding `deliveries`. */
  released(stream: MessageStream, deliveries: readonly Delivery[]): void;
}

function toMatcher(filter: string): Matcher {
  validateTopicFilter(filter);
  const shared = parseSharedFilter(filter);
  const plain = shared === undefined ? filter : shared.filter;
  return (topic) => matchesFilter(plain, topic);
}

/** One iterator of {@linkcode Inbox.messages}. */
class MessageStream implements AsyncIterableIterator<MqttMessage> {
  #matchers: readonly Matcher[] | undefined;
  #inbox: StreamHooks;
  #queue = new Fifo<Delivery>();
  #waiter:
    | { resolve: (result: IteratorResult<MqttMessage>) => void; reject: (error: unknown) => void }
    | undefined;
  #state: { kind: "open" } | { kind: "ending"; error: Error | undefined } | { kind: "done" } = {
    kind: "open",
  };
  #signal: AbortSignal | undefined;
  #onAbort = (): void => this.#abort();

  constructor(matchers: readonly Matcher[] | undefined, inbox: StreamHooks, signal: AbortSignal | undefined) {
    this.#matchers = matchers;
    this.#inbox = inbox;
    this.#signal = signal;
    if (signal?.aborted) {
      this.#state = { kind: "ending", error: abortReason(signal) };
    } else {
      signal?.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  matches(topic: string): boolean {
    if (this.#state.kind !== "open") return false;
    return this.#matchers === undefined || this.#matchers.some((match) => match(topic));
  }

  push(delivery: Delivery): void {
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      this.#inbox.taken(delivery);
      waiter.resolve({ value: delivery.message, done: false });
      return;
    }
    this.#queue.push(delivery);
  }

  /** No more messages will come; queued ones are still handed out, then the stream ends (throwing `error`). */
  end(error: Error | undefined): void {
    if (this.#state.kind !== "open") return;
    this.#state = { kind: "ending", error };
    this.#signal?.removeEventListener("abort", this.#onAbort);
    if (this.#queue.length === 0) this.#settleWaiter();
  }

  next(): Promise<IteratorResult<MqttMessage>> {
    const delivery = this.#queue.shift();
    if (delivery !== undefined) {
      this.#inbox.taken(delivery);
      return Promise.resolve({ value: delivery.message, done: false });
    }
    const state = this.#state;
    switch (state.kind) {
      case "done":
        return Promise.resolve({ value: undefined, done: true });
      case "ending":
        this.#state = { kind: "done" };
        return state.error === undefined
          ? Promise.resolve({ value: undefined, done: true })
          : Promise.reject(state.error);
      case "open":
        if (this.#waiter !== undefined) {
          return Promise.reject(new Error("next() called while another is pending"));
        }
        return new Promise((resolve, reject) => this.#waiter = { resolve, reject });
    }
  }

  return(): Promise<IteratorResult<MqttMessage>> {
    this.#close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<MqttMessage> {
    return this;
  }

  #abort(): void {
    if (this.#state.kind !== "open") return;
    const error = abortReason(this.#signal!);
    this.#release();
    this.#state = { kind: "ending", error };
    this.#settleWaiter();
  }

  #close(): void {
    if (this.#state.kind === "done") return;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#release();
    this.#state = { kind: "done" };
    this.#settleWaiter();
  }

  /** Gives back what this stream holds and was not taken. */
  #release(): void {
    this.#inbox.released(this, this.#queue.drain());
  }

  #settleWaiter(): void {
    const waiter = this.#waiter;
    if (waiter === undefined) return;
    this.#waiter = undefined;
    const state = this.#state;
    if (state.kind === "ending" && state.error !== undefined) {
      this.#state = { kind: "done" };
      waiter.reject(state.error);
    } else {
      this.#state = { kind: "done" };
      waiter.resolve({ value: undefined, done: true });
    }
  }
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new MqttError(REASON_CODE.UnspecifiedError, String(reason));
}
