/**
 * The retained messages a SUBSCRIBE owes a client, sent as fast as the client takes them. A subscription to `#`
 * may match more retained messages than the connection's output limit or the session's queue holds; sent all
 * at once, the QoS 0 ones past the output limit and the QoS 1/2 ones past the queue would be dropped. The
 * backlog instead sends while the output is under its limit and the session's queue has room, and continues
 * when the output drains or an acknowledgement frees the window.
 *
 * A message is sent only if it is still the topic's retained message when its turn comes: one replaced or
 * deleted meanwhile is skipped, because the subscription, which exists since the SUBSCRIBE, carried the newer
 * message live (a client must not end on an older state than the topic's).
 *
 * @module
 */

import type { QoS } from "../packet/packet_type.ts";
import type { Message } from "./persistence.ts";

/** One retained message owed, at the QoS it goes out with. */
export interface RetainedItem {
  readonly message: Message;
  readonly qos: QoS;
  /** The SUBSCRIBE's Subscription Identifier, if any (v5). */
  readonly subscriptionIds: readonly number[] | undefined;
}

/** What the backlog needs from its connection. */
export interface RetainedHost {
  /** The connection has closed: what is left is handed to {@linkcode RetainedHost.abandon}. */
  readonly closed: boolean;
  /** Unwritten output is over the limit: QoS 0 would be dropped. */
  readonly congested: boolean;
  /** The session's queue has no room for another QoS 1/2 message without dropping. */
  readonly queueFull: boolean;
  /** Resolves when the unwritten output has been written. */
  drained(): Promise<void>;
  /** The topic's retained message now. */
  current(topic: string): Message | undefined;
  /** Sends one item (checks expiry and authorization). */
  send(item: RetainedItem): void;
}

/** See the module documentation. */
export class RetainedBacklog {
  readonly #host: RetainedHost;
  #items: RetainedItem[] = [];
  #head = 0;
  /** A drain wait is pending: pump() is called when it ends. */
  #awaitingDrain = false;

  constructor(host: RetainedHost) {
    this.#host = host;
  }

  /** Messages still owed. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Adds a SUBSCRIBE's retained messages behind those still owed, and sends what can go now. */
  add(items: readonly RetainedItem[]): void {
    for (const item of items) this.#items.push(item);
    this.pump();
  }

  /**
   * Sends owed messages until the output is congested or the queue is full; then waits for the output to
   * drain, or for the connection to call again after an acknowledgement. Returns whether nothing is owed.
   */
  pump(): boolean {
    const host = this.#host;
    while (this.#head < this.#items.length) {
      if (host.closed) return false;
      const item = this.#items[this.#head]!;
      if (host.congested) {
        this.#waitForDrain();
        return false;
      }
      if (item.qos > 0 && host.queueFull) return false; // an acknowledgement calls pump() again
      this.#head++;
      if (host.current(item.message.topic) === item.message) host.send(item);
    }
    this.#items = [];
    this.#head = 0;
    return true;
  }

  /** The connection closed: the QoS 1/2 messages still owed, and still current, for the session's queue. */
  abandon(): RetainedItem[] {
    const left = this.#items.slice(this.#head).filter((item) =>
      item.qos > 0 && this.#host.current(item.message.topic) === item.message
    );
    this.#items = [];
    this.#head = 0;
    return left;
  }

  #waitForDrain(): void {
    if (this.#awaitingDrain) return;
    this.#awaitingDrain = true;
    this.#host.drained().then(() => {
      this.#awaitingDrain = false;
      this.pump();
    });
  }
}
