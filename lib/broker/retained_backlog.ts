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
 * The backlog holds references to the retained messages (8 bytes each), never copies; the connection caps it
 * at one copy of the store plus 1,000, so that a client re-subscribing without taking what it is owed cannot
 * make it grow without end.
 *
 * @module
 */

import type { QoS } from "../packet/packet_type.ts";
import type { Message } from "./storage/persistence.ts";

/** The retained messages one subscription of a SUBSCRIBE owes, in the order they go out. */
export interface RetainedBatch {
  /** The messages (as `RetainedStore.match` returned them; not copied). */
  readonly messages: readonly Message[];
  /** The subscription's granted QoS: each message goes at the lower of it and its own. */
  readonly qos: QoS;
  /** The SUBSCRIBE's Subscription Identifier, if any (v5). */
  readonly subscriptionIds: readonly number[] | undefined;
}

/** What the backlog needs from its connection. */
export interface RetainedHost {
  /** The connection has closed: what is left is handed to {@linkcode RetainedBacklog.abandon}. */
  isClosed(): boolean;
  /** Unwritten output is over the limit: QoS 0 would be dropped. */
  isCongested(): boolean;
  /** The session's queue has no room for another QoS 1/2 message without dropping. */
  isQueueFull(): boolean;
  /** Resolves when the unwritten output has been written. */
  drained(): Promise<void>;
  /** The topic's retained message now. */
  current(topic: string): Message | undefined;
  /** Sends one message at `qos` (checks expiry and authorization). */
  send(message: Message, qos: QoS, subscriptionIds: readonly number[] | undefined): void;
}

/** See the module documentation. */
export class RetainedBacklog {
  readonly #host: RetainedHost;
  #batches: RetainedBatch[] = [];
  /** Index into the first batch's messages. */
  #next = 0;
  #size = 0;
  /** A drain wait is pending: pump() is called when it ends. */
  #awaitingDrain = false;

  constructor(host: RetainedHost) {
    this.#host = host;
  }

  /** Messages still owed. */
  get size(): number {
    return this.#size;
  }

  /** Adds a subscription's retained messages behind those still owed (call {@linkcode pump} after). */
  add(batch: RetainedBatch): void {
    if (batch.messages.length === 0) return;
    this.#batches.push(batch);
    this.#size += batch.messages.length;
  }

  /**
   * Sends owed messages until the output is congested or the queue is full; then waits for the output to
   * drain, or for the connection to call again after an acknowledgement. Returns whether nothing is owed.
   */
  pump(): boolean {
    const host = this.#host;
    while (this.#batches.length > 0) {
      const batch = this.#batches[0]!;
      while (this.#next < batch.messages.length) {
        if (host.isClosed()) return false;
        if (host.isCongested()) {
          this.#waitForDrain();
          return false;
        }
        const message = batch.messages[this.#next]!;
        const qos = Math.min(message.qos, batch.qos) as QoS;
        if (qos > 0 && host.isQueueFull()) return false; // an acknowledgement calls pump() again
        this.#next++;
        this.#size--;
        if (host.current(message.topic) === message) host.send(message, qos, batch.subscriptionIds);
      }
      this.#batches.shift();
      this.#next = 0;
    }
    return true;
  }

  /** The connection closed: the QoS 1/2 messages still owed, and still current, for the session's queue. */
  abandon(): { message: Message; qos: QoS; subscriptionIds: readonly number[] | undefined }[] {
    const left = [];
    for (const [i, batch] of this.#batches.entries()) {
      for (let j = i === 0 ? this.#next : 0; j < batch.messages.length; j++) {
        const message = batch.messages[j]!;
        const qos = Math.min(message.qos, batch.qos) as QoS;
        if (qos > 0 && this.#host.current(message.topic) === message) {
          left.push({ message, qos, subscriptionIds: batch.subscriptionIds });
        }
      }
    }
    this.#batches = [];
    this.#next = 0;
    this.#size = 0;
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
