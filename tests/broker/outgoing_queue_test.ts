/** The queue behind a session's inflight window (`lib/broker/outgoing_queue.ts`): order, counts and bytes. */

import assert from "node:assert/strict";
import type { Outgoing } from "../../lib/broker/outgoing.ts";
import { OutgoingQueue } from "../../lib/broker/outgoing_queue.ts";

function entry(seq: number, bytes: number): Outgoing {
  return {
    seq,
    message: { topic: "t", payload: new Uint8Array(bytes), qos: 1, retain: false },
    qos: 1,
    retain: false,
    subscriptionIds: undefined,
    packetId: 0,
    state: "queued",
  };
}

Deno.test("OutgoingQueue gives entries back oldest first and counts their payload bytes", () => {
  const queue = new OutgoingQueue();
  queue.push(entry(1, 10));
  queue.push(entry(2, 5));
  assert.equal(queue.length, 2);
  assert.equal(queue.bytes, 15);
  assert.equal(queue.shift()?.seq, 1);
  assert.equal(queue.bytes, 5);
  assert.deepEqual(queue.toArray().map((e) => e.seq), [2]);
  assert.equal(queue.shift()?.seq, 2);
  assert.equal(queue.shift(), undefined);
  assert.equal(queue.length, 0);
  assert.equal(queue.bytes, 0);
});

Deno.test("OutgoingQueue.compact() keeps the waiting entries in order", () => {
  const queue = new OutgoingQueue();
  for (let seq = 1; seq <= 3000; seq++) queue.push(entry(seq, 1));
  for (let i = 0; i < 2000; i++) queue.shift();
  queue.compact();
  assert.equal(queue.length, 1000);
  assert.equal(queue.bytes, 1000);
  assert.equal(queue.shift()?.seq, 2001);
  assert.equal(queue.toArray().at(-1)?.seq, 3000);
});
