/**
 * `sendAck()`: acknowledgements leave in the order of their PUBLISH [MQTT-4.6.0-2 (5.0)] [MQTT-4.6.0-3 (5.0)], a
 * durable one only after its commit, and the acks waiting on one commit leave together in one write (bench
 * results 2026-12-07, "(d): the PUBACKs go out about three to a write").
 */

import assert from "node:assert/strict";
import { sendAck } from "../../../lib/broker/handlers/ack_order.ts";
import type { Connection } from "../../../lib/broker/connection.ts";
import { Output } from "../../../lib/broker/output.ts";
import { CommitQueue } from "../../../lib/broker/storage/commit_queue.ts";
import type { Persistence, PersistenceOp } from "../../../lib/broker/storage/persistence.ts";
import { MqttError } from "../../../lib/mqtt_error.ts";
import { REASON_CODE } from "../../../lib/packet/reason_code.ts";
import type { ByteStream } from "../../../lib/transport/transport.ts";

/** A storage whose commits wait until the test opens them, one at a time, in order. */
class GatedPersistence implements Persistence {
  readonly name = "gated";
  readonly #gates: { resolve: () => void; reject: (error: Error) => void }[] = [];
  #waiting: (() => void) | undefined;
  commits = 0;

  load(): never {
    throw new Error("not used");
  }

  commit(_ops: readonly PersistenceOp[]): Promise<void> {
    this.commits++;
    const done = new Promise<void>((resolve, reject) => this.#gates.push({ resolve, reject }));
    this.#waiting?.();
    return done;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Resolves once a commit is waiting at the gate. */
  async waitingCommit(): Promise<void> {
    while (this.#gates.length === 0) await new Promise<void>((resolve) => this.#waiting = resolve);
    this.#waiting = undefined;
  }

  /** Lets the oldest waiting commit succeed (or fail with `error`). */
  async open(error?: Error): Promise<void> {
    await this.waitingCommit();
    const gate = this.#gates.shift()!;
    if (error === undefined) gate.resolve();
    else gate.reject(error);
  }
}

/** What the peer of the fake connection saw: every write, split into the ack bytes it carried. */
interface Harness {
  readonly connection: Connection;
  readonly store: CommitQueue;
  readonly persistence: GatedPersistence;
  /** The one-byte ack tags of each write, in order. */
  readonly writes: number[][];
  readonly failures: unknown[];
  /** Acks sent so far (all writes flattened). */
  sent(): number[];
}

/**
 * The slice of a connection `sendAck` uses, writing through a real {@linkcode Output} so writes can be counted.
 * Each "ack" is one byte (its tag), so the bytes of a write are the acks it carried.
 */
function harness(): Harness {
  const writes: number[][] = [];
  const stream: ByteStream = {
    read: () => Promise.resolve(null),
    write: (data) => {
      writes.push([...data]);
      return Promise.resolve(data.length);
    },
    close: () => {},
  };
  const output = new Output(stream);
  const persistence = new GatedPersistence();
  const failures: unknown[] = [];
  const store = new CommitQueue(persistence, () => {});
  const fake = {
    core: { store },
    ackChain: undefined,
    inboundPending: 0,
    pubrecPending: 0,
    send: (bytes: Uint8Array) => output.send(bytes),
    fail: (error: unknown) => failures.push(error),
  };
  return {
    connection: fake as unknown as Connection,
    store,
    persistence,
    writes,
    failures,
    sent: () => writes.flat(),
  };
}

/** Records one op in the store's open batch and sends ack `tag` as waiting on it (as publish.ts does). */
function durableAck(h: Harness, tag: number, counted: 0 | 1 | 2 = 1): void {
  h.store.add({ kind: "deleteRetained", topic: `t/${tag}` });
  count(h, counted);
  sendAck(h.connection, Uint8Array.of(tag), true, counted);
}

function plainAck(h: Harness, tag: number, counted: 0 | 1 | 2 = 0): void {
  count(h, counted);
  sendAck(h.connection, Uint8Array.of(tag), false, counted);
}

function count(h: Harness, counted: 0 | 1 | 2): void {
  if (counted === 1) h.connection.inboundPending++;
  else if (counted === 2) h.connection.pubrecPending++;
}

/** Lets queued microtasks, immediates and the output's writes run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

Deno.test("sendAck() sends an ack that waits on nothing at once", async () => {
  const h = harness();
  plainAck(h, 1);
  plainAck(h, 2);
  await settle();
  assert.deepEqual(h.sent(), [1, 2]);
  assert.equal(h.connection.ackChain, undefined);
});

Deno.test("sendAck() holds a durable ack until its commit, then releases its count", async () => {
  const h = harness();
  durableAck(h, 1, 1);
  durableAck(h, 2, 2);
  await settle();
  assert.deepEqual(h.sent(), [], "nothing before the commit");
  assert.equal(h.connection.inboundPending, 1);
  assert.equal(h.connection.pubrecPending, 1);
  await h.persistence.open();
  await settle();
  assert.deepEqual(h.sent(), [1, 2]);
  assert.equal(h.connection.inboundPending, 0);
  assert.equal(h.connection.pubrecPending, 0);
  assert.equal(h.connection.ackChain, undefined, "the chain is cleared once every ack is out");
});

Deno.test("sendAck() sends the acks of one commit in one write", async () => {
  const h = harness();
  for (let tag = 1; tag <= 50; tag++) durableAck(h, tag);
  await h.persistence.open();
  await settle();
  assert.equal(h.persistence.commits, 1);
  assert.deepEqual(h.writes, [Array.from({ length: 50 }, (_, i) => i + 1)]);
});

Deno.test("sendAck() keeps the order of mixed durable and plain acks [MQTT-4.6.0-2 (5.0)] [MQTT-4.6.0-3 (5.0)]", async () => {
  const h = harness();
  // Batch 1: a durable, a plain (waits behind it), a durable.
  durableAck(h, 1);
  plainAck(h, 2);
  durableAck(h, 3);
  await h.persistence.waitingCommit(); // batch 1 is cut and at the storage
  // Batch 2, recorded while batch 1 commits: plain acks behind batch 1, durable ones waiting on batch 2.
  plainAck(h, 4);
  durableAck(h, 5);
  plainAck(h, 6);
  durableAck(h, 7);
  await settle();
  assert.deepEqual(h.sent(), []);
  await h.persistence.open();
  await settle();
  assert.deepEqual(h.sent(), [1, 2, 3, 4], "batch 1's acks and the plain one behind them");
  plainAck(h, 8); // still behind batch 2's
  await settle();
  assert.deepEqual(h.sent(), [1, 2, 3, 4]);
  await h.persistence.open();
  await settle();
  assert.deepEqual(h.sent(), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(h.writes, [[1, 2, 3, 4], [5, 6, 7, 8]], "one write per commit");
  plainAck(h, 9); // nothing waits any more: straight out
  await settle();
  assert.deepEqual(h.writes.at(-1), [9]);
  assert.equal(h.connection.ackChain, undefined);
});

Deno.test("sendAck() fails the connection when the commit fails, and sends none of its acks", async () => {
  const h = harness();
  durableAck(h, 1);
  plainAck(h, 2);
  durableAck(h, 3);
  await h.persistence.open(new Error("disk full"));
  await settle();
  assert.deepEqual(h.sent(), []);
  assert.equal(h.failures.length, 1);
  const failure = h.failures[0];
  assert.ok(failure instanceof MqttError);
  assert.equal(failure.reasonCode, REASON_CODE.UnspecifiedError);
  assert.equal((failure.cause as Error).message, "disk full");
});

Deno.test("sendAck() sends nothing after a failed commit, also of later commits", async () => {
  const h = harness();
  durableAck(h, 1);
  await h.persistence.waitingCommit();
  durableAck(h, 2);
  plainAck(h, 3);
  await h.persistence.open(new Error("disk full"));
  await h.persistence.open();
  await settle();
  assert.deepEqual(h.sent(), [], "an ack after a lost message would claim what was not stored");
  assert.ok(h.failures.length >= 1);
  assert.ok(h.failures.every((failure) => failure instanceof MqttError));
});
