/**
 * Admin API benchmark: the time the broker takes to answer a page of 100 clients with 10,000 connected (the
 * issue's target: under 20 ms, median), sorted by client id (the cursor walk) and by queued messages (the
 * bounded top-K selection), over a real HTTP round trip to the admin server on loopback.
 *
 * Run alone: `deno run --allow-net --allow-read bench/admin_bench.ts`
 *
 * @module
 */

import { type BenchGroup, median, renderGroup } from "./_report.ts";
import { Broker } from "../lib/broker/broker.ts";
import { AdminAuth } from "../lib/admin/auth.ts";
import { startAdmin } from "../lib/admin/server.ts";
import { memoryPair } from "../lib/transport/memory.ts";
import { encodeConnect } from "../lib/packet/connect.ts";

const CLIENTS = 10_000;
const RUNS = 50;

/** Runs the admin benchmark. */
export async function adminBench(): Promise<BenchGroup> {
  const broker = new Broker({ sysInterval: 0, maxConnectionsPerAddress: Infinity, connectRatePerAddress: 0 });
  await broker.start();
  const ends: { close(): void }[] = [];
  const served: Promise<void>[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const [ours, theirs] = memoryPair();
    ends.push(ours);
    served.push(
      broker.handle(theirs, { remoteAddress: `10.0.${i >> 8}.${i & 255}:1883`, allowAnonymous: true }),
    );
    const clientId = `client-${String((i * 7919) % CLIENTS).padStart(5, "0")}`;
    await ours.write(
      encodeConnect({ type: 1, protocolVersion: 5, clientId, cleanStart: true, keepAlive: 60 }),
    );
  }
  while (broker.inspect.clients({ limit: 1, state: "connected" }).meta.total < CLIENTS) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const admin = await startAdmin(broker, {
    listeners: [{ name: "bench", type: "http", port: 0, allowAnonymous: true }],
    auth: new AdminAuth(),
  });
  const base = `http://127.0.0.1:${admin.listeners[0]!.port}`;
  const time = async (path: string): Promise<number> => {
    const times: number[] = [];
    for (let r = 0; r < RUNS + 5; r++) {
      const start = performance.now();
      const response = await fetch(`${base}${path}`);
      const body = await response.json();
      if (response.status !== 200 || body.data.length !== 100) {
        throw new Error(`bench: ${path} answered badly`);
      }
      if (r >= 5) times.push(performance.now() - start);
    }
    return median(times);
  };
  const byId = await time("/api/v1/clients?limit=100&after=client-05000");
  const byQueued = await time("/api/v1/clients?limit=100&sort=queued");
  await broker.close();
  for (const end of ends) end.close();
  await Promise.all(served);
  return {
    title: "Admin API",
    rows: [
      {
        name: `clients page of 100 with ${CLIENTS.toLocaleString("en-US")} connected, by client id`,
        unit: "ms",
        ours: byId,
        higherIsBetter: false,
      },
      {
        name: `clients page of 100 with ${CLIENTS.toLocaleString("en-US")} connected, by queued`,
        unit: "ms",
        ours: byQueued,
        higherIsBetter: false,
      },
    ],
    notes: [
      `Median of ${RUNS} requests over loopback HTTP (fetch to JSON parsed); the issue's target is < 20 ms.`,
    ],
  };
}

if (import.meta.main) console.log(renderGroup(await adminBench()));
