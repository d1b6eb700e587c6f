/** The binary encoding of forwarded batches (the inbox stream entries of the Redis engine). */

import assert from "node:assert/strict";
import { decodeForwardBatch, encodeForwardBatch } from "../../lib/cluster/_redis_forward_codec.ts";
import type { ForwardedMessage } from "../../lib/cluster/engine.ts";

Deno.test("encodeForwardBatch() round-trips every field of a forwarded message", () => {
  const payload = new Uint8Array(70_000).map((_, i) => i % 251);
  const batch: ForwardedMessage[] = [
    {
      id: "a-1:1",
      message: { topic: "t/ü", payload: new Uint8Array(0), qos: 0, retain: false },
      direct: true,
    },
    {
      id: "a-1:2",
      message: {
        topic: "big",
        payload,
        qos: 2,
        retain: true,
        properties: {
          contentType: "text/plain",
          userProperties: [["k", "v"], ["k", "w"]],
          correlationData: new Uint8Array([1, 2]),
        },
        expiresAt: 1_796_610_013_799,
        origin: "publisher",
      },
      direct: false,
      shared: ["$share/g/big", "$share/h/#"],
      clients: ["x"],
    },
    {
      id: "a-1:3",
      message: { topic: "q1", payload: new Uint8Array([7]), qos: 1, retain: false },
      direct: true,
      clients: ["y", "z"],
    },
  ];
  assert.deepEqual(decodeForwardBatch(encodeForwardBatch(batch)), batch);
});

Deno.test("decodeForwardBatch() copies payloads and refuses an unknown version", () => {
  const bytes = encodeForwardBatch([
    {
      id: "i",
      message: { topic: "t", payload: new Uint8Array([1, 2, 3]), qos: 0, retain: false },
      direct: true,
    },
  ]);
  const [decoded] = decodeForwardBatch(bytes);
  bytes.fill(0, 1);
  assert.deepEqual([...decoded!.message.payload], [1, 2, 3]);
  assert.throws(() => decodeForwardBatch(new Uint8Array([2, 0])), /version 2/);
});

Deno.test("decodeForwardBatch() gives each payload its own bytes, small ones and large ones", () => {
  const batch: ForwardedMessage[] = [];
  for (let i = 0; i < 200; i++) {
    const size = i % 50 === 0 ? 5000 : i % 7 === 0 ? 0 : 64 + (i % 3);
    batch.push({
      id: `n-1:${i}`,
      message: {
        topic: i % 10 === 0 ? `t/${i}` : "t/same",
        payload: new Uint8Array(size).fill(i),
        qos: 0,
        retain: false,
      },
      direct: true,
    });
  }
  const bytes = encodeForwardBatch(batch);
  const decoded = decodeForwardBatch(bytes);
  assert.deepEqual(decoded, batch);
  bytes.fill(0);
  for (const [i, forwarded] of decoded.entries()) forwarded.message.payload.fill(255 - (i % 256));
  for (const [i, forwarded] of decoded.entries()) {
    assert.ok(forwarded.message.payload.every((b) => b === 255 - (i % 256)), `payload ${i} overlaps another`);
  }
});

Deno.test("decodeForwardBatch() refuses a batch whose payload runs past its end", () => {
  const bytes = encodeForwardBatch([
    { id: "i", message: { topic: "t", payload: new Uint8Array(10), qos: 0, retain: false }, direct: true },
  ]);
  assert.throws(() => decodeForwardBatch(bytes.subarray(0, bytes.length - 3)), /payload runs past its end/);
});

Deno.test("encodeForwardBatch() leaves the headroom asked for before the batch", () => {
  const batch: ForwardedMessage[] = [
    {
      id: "i",
      message: { topic: "t", payload: new Uint8Array([1, 2]), qos: 0, retain: false },
      direct: true,
    },
  ];
  const framed = encodeForwardBatch(batch, 5);
  assert.deepEqual(framed.subarray(5), encodeForwardBatch(batch));
  assert.deepEqual(decodeForwardBatch(framed.subarray(5)), batch);
});

Deno.test("encodeForwardBatch() writes a topic repeated in a batch each time, non-ASCII ones too", () => {
  const batch: ForwardedMessage[] = ["t/ü", "t/ü", "t/a", "t/ü", "t/ü", "€/x"].map((topic, i) => ({
    id: `n-ü:${i}`,
    message: { topic, payload: new Uint8Array([i]), qos: 0, retain: false },
    direct: true,
  }));
  assert.deepEqual(decodeForwardBatch(encodeForwardBatch(batch, 3).subarray(3)), batch);
});
