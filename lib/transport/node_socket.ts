/**
 * A byte stream over a `node:net` or `node:tls` socket, readable without a read pending
 * ({@linkcode PollableStream}): the `node:net` listener of `net.ts` and the TLS listener that asks for client
 * certificates (`tls.ts`) use it.
 *
 * @module
 */

import type { Socket } from "node:net";
import type { PollableStream, ReadableOwner } from "./transport.ts";

/** The stream a socket feeds, so that its listeners are shared functions rather than closures per socket. */
const STREAM = Symbol("byteStream");

type Tagged = Socket & { [STREAM]?: NodeSocketStream };

function onReadable(this: Tagged): void {
  this[STREAM]?.wake();
}

function onEnd(this: Tagged): void {
  this[STREAM]?.end();
}

/**
 * A byte stream over a `node:net` / `node:tls` socket. Reads use the socket's paused mode, so a broker that
 * reads slowly slows the peer down (TCP back-pressure) instead of buffering. Its socket listeners are functions
 * shared by every stream, not closures per socket; a connection that polls it (`readNow`, `whenReadable`) keeps
 * nothing pending while idle.
 */
export class NodeSocketStream implements PollableStream {
  readonly #socket: Socket;
  #leftover: Uint8Array | undefined;
  #ended = false;
  /** The read waiting for data: its buffer and how it resolves. */
  #buffer: Uint8Array | undefined;
  #resolve: ((n: number | null) => void) | undefined;
  /** Who waits to be told that data arrived (see whenReadable). */
  #owner: ReadableOwner | undefined;

  /** Wraps `socket`; nothing else may read from it. */
  constructor(socket: Socket) {
    this.#socket = socket;
    (socket as Tagged)[STREAM] = this;
    socket.on("readable", onReadable);
    socket.on("end", onEnd);
    socket.on("close", onEnd);
    // A reset or a bad TLS record ends the stream; the broker sees end of stream and closes the connection.
    socket.on("error", onEnd);
  }

  /** The peer as `host:port`, read from the socket when asked. */
  get remoteAddress(): string {
    return `${this.#socket.remoteAddress}:${this.#socket.remotePort}`;
  }

  read(buffer: Uint8Array): Promise<number | null> {
    const n = this.#take(buffer);
    if (n !== 0) return Promise.resolve(n === -1 ? null : n);
    const { promise, resolve } = Promise.withResolvers<number | null>();
    this.#buffer = buffer;
    this.#resolve = resolve;
    return promise;
  }

  readNow(buffer: Uint8Array): number | null {
    const n = this.#take(buffer);
    return n === -1 ? null : n;
  }

  whenReadable(owner: ReadableOwner): void {
    this.#owner = owner;
  }

  /** Bytes copied into `buffer`, or 0 when none are ready, or -1 at end of stream. */
  #take(buffer: Uint8Array): number {
    const chunk: Uint8Array | null = this.#leftover ?? this.#socket.read();
    this.#leftover = undefined;
    if (chunk !== null && chunk.length > 0) {
      const n = Math.min(chunk.length, buffer.length);
      buffer.set(n === chunk.length ? chunk : chunk.subarray(0, n));
      if (n < chunk.length) this.#leftover = chunk.subarray(n);
      return n;
    }
    return this.#ended ? -1 : 0;
  }

  /** @ignore The socket has data (or ended): settles a waiting read. */
  wake(): void {
    const owner = this.#owner;
    if (owner !== undefined) {
      this.#owner = undefined;
      owner.readable();
      return;
    }
    const resolve = this.#resolve;
    if (resolve === undefined) return;
    const n = this.#take(this.#buffer!);
    if (n === 0) return;
    this.#resolve = undefined;
    this.#buffer = undefined;
    resolve(n === -1 ? null : n);
  }

  /** @ignore The socket ended, closed or failed. */
  end(): void {
    this.#ended = true;
    this.wake();
  }

  write(data: Uint8Array): Promise<number> {
    if (this.#socket.destroyed) return Promise.reject(new Deno.errors.BrokenPipe("socket closed"));
    // The callback runs once the socket has taken the bytes, so the caller may reuse `data` afterwards.
    return new Promise((resolve, reject) => {
      this.#socket.write(data, (error) => error ? reject(error) : resolve(data.length));
    });
  }

  close(): void {
    this.#socket.destroy();
    this.end();
  }
}
