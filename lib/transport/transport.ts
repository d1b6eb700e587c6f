/**
 * The transport seam: a byte stream in both directions. `Deno.Conn` (TCP, TLS) satisfies it as it is; the
 * WebSocket and in-memory transports adapt to it.
 *
 * @module
 */

/** A bidirectional byte stream with Deno.Conn's read/write/close shape. */
export interface ByteStream {
  /** Reads into `buffer`; resolves the byte count, or null at end of stream. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes some of `data`; resolves how many bytes were written. */
  write(data: Uint8Array): Promise<number>;
  /** Closes both directions. Closing twice must not throw. */
  close(): void;
}

/** Writes all of `data`, looping over partial writes. */
export async function writeAll(stream: ByteStream, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await stream.write(data.subarray(offset));
}

/** Who a {@linkcode PollableStream} tells that it can be read again. */
export interface ReadableOwner {
  /** Called once after {@linkcode PollableStream.whenReadable}, when data arrived or the stream ended. */
  readable(): void;
}

/**
 * A byte stream that can also be read without a read pending: {@linkcode PollableStream.readNow} takes what has
 * arrived, and {@linkcode PollableStream.whenReadable} asks to be told when more has. An idle connection then
 * holds no buffer, promise or suspended function (`node:net` sockets: `transport/node_socket.ts`).
 */
export interface PollableStream extends ByteStream {
  /** Copies what has arrived into `buffer`: the byte count, 0 when nothing has, or null at end of stream. */
  readNow(buffer: Uint8Array): number | null;
  /** Calls `owner.readable()` once, when {@linkcode PollableStream.readNow} would not return 0. */
  whenReadable(owner: ReadableOwner): void;
}

/** Whether `stream` is a {@linkcode PollableStream}. */
export function isPollable(stream: ByteStream): stream is PollableStream {
  return (stream as Partial<PollableStream>).whenReadable !== undefined;
}
