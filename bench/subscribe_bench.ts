/**
 * How long a persistent client making many subscriptions, one SUBSCRIBE each, holds the broker: the time from
 * the first SUBSCRIBE to the last SUBACK, with the broker in this process over TCP and its state in SQLite or
 * in memory. While a SUBSCRIBE is handled the broker serves no one else, so this is the stall other clients see.
 *
 * Run: `deno run -A bench/subscribe_bench.ts [sqlite|memory] [N]` (defaults: sqlite, 8000). Prints one line, e.g.
 * `sqlite: 8,000 SUBSCRIBEs from one persistent session in 168 ms`.
 *
 * @module
 */

import { join } from "node:path";
import { Broker } from "../lib/broker/broker.ts";
import { MemoryPersistence } from "../lib/broker/storage/memory_persistence.ts";
import { SqlitePersistence } from "../lib/broker/storage/sqlite_persistence.ts";
import { SILENT_LOGGER } from "../lib/broker/logger.ts";
import { encode } from "../lib/packet/encode.ts";
import { Framer } from "../lib/codec/framer.ts";
import { PACKET_TYPE } from "../lib/packet/packet_type.ts";

/** SUBSCRIBE packets per socket write. */
const WRITE_BATCH = 500;

/** Returns the milliseconds from the first SUBSCRIBE to the last SUBACK. */
export async function subscribeBench(storage: "sqlite" | "memory", count: number): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "mqtt-subscribe-bench-" });
  const persistence = storage === "sqlite"
    ? new SqlitePersistence(join(dir, "broker.db"))
    : new MemoryPersistence();
  const broker = new Broker({
    persistence,
    logger: SILENT_LOGGER,
    sysInterval: 0,
    maxSubscriptionsPerClient: count,
  });
  try {
    const { port } = await broker.listen({ hostname: "127.0.0.1", port: 0 });
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const framer = new Framer();
      const buffer = new Uint8Array(64 * 1024);
      let connacks = 0;
      let subacks = 0;
      let wake: (() => void) | undefined;
      const reading = (async () => {
        for (;;) {
          const n = await conn.read(buffer);
          if (n === null) return;
          framer.push(buffer.subarray(0, n));
          for (let frame = framer.next(); frame !== undefined; frame = framer.next()) {
            if (frame.header >> 4 === PACKET_TYPE.CONNACK) connacks++;
            if (frame.header >> 4 === PACKET_TYPE.SUBACK) subacks++;
          }
          wake?.();
        }
      })();
      const until = async (done: () => boolean) => {
        while (!done()) await new Promise<void>((resolve) => wake = resolve);
      };
      await conn.write(encode(
        {
          type: PACKET_TYPE.CONNECT,
          protocolVersion: 4,
          clientId: "gateway",
          cleanStart: false,
          keepAlive: 0,
        },
        4,
      ));
      await until(() => connacks === 1);
      const packets = Array.from({ length: count }, (_, i) =>
        encode({
          type: PACKET_TYPE.SUBSCRIBE,
          packetId: 1 + (i % 65535),
          subscriptions: [{
            filter: `dev/${i}/+/state`,
            qos: 1,
            noLocal: false,
            retainAsPublished: false,
            retainHandling: 0,
          }],
        }, 4));
      const start = performance.now();
      for (let i = 0; i < count; i += WRITE_BATCH) {
        const part = packets.slice(i, i + WRITE_BATCH);
        const bytes = new Uint8Array(part.reduce((sum, p) => sum + p.length, 0));
        let offset = 0;
        for (const p of part) {
          bytes.set(p, offset);
          offset += p.length;
        }
        await conn.write(bytes);
      }
      await until(() => subacks === count);
      const ms = performance.now() - start;
      conn.close();
      await reading.catch(() => {});
      return ms;
    } catch (error) {
      conn.close();
      throw error;
    }
  } finally {
    await broker.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const storage = Deno.args[0] ?? "sqlite";
  const count = Number(Deno.args[1] ?? 8000);
  if ((storage !== "sqlite" && storage !== "memory") || !Number.isInteger(count) || count < 1) {
    console.error("usage: deno run -A bench/subscribe_bench.ts [sqlite|memory] [N]");
    Deno.exit(2);
  }
  const ms = await subscribeBench(storage, count);
  console.log(
    `${storage}: ${count.toLocaleString("en")} SUBSCRIBEs from one persistent session in ${ms.toFixed(0)} ms`,
  );
}
