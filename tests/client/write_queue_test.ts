import assert from "node:assert/strict";
import { WriteQueue } from "../../lib/client/write_queue.ts";
import type { ByteStream } from "../../lib/transport/transport.ts";

class RecordingStream implements ByteStream {
  writes: number[][] = [];
  gate: Promise<void> = Promise.resolve();
  fail = false;
  read(): Promise<number | null> {
    return Promise.resolve(null);
  }
  async write(data: Uint8Array): Promise<number> {
    await this.gate;
    if (this.fail) throw new Error("broken pipe");
    this.writes.push([...data]);
    return data.length;
  }
  close(): void {}
}

Deno.test("WriteQueue writes everything queued in one turn with one write", async () => {
  const stream = new RecordingStream();
  const queue = new WriteQueue(stream, () => {});
  queue.enqueue(Uint8Array.of(1));
  queue.enqueue(Uint8Array.of(2, 3));
  queue.enqueue(Uint8Array.of(4));
  assert.equal(await queue.flushed(), true);
  assert.deepEqual(stream.writes, [[1, 2, 3, 4]]);
});

Deno.test("WriteQueue gathers what arrives during a write into the next write, in order", async () => {
  const stream = new RecordingStream();
  let open!: () => void;
  stream.gate = new Promise((resolve) => open = resolve);
  const queue = new WriteQueue(stream, () => {});
  queue.enqueue(Uint8Array.of(1));
  await Promise.resolve();
  await Promise.resolve();
  queue.enqueue(Uint8Array.of(2));
  queue.enqueue(Uint8Array.of(3));
  open();
  assert.equal(await queue.flushed(), true);
  assert.deepEqual(stream.writes, [[1], [2, 3]]);
});

Deno.test("WriteQueue reports a failed write once; waiters hear false", async () => {
  const stream = new RecordingStream();
  stream.fail = true;
  const errors: string[] = [];
  const queue = new WriteQueue(stream, (error) => errors.push(error.message));
  queue.enqueue(Uint8Array.of(1));
  assert.equal(await queue.flushed(), false);
  queue.enqueue(Uint8Array.of(2));
  assert.equal(await queue.flushed(), false);
  assert.deepEqual(errors, ["broken pipe"]);
});
