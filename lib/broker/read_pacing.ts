/**
 * How a connection's read loop paces itself: the size of its read buffer, and when it gives the other
 * connections and the timers a turn.
 *
 * @module
 */

/**
 * The read buffer of a quiet connection, which its pending read pins: 256 B rather than 512 B saves 256 B per
 * idle connection (bench/load_bench.ts "idle"), and a CONNECT without a long will or password fits in one read.
 */
export const READ_MIN = 256;
/** The largest read buffer, reached by a peer that keeps it full. */
export const READ_MAX = 64 * 1024;
/** A read shorter than this gives a grown buffer back (READ_MIN replaces it). */
const SHRINK_BELOW = 256;
/**
 * A socket that always has data waiting is read without a trip through the event loop: after this many
 * milliseconds spent on full reads in a row, its connection gives the others and the timers a turn. Without it
 * a flooding client held another client's PINGREQ for 14 s; with it, under 50 ms (tests/hostile/hostile_test.ts).
 */
export const YIELD_MS = 10;
/**
 * ...and after this many packets handled in a row, whatever the time: a flood of tiny packets (PINGREQ) is
 * cheap per packet but not in the sum, and timing only full reads missed part of it (issue #15 item 10).
 */
export const YIELD_PACKETS = 1000;

/**
 * The buffer for the next read after one of `n` bytes into `buffer`: grown while the peer keeps it full, back to
 * a small one when it goes quiet, so an idle connection does not pin 64 KiB in its pending read (DESIGN.md,
 * "Rules that make it fast").
 */
export function nextReadBuffer(buffer: Uint8Array<ArrayBuffer>, n: number): Uint8Array<ArrayBuffer> {
  if (n === buffer.length && buffer.length < READ_MAX) return new Uint8Array(buffer.length * 4);
  if (n < SHRINK_BELOW && buffer.length > READ_MIN) return new Uint8Array(READ_MIN);
  return buffer;
}

/**
 * Gives the event loop a turn. setTimeout, not setImmediate: after setImmediate the other sockets' reads still
 * wait (another client's PINGREQ took up to 850 ms beside a flood; 60 ms with setTimeout).
 */
export function yieldTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
