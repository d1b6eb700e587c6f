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
