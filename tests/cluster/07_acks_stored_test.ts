/**
 * What an acknowledgement promises across nodes: a CONNACK of a client with a will goes out only once the will
 * is in the engine (so the node that adopts the client after its node dies publishes it, exactly once), and a
 * SUBACK only once the subscription's route is in the engine (so a publisher on any node that has applied the
 * route version stored then reaches it).
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertPublish, payloads, persistent } from "../broker/_v5.ts";
import {
  disconnectPacket,
  puback,
  publishPacket,
  subscribe,
  waitFor,
  type WireClient,
} from "../broker/_wire.ts";
import { clusterTest, MEMORY, withCluster } from "./_cluster.ts";

/** Collects PUBLISH payloads on `clients` for `ms`. */
async function gather(clients: readonly WireClient[], ms: number): Promise<string[]> {
  const got: string[] = [];
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    for (const client of clients) got.push(...payloads(await client.collect()));
  }
  return got;
}

for (const path of ["claimed", "owned"] as const) {
  Deno.test(`a will is in the engine before its CONNACK: the node dying right after it still has it published once (id ${path} at CONNECT)`, () =>
    withCluster(MEMORY, 3, async ({ brokers, engines, connect, routed }) => {
      const memory = engines.memory!;
      const watchers = [
        await connect(1, { version: 5, clientId: "w1" }),
        await connect(2, { version: 5, clientId: "w2" }),
      ];
      for (const watcher of watchers) await subscribe(watcher, 1, [["will/#", 0]]);
      await routed(0, 1);
      await routed(0, 2);
      if (path === "owned") {
        // The session stays on node 0, owned there: the next CONNECT needs no claim.
        const first = await connect(0, persistent("dies"));
        await first.send(disconnectPacket(0));
        await waitFor(() => brokers[0]!.session("dies")?.link === undefined, "the session offline");
      }
      memory.faults.delayMs = 40; // every engine call is slow: an unawaited will write is still on its way
      await connect(
        0,
        { ...persistent("dies"), will: { topic: "will/dies", payload: "gone" } },
        path === "owned",
      );
      memory.partition(brokers[0]!.cluster!.incarnation, true); // as SIGKILL: no lease, no more writes
      memory.faults.delayMs = 0;
      const got = await gather(watchers, 2500);
      assert.deepEqual(got, ["gone", "gone"], "each watcher once: one publication, by the adopter");
    }, { leaseMs: 300 }));
}

clusterTest(
  "a SUBACK means the route is stored: a node that applied the version stored by then routes to it",
  (kind) =>
    withCluster(kind, 2, async ({ brokers, engines, connect }) => {
      const pub = await connect(0, { version: 5, clientId: "pub" });
      const sub = await connect(1, { version: 5, clientId: "sub" });
      if (engines.memory !== undefined) engines.memory.faults.delayMs = 20;
      await subscribe(sub, 1, [["fresh/#", 1]]);
      // No waiting for the summary to flush: what is stored when the SUBACK is out is what was promised.
      const wanted = brokers[1]!.cluster!.storedVersion;
      if (engines.memory !== undefined) engines.memory.faults.delayMs = 0;
      const at = brokers[0]!.cluster!;
      await waitFor(() => at.sys.routesVersion >= wanted, `node 0 to apply route version ${wanted}`);
      await pub.send(publishPacket(5, { topic: "fresh/1", payload: "hello", qos: 1, id: 1 }));
      await pub.expect(puback(5, 1));
      assertPublish(await sub.nextPacket("the message routed from node 0"), {
        topic: "fresh/1",
        payload: "hello",
        qos: 1,
      });
    }),
);
