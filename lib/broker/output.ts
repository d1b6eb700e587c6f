/**
 * A connection's output: packets produced during one event-loop turn are copied into one buffer and written
 * with one `write()` (the write count, not the byte count, is the ceiling: see DESIGN.md, "Rules that make it
 * fast"). Two buffers alternate so a turn can fill one while the other is being written.
 *
 * @module
 */

import { patchPublish } from "../packet/publish.ts";
import type { ByteStream } from "../transport/transport.ts";

/**
 * Who an {@linkcode Output} reports to. A connection passes itself rather than two closures: those and their
 * context cost about 200 bytes per idle connection (bench/load_bench.ts "idle").
 */
export interface OutputOwner {
  /** Called once when a write fails (the peer went away). */
  writeFailed(error: unknown): void;
  /** Called after every write with the byte count (for statistics). */
  written(bytes: number): void;
}

const INITIAL = 1024;
const EMPTY = new Uint8Array(0);
/** After writing a batch smaller than this, both buffers are given back. */
const RELEASE_BELOW = 512;
/** A buffer grown beyond this is given back once it has been written, so idle connections stay small. */
const KEEP = 64 * 1024;

/** Batched writes to one stream. */
export class Output {
  readonly #stream: ByteStream;
  readonly #owner: OutputOwner | undefined;
  // Allocated on first use and given back by trim() when the connection goes idle.
  #buffer: Uint8Array = EMPTY;
  #spare: Uint8Array = EMPTY;
  #length = 0;
  /** `#buffer` is the caller's bytes of a lone packet (see send), not ours to write into. */
  #borrowed = false;
  #writing = false;
  #scheduled = false;
  #closed = false;
  #drained: (() => void)[] | undefined;
  /** Bytes accepted and not yet written (what a slow consumer has not taken). */
  pending = 0;

  /** Writes to `stream`; `owner` hears about failed writes and written byte counts. */
  constructor(stream: ByteStream, owner?: OutputOwner) {
    this.#stream = stream;
    this.#owner = owner;
  }

  /**
   * Queues `bytes` for the next write. The lone packet of a turn (a CONNACK, a PINGRESP, an ack to a quiet
   * client) is written from `bytes` itself rather than copied into a buffer allocated for it, so the caller must
   * not change `bytes` afterwards.
   */
  send(bytes: Uint8Array): void {
    if (this.#closed) return;
    if (this.#length === 0 && !this.#writing) {
      this.#buffer = bytes;
      this.#borrowed = true;
      this.#length = bytes.length;
      this.pending += bytes.length;
      this.#schedule();
      return;
    }
    const at = this.#reserve(bytes.length);
    this.#buffer.set(bytes, at);
  }

  /** Queues a shared encoded PUBLISH with its packet identifier and DUP flag patched into the copy. */
  sendPublish(bytes: Uint8Array, idOffset: number, packetId: number, dup: boolean): void {
    if (this.#closed) return;
    const at = this.#reserve(bytes.length);
    this.#buffer.set(bytes, at);
    if (idOffset > 0) patchPublish(this.#buffer, at, idOffset, packetId, dup);
  }

  /**
   * Starts writing what is queued now rather than at the end of the turn, so what is queued after it (into the
   * spare buffer) does not hold it back: a CONNACK ahead of the encoding of a resumed session's backlog.
   */
  flush(): void {
    if (this.#scheduled && !this.#writing) void this.#flush();
  }

  /** Resolves when everything queued so far has been written (or the output closed). */
  drain(): Promise<void> {
    if (this.pending === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => (this.#drained ??= []).push(resolve));
  }

  /** Stops writing; queued bytes are dropped. */
  close(): void {
    this.#closed = true;
    this.#length = 0;
    this.pending = 0;
    if (!this.#writing) this.#buffer = this.#spare = EMPTY;
    this.#borrowed = false;
    this.#wake();
  }

  #reserve(size: number): number {
    const at = this.#length;
    const needed = at + size;
    if (needed > this.#buffer.length || this.#borrowed) {
      // A borrowed lone packet is copied out before the next one joins it.
      let capacity = Math.max(INITIAL, this.#borrowed ? 0 : this.#buffer.length * 2);
      while (capacity < needed) capacity *= 2;
      const grown = this.#borrowed && this.#spare.length >= needed ? this.#spare : new Uint8Array(capacity);
      if (grown === this.#spare) this.#spare = EMPTY;
      grown.set(this.#buffer.subarray(0, at));
      this.#buffer = grown;
      this.#borrowed = false;
    }
    this.#length = needed;
    this.pending += size;
    this.#schedule();
    return at;
  }

  #schedule(): void {
    if (!this.#scheduled && !this.#writing) {
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    if (this.#writing) return;
    this.#writing = true;
    let last = 0;
    try {
      while (this.#length > 0 && !this.#closed) {
        const current = this.#buffer;
        const written = this.#length;
        // Swap: the next turn fills the spare while this one is written (a borrowed packet never becomes one).
        this.#buffer = this.#spare;
        this.#spare = this.#borrowed ? EMPTY : current;
        this.#borrowed = false;
        this.#length = 0;
        let offset = 0;
        while (offset < written) offset += await this.#stream.write(current.subarray(offset, written));
        this.pending -= written;
        last = written;
        this.#owner?.written(written);
        if (current.length > KEEP && this.#spare === current) this.#spare = EMPTY;
      }
    } catch (error) {
      this.#closed = true;
      this.#owner?.writeFailed(error);
    } finally {
      this.#writing = false;
      if (this.#length === 0) {
        this.pending = 0;
        // A connection that only gets the odd small packet (acks, pings) keeps no buffers between them; idle
        // connections then cost no output memory (bench/load_bench.ts "idle").
        if (last < RELEASE_BELOW) this.#buffer = this.#spare = EMPTY;
        this.#wake();
      }
    }
  }

  #wake(): void {
    const waiters = this.#drained;
    if (waiters === undefined) return;
    this.#drained = undefined;
    for (const resolve of waiters) resolve();
  }
}
