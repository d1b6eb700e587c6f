/**
 * Idle clients for the metrics benchmark: `n` MQTT 3.1.1 sessions connected to a broker in this process over
 * in-memory streams (no file descriptor each), each with one subscription (one in ten a `$share` one), so a
 * scrape walks as many sessions and subscriptions as a broker with `n` real clients.
 *
 * @module
 */

import type { Broker } from "../lib/broker/broker.ts";
import { memoryPair } from "../lib/transport/memory.ts";
import type { ByteStream } from "../lib/transport/transport.ts";
import { connectPacket, subscribePacket } from "../tests/broker/_wire.ts";

/** CONNACK (4 bytes) and a one-slot SUBACK (5 bytes) of MQTT 3.1.1. */
const ANSWER_BYTES = 9;
const BATCH = 500;

/** Connects `n` idle clients to `broker`; resolves with their ends of the streams once all are subscribed. */
export async function connectIdle(broker: Broker, n: number): Promise<ByteStream[]> {
  const ends: ByteStream[] = [];
  for (let from = 0; from < n; from += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, n - from) }, async (_, j) => {
      const i = from + j;
      const [ours, theirs] = memoryPair();
      broker.handle(theirs, { remoteAddress: `10.0.${i >> 8 & 255}.${i & 255}:1883`, allowAnonymous: true });
      await ours.write(connectPacket({ version: 4, clientId: `idle-${i}` }));
      const filter = i % 10 === 0 ? `$share/g/idle/${i % 100}` : `idle/${i}`;
      await ours.write(subscribePacket(4, 1, [[filter, 1]]));
      const buffer = new Uint8Array(64);
      let got = 0;
      while (got < ANSWER_BYTES) {
        const read = await ours.read(buffer.subarray(got));
        if (read === null) throw new Error(`idle client ${i} was closed`);
        got += read;
      }
      return ours;
    });
    ends.push(...await Promise.all(batch));
  }
  return ends;
}
