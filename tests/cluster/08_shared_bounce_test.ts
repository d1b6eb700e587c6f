/**
 * A `$share` message forwarded to a node whose last member of the group has just left (the publisher's node
 * routed by a table that did not know yet): a QoS 1/2 message is passed on once to another node with a member
 * (CLUSTER.md §3.6), not dropped there.
 *
 * @module
 */

import assert from "node:assert/strict";
import { payloads } from "../broker/_v5.ts";
import { puback, publishPacket, subscribe, unsubackPacket, unsubscribePacket } from "../broker/_wire.ts";
import { clusterTest, withCluster } from "./_cluster.ts";

clusterTest(
  "a $share QoS 1 message sent to a node whose last member just left goes on to a member on another node",
  (kind) =>
    withCluster(kind, 3, async ({ brokers, connect, routed }) => {
      const leaving = await connect(1, { version: 5, clientId: "leaving" });
      const staying = await connect(2, { version: 5, clientId: "staying" });
      await subscribe(leaving, 1, [["$share/g/jobs", 1]]);
      await subscribe(staying, 1, [["$share/g/jobs", 1]]);
      await routed(0, 1);
      await routed(0, 2);
      await routed(1, 2);
      await leaving.send(unsubscribePacket(5, 2, ["$share/g/jobs"]));
      await leaving.expect(unsubackPacket(5, 2, [0]), "UNSUBACK");
      await routed(0, 1);
      // Node 0 still believes node 1 has a member: the removal has not reached it yet.
      const publisherNode = brokers[0]!.cluster!;
      publisherNode.remote.apply({
        kind: "route",
        node: brokers[1]!.cluster!.incarnation,
        op: "add",
        filter: "$share/g/jobs",
        version: publisherNode.remote.version,
      });
      const pub = await connect(0, { version: 5, clientId: "pub" });
      for (let id = 1; id <= 4; id++) {
        await pub.send(publishPacket(5, { topic: "jobs", payload: `j${id}`, qos: 1, id }));
        await pub.expect(puback(5, id));
      }
      const got: string[] = [];
      const deadline = Date.now() + 3000;
      while (got.length < 4 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        for (const packet of await staying.collect()) {
          got.push(...payloads([packet]));
          if (packet.type === 3 && packet.packetId !== undefined) {
            await staying.send(puback(5, packet.packetId));
          }
        }
      }
      assert.deepEqual(got.sort(), ["j1", "j2", "j3", "j4"], "every message reached the member that stayed");
      assert.deepEqual(payloads(await leaving.collect()), [], "nothing to the client that left the group");
    }),
);
