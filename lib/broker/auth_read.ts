/**
 * Reading on while an authentication step waits (issue 15 item 8). A connection that only awaited its
 * authenticator noticed a peer that hung up at the connect timeout, and its password hash stayed queued until
 * then; reading on, it sees the end of the stream at once and its close aborts the verification. What the peer
 * sends meanwhile waits in the framer and is handled after the answer, in order.
 *
 * @module
 */

import type { Framer } from "../codec/framer.ts";
import type { ByteStream } from "../transport/transport.ts";
import { READ_MAX, READ_MIN } from "./read_pacing.ts";

/** The connection that waits, as the reader sees it. */
export interface AuthReadOwner {
  /** Whether the connection has closed (the step refused, or a deadline passed). */
  readonly isClosed: boolean;
  /** `n` bytes arrived and went to the framer; `full` when they filled the read buffer. */
  received(n: number, full: boolean): void;
  /** The step or a read failed: the connection answers and closes. */
  fail(error: unknown): void;
  /** The peer hung up. */
  close(reason: string, sendWill: boolean): void;
}

/** Where the read loop goes on: the next read's buffer, and that read when it is already under way. */
export interface AfterAuth {
  /** The buffer for (or of) the next read. */
  readonly buffer: Uint8Array<ArrayBuffer>;
  /** A read into `buffer` started while the step waited, to be awaited before any other. */
  readonly reading: Promise<number | null> | undefined;
}

/**
 * Awaits `pending` (an authentication step) while reading `stream` into `framer`, up to READ_MAX bytes held
 * (then reading stops until the step ends). Never rejects: a failure goes to `owner.fail`.
 */
export async function readWhileAuthenticating(
  stream: ByteStream,
  framer: Framer,
  pending: Promise<void>,
  owner: AuthReadOwner,
): Promise<AfterAuth> {
  let decided = false;
  const done = pending.then(() => {
    decided = true;
  }, (error) => {
    decided = true;
    owner.fail(error);
  });
  // Let go of the CONNECT's bytes (a view of the read buffer) unless packets sent behind it wait to be framed.
  if (framer.buffered === 0) framer.next();
  let buffer = new Uint8Array(READ_MIN);
  for (;;) {
    if (framer.buffered > READ_MAX) {
      await done;
      return { buffer, reading: undefined };
    }
    const reading = stream.read(buffer);
    reading.catch(() => {}); // awaited below or by the read loop, unless the connection closes first
    let n: number | null;
    try {
      await Promise.race([done, reading]);
      if (decided) return { buffer, reading };
      n = await reading;
    } catch (error) {
      owner.fail(error);
      return { buffer, reading: undefined };
    }
    if (owner.isClosed) return { buffer, reading: undefined };
    if (n === null) {
      owner.close("connection lost", true);
      return { buffer, reading: undefined };
    }
    framer.push(buffer.subarray(0, n));
    owner.received(n, n === buffer.length);
    buffer = new Uint8Array(READ_MIN); // the framer may hold the last one
  }
}
