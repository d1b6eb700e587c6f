/**
 * Closing without a TCP reset. A socket closed while the peer's bytes sit unread in it sends a reset, and the
 * peer's stack then drops what it had not read yet: our DISCONNECT with its reason code, or (for a peer still
 * writing) its next write fails with a broken pipe before it reads anything (issue #14 item 2). So after the
 * broker closes a connection whose peer is still sending, it reads and discards for a bounded time and byte
 * count, stopping early once the peer has been quiet for a moment, and only then closes the socket.
 *
 * @module
 */

/** The longest a closing connection is read for. */
export const LINGER_MS = 2000;
/** The most a closing connection reads. */
export const LINGER_BYTES = 4 * 1024 * 1024;
/** A peer quiet this long has taken what it is going to take: close. */
export const LINGER_IDLE_MS = 100;

/** One closing connection's discarding read (made only for a peer that was still sending). */
export class Linger {
  #discarded = 0;
  #ended = false;

  /** Counts `n` discarded bytes; false when the read loop should stop (ended, or the byte limit reached). */
  discard(n: number): boolean {
    this.#discarded += n;
    return !this.#ended && this.#discarded < LINGER_BYTES;
  }

  /** Resolves when the peer has been quiet for LINGER_IDLE_MS, or after LINGER_MS; then the read loop stops. */
  async quiet(): Promise<void> {
    const until = performance.now() + LINGER_MS;
    while (!this.#ended && this.#discarded < LINGER_BYTES && performance.now() < until) {
      const before = this.#discarded;
      await new Promise((resolve) => setTimeout(resolve, LINGER_IDLE_MS));
      if (this.#discarded === before) break;
    }
    this.#ended = true;
  }
}
