/**
 * Group commit: ops recorded during one event-loop turn are written in one transaction. Commits run one at a
 * time, in order; while one runs, the next batch grows.
 *
 * @module
 */

import type { Persistence, PersistenceOp } from "./persistence.ts";
import type { BrokerCounters } from "../counters.ts";

/** What a {@linkcode CommitQueue} counts: commits, failures, operations and how long each commit took. */
export type CommitCounters = Pick<
  BrokerCounters,
  "storageCommits" | "storageCommitFailures" | "storageOperations" | "storageCommitDuration"
>;

/** Batches {@linkcode PersistenceOp}s into sequential commits. */
export class CommitQueue {
  readonly #store: Persistence;
  readonly #onError: (error: unknown) => void;
  readonly #counters: CommitCounters | undefined;
  #ops: (PersistenceOp | LatestOp)[] = [];
  /** The keys of the open batch's {@linkcode CommitQueue.addLatest} ops. */
  #latest: Set<object> | undefined;
  /** Resolves when the open batch has committed; created with the batch's first op. */
  #batch: Promise<void> | undefined;
  #running: Promise<void> = Promise.resolve();
  /** Total ops recorded so far (lets a caller see whether its work added any). */
  recorded = 0;
  /** Whether the latest commit failed (the admin server's `/healthz` answers 503 then). */
  lastCommitFailed = false;

  /**
   * Commits to `store`. A failed commit is passed to `onError` and rejects that batch's
   * {@linkcode CommitQueue.settled}; later batches are still committed. `counters` counts every commit.
   */
  constructor(store: Persistence, onError: (error: unknown) => void, counters?: CommitCounters) {
    this.#store = store;
    this.#onError = onError;
    this.#counters = counters;
  }

  /** Records an op in the open batch. */
  add(op: PersistenceOp): void {
    this.#push(op);
  }

  #push(op: PersistenceOp | LatestOp): void {
    this.#ops.push(op);
    this.recorded++;
    if (this.#batch === undefined) this.#batch = this.#schedule();
  }

  /**
   * Records an op that writes some state whole (a session with all its subscriptions), built when the batch is
   * cut: however often the state changes during one batch, it is built and written once, in the place of its
   * first change. A client making 10,000 subscriptions one SUBSCRIBE at a time would otherwise write its whole
   * subscription list 10,000 times.
   */
  addLatest(key: object, build: () => PersistenceOp): void {
    const latest = this.#latest ??= new Set();
    if (latest.has(key)) return;
    latest.add(key);
    this.#push({ kind: LATEST, build });
  }

  /** Resolves once every op recorded so far is committed. */
  settled(): Promise<void> {
    return this.#batch ?? this.#running;
  }

  #schedule(): Promise<void> {
    const previous = this.#running;
    const done = (async () => {
      await previous;
      // Let the rest of this turn (every connection's reads) add to the batch before it is cut. setImmediate,
      // not setTimeout(0): the latter waits about 2 ms a turn in Deno 2.9 (measured: 2,161 us vs 3.5 us per turn),
      // which capped durable QoS 1 at about 14k msgs/s (bench/load_bench.ts qos1-durable).
      await new Promise<void>((resolve) => setImmediate(resolve));
      const recorded = this.#ops;
      this.#ops = [];
      this.#latest = undefined;
      this.#batch = undefined;
      const ops = recorded.map((op) => op.kind === LATEST ? op.build() : op);
      const counters = this.#counters;
      const start = performance.now();
      try {
        await this.#store.commit(ops);
        this.lastCommitFailed = false;
      } catch (error) {
        this.lastCommitFailed = true;
        if (counters !== undefined) counters.storageCommitFailures++;
        this.#onError(error);
        throw error;
      } finally {
        // Time of the commit itself (the storage's await included), not of the wait for the batch.
        counters?.storageCommitDuration.observe((performance.now() - start) / 1000);
      }
      if (counters !== undefined) {
        counters.storageCommits++;
        counters.storageOperations += ops.length;
      }
    })();
    this.#running = done.catch(() => {});
    return done;
  }
}

const LATEST = "latest";

/** An op built when its batch is cut (see {@linkcode CommitQueue.addLatest}). */
interface LatestOp {
  readonly kind: typeof LATEST;
  readonly build: () => PersistenceOp;
}
