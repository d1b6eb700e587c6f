/**
 * The queue a session's QoS 1/2 messages wait in for room in the inflight window (Receive Maximum), oldest first.
 * The session applies its limits (`maxQueued`, `maxQueuedBytes`) from the count and the payload bytes kept here.
 *
 * @module
 */

import type { Outgoing } from "./outgoing.ts";

/**
 * Taken from the front by moving a head index (no shift of the array per message), compacted once most of it has
 * been taken.
 */
export class OutgoingQueue {
  #entries: Outgoing[] = [];
  #head = 0;
  /** Payload bytes in the queue. */
  bytes = 0;

  /** Messages waiting. */
  get length(): number {
    return this.#entries.length - this.#head;
  }

  /** Adds `entry` at the back. */
  push(entry: Outgoing): void {
    this.#entries.push(entry);
    this.bytes += entry.message.payload.length;
  }

  /** Takes the oldest entry out; undefined when the queue is empty. */
  shift(): Outgoing | undefined {
    if (this.#head === this.#entries.length) return undefined;
    const entry = this.#entries[this.#head++]!;
    this.bytes -= entry.message.payload.length;
    return entry;
  }

  /** Lets go of the entries taken, once they are most of the array. */
  compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
  }

  /** The entries still waiting, oldest first. */
  toArray(): Outgoing[] {
    return this.#entries.slice(this.#head);
  }
}
