/**
 * An in-memory duplex: two connected {@linkcode ByteStream}s, for fast broker tests without sockets.
 *
 * @module
 */

import type { ByteStream } from "./transport.ts";

class MemoryEnd implements ByteStream {
  peer!: MemoryEnd;
  #chunks: Uint8Array[] = [];
  #waiting: ((n: number | null) => void) | undefined;
  #target: Uint8Array | undefined;
  #closed = false;

  read(buffer: Uint8Array): Promise<number | null> {
    if (this.#chunks.length > 0) return Promise.resolve(this.#take(buffer));
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.#waiting = resolve;
      this.#target = buffer;
    });
  }

  #take(buffer: Uint8Array): number {
    let n = 0;
    while (this.#chunks.length > 0 && n < buffer.length) {
      const chunk = this.#chunks[0]!;
      const count = Math.min(chunk.length, buffer.length - n);
      buffer.set(chunk.subarray(0, count), n);
      n += count;
      if (count === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(count);
    }
    return n;
  }

  /** Called by the peer's write. */
  deliver(data: Uint8Array): void {
    if (this.#closed) return;
    this.#chunks.push(data.slice());
    const resolve = this.#waiting;
    if (resolve !== undefined) {
      this.#waiting = undefined;
      resolve(this.#take(this.#target!));
    }
  }

  /** Called by either side's close. */
  end(): void {
    if (this.#closed) return;
    this.#closed = true;
    const resolve = this.#waiting;
    this.#waiting = undefined;
    resolve?.(this.#chunks.length > 0 ? this.#take(this.#target!) : null);
  }

  write(data: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Deno.errors.BrokenPipe("memory stream closed"));
    this.peer.deliver(data);
    return Promise.resolve(data.length);
  }

  close(): void {
    this.end();
    this.peer.end();
  }
}

/**
 * Two connected streams: what one writes, the other reads.
 *
 * @example
 * ```ts
 * import { memoryPair } from "./memory.ts";
 * const [a, b] = memoryPair();
 * await a.write(Uint8Array.of(1, 2));
 * const buffer = new Uint8Array(8);
 * console.assert((await b.read(buffer)) === 2);
 * a.close();
 * ```
 */
export function memoryPair(): [ByteStream, ByteStream] {
  const a = new MemoryEnd();
  const b = new MemoryEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
