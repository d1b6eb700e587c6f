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
