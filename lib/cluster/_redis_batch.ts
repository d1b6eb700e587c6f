/**
 * Commands of one event-loop turn sent as one pipeline: one socket write and one read for all of them instead of
 * one each. The claims of CONNECTs read in the same turn go this way: each write to Redis is a system call that
 * wakes Redis on a shared core, and one per CONNECT was the largest single cost of a persistent-session connect
 * (about 15% of a node's CPU in `bench/cluster_bench.ts connects`, where 50 connect at a time).
 *
 * @module
 */

import type { ChainableCommander, Redis } from "ioredis";

interface Queued {
  readonly queue: (pipeline: ChainableCommander) => void;
  readonly resolve: (reply: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** Gathers commands until the end of the turn, then sends them in one pipeline; each caller gets its reply. */
export class TurnBatch {
  #queued: Queued[] = [];
  #redis: Redis | undefined;

  /** Queues what `queue` adds to the pipeline (exactly one command) on `redis`; resolves with its reply. */
  run(redis: Redis, queue: (pipeline: ChainableCommander) => void): Promise<unknown> {
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    if (this.#redis !== undefined && this.#redis !== redis) this.#flush(); // a new connection: no mixing
    this.#queued.push({ queue, resolve, reject });
    if (this.#redis === undefined) {
      this.#redis = redis;
      setImmediate(() => this.#flush());
    }
    return promise;
  }

  #flush(): void {
    const redis = this.#redis;
    const queued = this.#queued;
    this.#redis = undefined;
    this.#queued = [];
    if (redis === undefined || queued.length === 0) return;
    const pipeline = redis.pipeline();
    for (const call of queued) call.queue(pipeline);
    pipeline.exec().then(
      (replies) => {
        queued.forEach((call, i) => {
          const [error, reply] = replies?.[i] ?? [new Error("no reply"), undefined];
          if (error !== null) call.reject(error);
          else call.resolve(reply);
        });
      },
      (error) => {
        for (const call of queued) call.reject(error);
      },
    );
  }
}
