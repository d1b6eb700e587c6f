/**
 * One timer for many deadlines: connections' connect timeouts and keep alives sit in a binary heap, and a single
 * clock timer fires at the earliest. A timer per connection cost about 2.6 KiB of memory each (measured with
 * 10,000 Deno timers), more than the rest of an idle connection's state.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";

/** A scheduled deadline; {@linkcode DeadlineQueue.cancel} lets go of its item at once. */
export interface Deadline<T> {
  /** When it is due, ms since the epoch on the queue's clock. */
  at: number;
  /** What is due; undefined once cancelled or done. */
  item: T | undefined;
}

type Entry<T> = Deadline<T>;

/**
 * Calls `onDue(item, now)` when an item's deadline passes; `onDue` returns the item's next deadline (it is
 * rescheduled) or undefined (it is dropped). Items may be scheduled more than once; `onDue` sees the item's real
 * state, so a stale entry only costs one call.
 */
export class DeadlineQueue<T> {
  readonly #clock: Clock;
  readonly #onDue: (item: T, now: number) => number | undefined;
  readonly #heap: Entry<T>[] = [];
  /** Cancellations since the heap was last rebuilt without its cancelled entries. */
  #cancelled = 0;
  #timer: TimerId | undefined;
  #timerAt = Infinity;
  #closed = false;

  /** `onDue` runs for each due item and returns its next deadline, or undefined to drop it. */
  constructor(clock: Clock, onDue: (item: T, now: number) => number | undefined) {
    this.#clock = clock;
    this.#onDue = onDue;
  }

  /** Entries waiting. */
  get size(): number {
    return this.#heap.length;
  }

  /** Calls `onDue` for `item` at time `at` (ms since the epoch, on the queue's clock). */
  schedule(item: T, at: number): Deadline<T> {
    const entry: Entry<T> = { at, item };
    if (this.#closed) return entry;
    this.#push(entry);
    if (at < this.#timerAt) this.#arm(at);
    return entry;
  }

  /** Forgets a deadline: its item is released now, its entry when it comes up or the heap is rebuilt. */
  cancel(deadline: Deadline<T> | undefined): void {
    if (deadline === undefined || deadline.item === undefined) return;
    deadline.item = undefined;
    // A cancelled keep alive would sit in the heap for up to 27 hours (1.5 x 65535 s), so connection churn grew
    // it without bound: rebuild it without the cancelled entries once they may be half of it (amortized O(log n)).
    if (++this.#cancelled > 1024 && this.#cancelled * 2 > this.#heap.length) this.#compact();
  }

  #compact(): void {
    const heap = this.#heap;
    const live = heap.filter((entry) => entry.item !== undefined).sort((a, b) => a.at - b.at);
    heap.length = live.length; // a sorted array is a valid heap
    for (let i = 0; i < live.length; i++) heap[i] = live[i]!;
    this.#cancelled = 0;
  }

  /** Stops the timer; nothing fires after this. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#heap.length = 0;
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = this.#clock.setTimeout(() => this.#fire(), Math.max(0, at - this.#clock.monotonic()));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#clock.monotonic();
    const heap = this.#heap;
    const again: Entry<T>[] = [];
    while (heap.length > 0 && heap[0]!.at <= now && !this.#closed) {
      const entry = this.#pop();
      if (entry.item === undefined) continue;
      const next = this.#onDue(entry.item, now);
      if (next === undefined) {
        entry.item = undefined;
      } else {
        entry.at = Math.max(next, now + 1);
        again.push(entry);
      }
    }
    if (this.#closed) return;
    for (const entry of again) this.#push(entry);
    if (heap.length > 0) this.#arm(heap[0]!.at);
  }

  #push(entry: Entry<T>): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at <= entry.at) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  #pop(): Entry<T> {
    const heap = this.#heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && heap[right]!.at < heap[left]!.at ? right : left;
        if (heap[child]!.at >= last.at) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }
}
