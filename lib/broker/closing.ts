/**
 * The last steps of a connection's close, after its state is "closed": write what is queued (waiting at most
 * FLUSH_MS for a peer that does not read), stop writing, let a peer that was still sending read our last packet
 * (`linger.ts`), then close the socket.
 *
 * @module
 */

import type { ByteStream } from "../transport/transport.ts";
import type { Linger } from "./linger.ts";
import type { Output } from "./output.ts";

/** The longest a closing connection waits for its queued output to be written. */
const FLUSH_MS = 1000;

/**
 * Flushes `output` (bounded), closes it, waits for the linger the read loop may start meanwhile (`linger` is
 * asked once the flush is over), and closes `stream`.
 */
export async function closeStream(
  output: Output,
  stream: ByteStream,
  linger: () => Linger | undefined,
): Promise<void> {
  let timer: number | undefined;
  await Promise.race([
    output.drain(),
    new Promise<void>((resolve) => timer = setTimeout(resolve, FLUSH_MS) as unknown as number),
  ]);
  clearTimeout(timer);
  output.close();
  // A peer still sending when we closed: give it time to read our last packet before the socket goes.
  await linger()?.quiet();
  try {
    stream.close();
  } catch {
    // already closed by the peer
  }
}
