/**
 * The one writer of a connection. Everything a turn of the event loop produced goes out in one `write()`, and
 * while a write is in flight new packets gather for the next one, so the number of writes (the real cost, see
 * DESIGN.md "Rules that make it fast") stays low under load and latency stays one write at rest.
 *
 * @module
 */

import { type ByteStream, writeAll } from "../transport/transport.ts";

/**
 * Batches byte chunks into single writes on a {@linkcode ByteStream}, strictly in order.
 *
 * @example
 * ```ts ignore
 * import { WriteQueue } from "./write_queue.ts";
 * const queue = new WriteQueue(conn, (error) => console.error(error));
 * queue.enqueue(Uint8Array.of(0xc0, 0)); // PINGREQ
 * queue.enqueue(Uint8Array.of(0xe0, 0)); // DISCONNECT, same write
 * await queue.flushed();
 * ```
 */
export class WriteQueue {
  #stream: ByteStream;
  #onError: (error: Error) => void;
  #state: "idle" | "scheduled" | "writing" | "failed" = "idle";
  #chunks: Uint8Array[] = [];
  #size = 0;
  /** Waiting for the chunks not yet handed to a write. */
  #pendingWaiters: ((written: boolean) => void)[] = [];
  /** Waiting for the write in flight. */
  #writingWaiters: ((written: boolean) => void)[] = [];

  /** `onError` hears about the first failed write; later chunks are dropped. */
  constructor(stream: ByteStream, onError: (error: Error) => void) {
    this.#stream = stream;
    this.#onError = onError;
  }

  /** Bytes queued and not yet handed to a write. */
  get queuedBytes(): number {
    return this.#size;
  }

  /** Queues `bytes`; they go out with everything else queued in this turn. Ignored after a failure. */
  enqueue(bytes: Uint8Array): void {
    if (this.#state === "failed") return;
    this.#chunks.push(bytes);
    this.#size += bytes.length;
    if (this.#state === "idle") {
      this.#state = "scheduled";
      queueMicrotask(() => this.#flush());
    }
  }

  /** Resolves true once everything queued so far is written, false if a write failed or the queue was closed. */
  flushed(): Promise<boolean> {
    if (this.#state === "failed") return Promise.resolve(false);
    if (this.#chunks.length > 0) return new Promise((resolve) => this.#pendingWaiters.push(resolve));
    if (this.#state === "writing") return new Promise((resolve) => this.#writingWaiters.push(resolve));
    return Promise.resolve(true);
  }

  /** Drops whatever is queued; waiters resolve false. */
  close(): void {
    this.#fail();
  }

  async #flush(): Promise<void> {
    while (this.#chunks.length > 0 && this.#state !== "failed") {
      const chunks = this.#chunks;
      const size = this.#size;
      this.#chunks = [];
      this.#size = 0;
      this.#writingWaiters = this.#pendingWaiters;
      this.#pendingWaiters = [];
      this.#state = "writing";
      let data: Uint8Array;
      if (chunks.length === 1) {
        data = chunks[0]!;
      } else {
        data = new Uint8Array(size);
        let offset = 0;
        for (const chunk of chunks) {
          data.set(chunk, offset);
          offset += chunk.length;
        }
      }
      try {
        await writeAll(this.#stream, data);
      } catch (error) {
        if (this.#failed()) return;
        this.#fail();
        this.#onError(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      if (this.#failed()) return;
      const waiters = this.#writingWaiters;
      this.#writingWaiters = [];
      for (const resolve of waiters) resolve(true);
    }
    if (this.#state !== "failed") this.#state = "idle";
  }

  /** Read fresh: close() may run while a write is awaited. */
  #failed(): boolean {
    return this.#state === "failed";
  }

  #fail(): void {
    if (this.#state === "failed") return;
    this.#state = "failed";
    this.#chunks = [];
    this.#size = 0;
    const waiters = [...this.#writingWaiters, ...this.#pendingWaiters];
    this.#writingWaiters = [];
    this.#pendingWaiters = [];
    for (const resolve of waiters) resolve(false);
  }
}
