/**
 * A cluster node's close leaves nothing running: what it started in reaction to the cluster (adopting a dead
 * node's sessions) is finished before the close resolves, and no timer it or its work armed outlives it. Found as
 * Deno's "A timer was started in this test, but never completed" in `03_takeover_test.ts` [redis]: the last
 * brokers of a test adopted the sessions of the first ones while closing, and each adopted session armed its
 * expiry timer after the broker had stopped them. A commit pausing before it tries the engine again is ended by
 * the close rather than left to its timer.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Clock, REAL_CLOCK, type TimerId } from "../../lib/clock.ts";
import {
  type Claim,
  ClusterUnavailableError,
  type CommitBatch,
  type CommitOutcome,
  type Incarnation,
} from "../../lib/cluster/engine.ts";
import { MemoryCluster } from "../../lib/cluster/memory_cluster.ts";
import { MemoryClusterEngine } from "../../lib/cluster/memory_engine.ts";
import { persistent } from "../broker/_v5.ts";
import { subscribe, subscribePacket, waitFor } from "../broker/_wire.ts";
import { type EngineKind, withCluster } from "./_cluster.ts";

/** The real clock, keeping the timers armed through it and not yet fired or cleared. */
class CountingClock implements Clock {
  readonly live = new Set<TimerId>();

  now(): number {
    return REAL_CLOCK.now();
  }

  monotonic(): number {
    return REAL_CLOCK.monotonic();
  }

  setTimeout(callback: () => void, ms: number): TimerId {
    const id: TimerId = REAL_CLOCK.setTimeout(() => {
      this.live.delete(id);
      callback();
    }, ms);
    this.live.add(id);
    return id;
  }

  clearTimeout(id: TimerId): void {
    this.live.delete(id);
    REAL_CLOCK.clearTimeout(id);
  }
}

/** A memory engine whose adoptions wait at a gate the test opens. */
class GatedEngine extends MemoryClusterEngine {
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;
  /** Adoptions that reached the gate. */
  waiting = 0;

  /** Makes the next adoptions wait until {@linkcode GatedEngine.openGate}. */
  closeGate(): void {
    this.#gate = new Promise((resolve) => this.#open = resolve);
  }

  openGate(): void {
    this.#open?.();
    this.#gate = undefined;
  }

  override async adopt(clientId: string, node: Incarnation): Promise<Claim | undefined> {
    this.waiting++;
    await this.#gate;
    return super.adopt(clientId, node);
  }
}

/** The memory cluster as an engine kind whose engines `make` builds. */
function kindOf(memory: MemoryCluster, make: () => MemoryClusterEngine): EngineKind {
  return {
    name: "test memory",
    open: () =>
      Promise.resolve({
        engine: make,
        memory,
        close: () => {
          memory.close();
          return Promise.resolve();
        },
      }),
  };
}

Deno.test("a node that closes while adopting a dead node's sessions finishes first and leaves no timer", async () => {
  const memory = new MemoryCluster();
  const engines: GatedEngine[] = [];
  const kind = kindOf(memory, () => {
    const engine = new GatedEngine(memory, 5000);
    engines.push(engine);
    return engine;
  });
  const clock = new CountingClock();
  let adopted = false;
  await withCluster(kind, 2, async ({ brokers, connect }) => {
    // A persistent session (expiry 300 s: an expiry timer once it is offline) held on node 0.
    const client = await connect(0, persistent("x"));
    await subscribe(client, 1, [["t/#", 1]]);
    await client.disconnect();
    await waitFor(() => brokers[0]!.sessionCount === 1, "the session offline on node 0");
    const adopter = engines[1]!;
    adopter.closeGate();
    // Node 0 leaves: node 1 adopts its sessions, and waits at the gate.
    await brokers[0]!.close();
    await waitFor(() => adopter.waiting > 0, "node 1 to adopt");
    const closing = brokers[1]!.close();
    // Let the close get past stopping the broker's own timers before the adoption goes on.
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    adopter.openGate();
    await closing;
    adopted = brokers[1]!.cluster!.epochs.has("x");
  }, { broker: { clock } });
  assert.ok(adopted, "the adoption under way finished before the close resolved");
  assert.equal(clock.live.size, 0, "no timer armed through the brokers' clock outlives their close");
});

/** A memory engine that refuses commits while `refusing` (as Redis going away before the node has heard). */
class RefusingEngine extends MemoryClusterEngine {
  refusing = false;
  refused = 0;

  override commit(batch: CommitBatch): Promise<CommitOutcome> {
    if (!this.refusing) return super.commit(batch);
    this.refused++;
    return Promise.reject(new ClusterUnavailableError("refused by the test"));
  }
}

Deno.test("a node's close ends the pause of a commit waiting to try the engine again", async () => {
  const memory = new MemoryCluster();
  const engine = new RefusingEngine(memory, 5000);
  await withCluster(kindOf(memory, () => engine), 1, async ({ brokers, connect }) => {
    const client = await connect(0, persistent("x"));
    engine.refusing = true;
    // The session's new subscription is written: the commit is refused, and pauses before trying again.
    await client.send(subscribePacket(5, 1, [["t/#", 1]]));
    await waitFor(() => engine.refused > 0, "a refused commit");
    const node = brokers[0]!.cluster!;
    let settled = false;
    node.context.store!.settled().then(() => settled = true, () => settled = true);
    await node.store.close();
    // Microtasks only: a commit still in its pause would need a timer to end.
    for (let i = 0; i < 20; i++) await Promise.resolve();
    assert.ok(settled, "the commit gave up when the node closed");
  });
});

Deno.test("a node's close waits for the work a node.later() timer started (a late inbox replay or sweep)", async () => {
  const memory = new MemoryCluster();
  await withCluster(kindOf(memory, () => new MemoryClusterEngine(memory, 5000)), 1, async ({ brokers }) => {
    const node = brokers[0]!.cluster!;
    const gate = Promise.withResolvers<void>();
    let started = false;
    let finished = false;
    node.later(1, async () => {
      started = true;
      await gate.promise;
      finished = true;
    });
    await waitFor(() => started, "the delayed work to start");
    let closed = false;
    const closing = node.store.close().then(() => closed = true);
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    assert.ok(!closed, "the close resolved while the delayed work was still running");
    gate.resolve();
    await closing;
    assert.ok(finished);
  });
});
