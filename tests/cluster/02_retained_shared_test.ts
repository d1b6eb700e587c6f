/**
 * What the cluster shares besides routes: retained messages (set on any node, reaching a SUBSCRIBE on any node),
 * `$share` groups (one member cluster-wide, a local member first), No Local and message expiry across nodes.
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertPublish, payloads } from "../broker/_v5.ts";
import { P, publishPacket, subOptions, subscribe, u32, VERSIONS, waitFor } from "../broker/_wire.ts";
import { clusterTest, withCluster } from "./_cluster.ts";

for (const version of VERSIONS) {
  clusterTest(
    `a retained message set on A reaches a later SUBSCRIBE on B (v${version})`,
    (kind) =>
      withCluster(kind, 2, async ({ brokers, connect }) => {
        const pub = await connect(0, { version, clientId: "pub" });
        await pub.send(
          publishPacket(version, { topic: "r/t", payload: "kept", retain: true, qos: 1, id: 1 }),
        );
        await pub.expectPacket(4, "PUBACK");
        await waitFor(() => brokers[1]!.retained.get("r/t") !== undefined, "B to hold the retained message");
        const sub = await connect(1, { version, clientId: "sub" });
        await subscribe(sub, 1, [["r/#", 0]]);
        assertPublish(await sub.nextPacket(), { topic: "r/t", payload: "kept", retain: true });
      }),
  );
}

clusterTest(
  "an empty retained PUBLISH on B deletes what A set, on every node",
  (kind) =>
    withCluster(kind, 3, async ({ brokers, connect }) => {
      const a = await connect(0, { version: 5, clientId: "a" });
      await a.send(publishPacket(5, { topic: "r/x", payload: "v", retain: true }));
      await waitFor(() => brokers.every((b) => b.retained.get("r/x") !== undefined), "every node to hold it");
      const b = await connect(1, { version: 5, clientId: "b" });
      await b.send(publishPacket(5, { topic: "r/x", payload: "", retain: true }));
      await waitFor(() => brokers.every((b) => b.retained.get("r/x") === undefined), "every node to drop it");
    }),
);

clusterTest(
  "a node started later loads every retained message",
  (kind) =>
    withCluster(kind, 1, async ({ brokers, connect, addBroker }) => {
      const a = await connect(0, { version: 5, clientId: "a" });
      await a.send(publishPacket(5, { topic: "late/r", payload: "v", retain: true, qos: 1, id: 1 }));
      await a.expectPacket(4, "PUBACK");
      const index = await addBroker();
      assert.equal(new TextDecoder().decode(brokers[index]!.retained.get("late/r")?.payload), "v");
    }),
);

clusterTest(
  "$share: each message reaches one member cluster-wide, a local member first",
  (kind) =>
    withCluster(kind, 2, async ({ connect, routed }) => {
      const remote = await connect(1, { version: 5, clientId: "remote" });
      await subscribe(remote, 1, [["$share/g/jobs/+", 1]]);
      await routed(0, 1);
      const pub = await connect(0, { version: 5, clientId: "pub" });
      // No member on A: the group's member on B gets it.
      await pub.send(publishPacket(5, { topic: "jobs/1", payload: "j1" }));
      assertPublish(await remote.nextPacket(), { topic: "jobs/1", payload: "j1" });
      // A member on A now: prefer local, B gets nothing.
      const local = await connect(0, { version: 5, clientId: "local" });
      await subscribe(local, 1, [["$share/g/jobs/+", 1]]);
      for (let i = 2; i <= 5; i++) await pub.send(publishPacket(5, { topic: `jobs/${i}`, payload: `j${i}` }));
      for (let i = 2; i <= 5; i++) {
        assertPublish(await local.nextPacket(), { topic: `jobs/${i}`, payload: `j${i}` });
      }
      await remote.barrier("nothing for the remote member while a local one is there");
    }),
);

clusterTest(
  "$share across three nodes: each message once, to exactly one of the nodes' members",
  (kind) =>
    withCluster(kind, 3, async ({ connect, routed }) => {
      const members = [
        await connect(1, { version: 5, clientId: "m1" }),
        await connect(2, { version: 5, clientId: "m2" }),
      ];
      for (const member of members) await subscribe(member, 1, [["$share/g/w", 0]]);
      await routed(0, 1);
      await routed(0, 2);
      const pub = await connect(0, { version: 5, clientId: "pub" });
      for (let i = 0; i < 10; i++) await pub.send(publishPacket(5, { topic: "w", payload: `${i}` }));
      const got: string[] = [];
      const deadline = Date.now() + 2000;
      while (got.length < 10 && Date.now() < deadline) {
        // In-memory clients answer in microtasks: let the forwards' end-of-turn flush run.
        await new Promise((resolve) => setTimeout(resolve, 1));
        for (const member of members) got.push(...payloads(await member.collect()));
      }
      assert.deepEqual(got.sort((a, b) => Number(a) - Number(b)), [
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
      ]);
      for (const member of members) assert.deepEqual(await member.collect(), [], "no copy after the ten");
    }),
);

clusterTest(
  "No Local holds across nodes: a publisher's own subscription on its node is skipped",
  (kind) =>
    withCluster(kind, 2, async ({ connect, routed }) => {
      const other = await connect(1, { version: 5, clientId: "other" });
      await subscribe(other, 1, [["nl/t", 0]]);
      await routed(0, 1);
      const self = await connect(0, { version: 5, clientId: "self" });
      await subscribe(self, 1, [["nl/t", subOptions(0, { noLocal: true })]]);
      await self.send(publishPacket(5, { topic: "nl/t", payload: "mine" }));
      assertPublish(await other.nextPacket(), { topic: "nl/t", payload: "mine" });
      await self.barrier("its own message is not sent back [MQTT-3.8.3-3 (5.0)]");
    }),
);

clusterTest(
  "message expiry across nodes: the remaining interval is sent, an expired message is not",
  (kind) =>
    withCluster(kind, 2, async ({ connect, routed }) => {
      const sub = await connect(1, {
        version: 5,
        clientId: "sub",
        clean: false,
        properties: [P.sessionExpiry(60)],
      });
      await subscribe(sub, 1, [["e/#", 1]]);
      await routed(0, 1);
      await sub.disconnect();
      const pub = await connect(0, { version: 5, clientId: "pub" });
      await pub.send(
        publishPacket(5, { topic: "e/short", payload: "gone", qos: 1, id: 1, properties: [0x02, u32(1)] }),
      );
      await pub.expectPacket(4, "PUBACK");
      await pub.send(
        publishPacket(5, { topic: "e/long", payload: "kept", qos: 1, id: 2, properties: [0x02, u32(100)] }),
      );
      await pub.expectPacket(4, "PUBACK");
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const back = await connect(1, {
        version: 5,
        clientId: "sub",
        clean: false,
        properties: [P.sessionExpiry(60)],
      }, true);
      const got = await back.nextPacket();
      assert.equal(got.type, 3);
      const publish = got as Extract<typeof got, { type: 3 }>;
      assert.equal(publish.topic, "e/long", "the expired message is not delivered (5.0 section 3.3.2.3.3)");
      const left = publish.properties?.messageExpiryInterval ?? 0;
      assert.ok(left > 0 && left < 100, `remaining expiry ${left}`);
    }),
);
