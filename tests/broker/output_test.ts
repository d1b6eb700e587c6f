/**
 * Output: one write per event-loop turn, and the lone packet of a turn written from the caller's bytes without
 * ever writing into them.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Output } from "../../lib/broker/output.ts";
import type { ByteStream } from "../../lib/transport/transport.ts";

/** A stream whose writes are recorded (copied) and complete when `release()` is called. */
function recordingStream(): { stream: ByteStream; writes: number[][]; release: () => void } {
  const writes: number[][] = [];
  let waiting: (() => void)[] = [];
  const stream: ByteStream = {
    read: () => Promise.resolve(null),
    write(data: Uint8Array): Promise<number> {
      writes.push([...data]);
      return new Promise((resolve) => waiting.push(() => resolve(data.length)));
    },
    close() {},
  };
  const release = () => {
    const now = waiting;
    waiting = [];
    for (const resolve of now) resolve();
  };
  return { stream, writes, release };
}

const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("Output.send() writes a lone packet of a turn as it is", async () => {
  const { stream, writes, release } = recordingStream();
  const output = new Output(stream);
  const connack = Uint8Array.of(0x20, 2, 0, 0);
  output.send(connack);
  assert.equal(output.pending, 4);
  await turn();
  assert.deepEqual(writes, [[0x20, 2, 0, 0]]);
  release();
  await output.drain();
  assert.equal(output.pending, 0);
});

Deno.test("Output.send() copies a lone packet out when a second one joins the turn", async () => {
  const { stream, writes, release } = recordingStream();
  const output = new Output(stream);
  const first = Uint8Array.of(1, 1);
  output.send(first);
  output.send(Uint8Array.of(2, 2, 2));
  await turn();
  assert.deepEqual(writes, [[1, 1, 2, 2, 2]], "one write for the turn");
  release();
  await output.drain();
  assert.deepEqual([...first], [1, 1]);
});

Deno.test("Output never writes into bytes it was given, across turns and while a write is in flight", async () => {
  const { stream, writes, release } = recordingStream();
  const output = new Output(stream);
  const shared = Uint8Array.of(0xd0, 0); // a PINGRESP, say, sent to many clients
  output.send(shared);
  await turn(); // written from `shared`, and the write is still in flight
  output.send(Uint8Array.of(3, 3, 3));
  output.send(Uint8Array.of(4));
  release();
  await turn();
  output.send(Uint8Array.of(5, 5)); // where the buffer would be `shared`, were it ever reused
  output.send(shared);
  release();
  await turn();
  release();
  await output.drain();
  assert.deepEqual(writes, [[0xd0, 0], [3, 3, 3, 4], [5, 5, 0xd0, 0]]);
  assert.deepEqual([...shared], [0xd0, 0]);
});

Deno.test("Output.flush() starts the write of what is queued at once; what follows in the turn is written after", async () => {
  const { stream, writes, release } = recordingStream();
  const output = new Output(stream);
  output.send(Uint8Array.of(0x20, 2, 1, 0)); // a CONNACK with Session Present 1
  output.flush();
  assert.deepEqual(writes, [[0x20, 2, 1, 0]], "written before the turn ends");
  output.send(Uint8Array.of(0x30, 3, 0, 1, 0x74)); // the backlog, queued behind it in the same turn
  output.sendPublish(Uint8Array.of(0x30, 3, 0, 1, 0x75), 0, 0, false);
  await turn();
  assert.deepEqual(writes, [[0x20, 2, 1, 0]], "the rest waits for the first write");
  release();
  await turn();
  assert.deepEqual(writes[1], [0x30, 3, 0, 1, 0x74, 0x30, 3, 0, 1, 0x75], "then one write, in order");
  release();
  await output.drain();
  assert.equal(output.pending, 0);
});

Deno.test("Output.flush() with nothing queued, or a write under way, does nothing", async () => {
  const { stream, writes, release } = recordingStream();
  const output = new Output(stream);
  output.flush();
  assert.deepEqual(writes, []);
  output.send(Uint8Array.of(1, 1));
  output.flush();
  output.send(Uint8Array.of(2, 2));
  output.flush(); // the first write is under way: the second waits for it
  assert.deepEqual(writes, [[1, 1]]);
  release();
  await turn();
  assert.deepEqual(writes, [[1, 1], [2, 2]]);
  release();
  await output.drain();
});
