/**
 * Group commit (lib/broker/storage/commit_queue.ts): ops of one event-loop turn go to the store in one commit, in
 * order; state written whole (a session with its subscriptions) is built once per commit, at the place of its
 * first change, as it is when the batch is cut.
 */

import assert from "node:assert/strict";
import { CommitQueue } from "../../../lib/broker/storage/commit_queue.ts";
import type { PersistedState, Persistence, PersistenceOp } from "../../../lib/broker/storage/persistence.ts";

/** A store that keeps the commits it was given and can be told to fail the next one. */
class RecordingStore implements Persistence {
  readonly name = "recording";
  readonly commits: PersistenceOp[][] = [];
  failNext = false;

  load(): Promise<PersistedState> {
    return Promise.resolve({ sessions: [], retained: [], wills: [] } as unknown as PersistedState);
  }

  commit(ops: readonly PersistenceOp[]): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(new Error("disk full"));
    }
    this.commits.push([...ops]);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const deleteRetained = (topic: string): PersistenceOp => ({ kind: "deleteRetained", topic });

Deno.test("CommitQueue: the ops of one turn are one commit, in the order they were recorded", async () => {
  const store = new RecordingStore();
  const queue = new CommitQueue(store, () => {});
  queue.add(deleteRetained("a"));
  queue.add(deleteRetained("b"));
  queue.add(deleteRetained("c"));
  assert.equal(queue.recorded, 3);
  await queue.settled();
  assert.deepEqual(store.commits, [[deleteRetained("a"), deleteRetained("b"), deleteRetained("c")]]);
  queue.add(deleteRetained("d"));
  await queue.settled();
  assert.equal(store.commits.length, 2, "a later turn is a later commit");
});

Deno.test("CommitQueue.addLatest: built once per commit, when the batch is cut, in the place of the first change", async () => {
  const store = new RecordingStore();
  const queue = new CommitQueue(store, () => {});
  const key = {};
  let state = 0;
  let builds = 0;
  const build = (): PersistenceOp => {
    builds++;
    return deleteRetained(`state ${state}`);
  };
  queue.add(deleteRetained("before"));
  for (let i = 0; i < 1000; i++) {
    state++;
    queue.addLatest(key, build);
    if (i === 0) queue.add(deleteRetained("between"));
  }
  assert.equal(builds, 0, "nothing is built before the cut");
  await queue.settled();
  assert.equal(builds, 1);
  assert.deepEqual(store.commits, [[
    deleteRetained("before"),
    deleteRetained("state 1000"),
    deleteRetained("between"),
  ]]);
  state++;
  queue.addLatest(key, build);
  await queue.settled();
  assert.equal(builds, 2, "the next batch builds it again");
  assert.deepEqual(store.commits[1], [deleteRetained("state 1001")]);
});

Deno.test("CommitQueue: a failed commit goes to onError and rejects its batch; later batches still commit", async () => {
  const store = new RecordingStore();
  const errors: unknown[] = [];
  const queue = new CommitQueue(store, (error) => errors.push(error));
  store.failNext = true;
  queue.add(deleteRetained("lost"));
  await assert.rejects(queue.settled(), /disk full/);
  assert.equal(errors.length, 1);
  queue.add(deleteRetained("kept"));
  await queue.settled();
  assert.deepEqual(store.commits, [[deleteRetained("kept")]]);
});
