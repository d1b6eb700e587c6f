/**
 * The password hashing queue: PBKDF2 is expensive, so verifications take turns, the queue is bounded and a
 * verification nobody waits for any more leaves it.
 *
 * @module
 */

/** The hashing queue is full (`maxQueuedHashes` of the password file): the caller answers Server busy. */
export class PasswordQueueFullError extends Error {
  /** `"PasswordQueueFullError"` */
  override readonly name = "PasswordQueueFullError";
}

/**
 * Runs at most `max` hashing jobs at once; up to `maxWaiting` more wait in arrival order, and a waiting job whose
 * signal aborts (its connection closed) is dropped. Bounded because a wait longer than a client's connect
 * timeout helps no one, and an unbounded queue let 300 guesses keep honest logins waiting 19 s (issue 15 item 8).
 */
export class HashQueue {
  readonly #max: number;
  readonly #maxWaiting: number;
  #active = 0;
  readonly #waiting: { start(): void }[] = [];

  /** `max` jobs at once, `maxWaiting` queued. */
  constructor(max: number, maxWaiting: number) {
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`maxConcurrentHashes must be >= 1, not ${max}`);
    }
    if (!(maxWaiting >= 0)) throw new RangeError(`maxQueuedHashes must be >= 0, not ${maxWaiting}`);
    this.#max = max;
    this.#maxWaiting = maxWaiting;
  }

  /** Runs `job` when a slot is free; a job still waiting when `signal` aborts is dropped (rejects its reason). */
  run<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    if (this.#active < this.#max) {
      this.#active++;
      return this.#go(job);
    }
    if (this.#waiting.length >= this.#maxWaiting) {
      return Promise.reject(
        new PasswordQueueFullError(`${this.#waiting.length} password verifications are already waiting`),
      );
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        const at = this.#waiting.indexOf(waiter);
        if (at !== -1) this.#waiting.splice(at, 1);
        reject(signal!.reason);
      };
      const waiter = {
        start: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve(this.#go(job));
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  async #go<T>(job: () => Promise<T>): Promise<T> {
    try {
      return await job();
    } finally {
      const next = this.#waiting.shift();
      if (next === undefined) this.#active--;
      else next.start(); // the slot passes straight on
    }
  }
}
