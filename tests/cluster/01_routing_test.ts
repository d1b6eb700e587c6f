/**
 * Messages across nodes: QoS 0/1/2 with wildcards, one forward per interested node, QoS 1/2 acknowledged only
 * once the forward is durable, local QoS 0 never through the engine, `$SYS` never forwarded.
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertPublish } from "../broker/_v5.ts";
import { puback, pubcomp, publishPacket, pubrec, pubrel, subscribe, VERSIONS } from "../broker/_wire.ts";
import { clusterTest, spyForwards, withCluster } from "./_cluster.ts";

for (const version of VERSIONS) {
  clusterTest(
    `QoS 0 published on A reaches a wildcard subscriber on B (v${version})`,
    (kind) =>
      withCluster(kind, 2, async ({ connect, routed }) => {
        const sub = await connect(1, { version, clientId: "sub" });
        await subscribe(sub, 1, [["sport/+/score", 0]]);
        await routed(0, 1);
        const pub = await connect(0, { version, clientId: "pub" });
        await pub.send(publishPacket(version, { topic: "sport/tennis/score", payload: "15-0" }));
        assertPublish(await sub.nextPacket(), { topic: "sport/tennis/score", payload: "15-0" });
      }),
  );

  clusterTest(
    `QoS 1 across nodes: PUBACK on A, the message on B at QoS 1 (v${version})`,
    (kind) =>
      withCluster(kind, 2, async ({ connect, routed }) => {
        const sub = await connect(1, { version, clientId: "sub" });
        await subscribe(sub, 1, [["a/#", 1]]);
        await routed(0, 1);
        const pub = await connect(0, { version, clientId: "pub" });
        await pub.send(publishPacket(version, { topic: "a/b", payload: "one", qos: 1, id: 7 }));
        await pub.expect(puback(version, 7), "PUBACK");
        const got = assertPublish(await sub.nextPacket(), { topic: "a/b", payload: "one", qos: 1 });
        await sub.send(puback(version, got.packetId!));
        await sub.barrier();
      }),
  );

  clusterTest(
    `QoS 2 across nodes is delivered exactly once, also when the publisher resends (v${version})`,
    (kind) =>
      withCluster(kind, 2, async ({ connect, routed }) => {
        const sub = await connect(1, { version, clientId: "sub" });
        await subscribe(sub, 1, [["q/+", 2]]);
        await routed(0, 1);
        const pub = await connect(0, { version, clientId: "pub" });
        await pub.send(publishPacket(version, { topic: "q/2", payload: "once", qos: 2, id: 9 }));
        await pub.expect(pubrec(version, 9), "PUBREC");
        // The same PUBLISH again before PUBREL (DUP): answered, not delivered again (section 4.3.3).
        await pub.send(publishPacket(version, { topic: "q/2", payload: "once", qos: 2, id: 9, dup: true }));
        await pub.expect(pubrec(version, 9), "PUBREC again");
        await pub.send(pubrel(version, 9));
        await pub.expect(pubcomp(version, 9), "PUBCOMP");
        const got = assertPublish(await sub.nextPacket(), { topic: "q/2", payload: "once", qos: 2 });
        await sub.send(pubrec(version, got.packetId!));
        await sub.expect(pubrel(version, got.packetId!), "PUBREL");
        await sub.send(pubcomp(version, got.packetId!));
        await sub.barrier("no second copy");
      }),
  );
}

clusterTest(
  "one forward per interested node, however many subscribers and filters match there",
  (kind) =>
    withCluster(kind, 3, async ({ brokers, connect, routed }) => {
      const subs = [];
      for (let i = 0; i < 4; i++) {
        const sub = await connect(1 + (i % 2), { version: 5, clientId: `s${i}` });
        await subscribe(sub, 1, [["f/#", 0], ["f/+/x", 0]]);
        subs.push(sub);
      }
      await routed(0, 1);
      await routed(0, 2);
      const sent = spyForwards(brokers[0]!.cluster!.engine);
      const pub = await connect(0, { version: 5, clientId: "pub" });
      await pub.send(publishPacket(5, { topic: "f/y/x", payload: "p" }));
      for (const sub of subs) assertPublish(await sub.nextPacket(), { topic: "f/y/x", payload: "p" });
      for (const sub of subs) await sub.barrier("one copy per subscriber");
      assert.equal(sent.length, 2, "one forward to each of the two other nodes");
      assert.deepEqual(sent.map((batch) => batch.messages.length), [1, 1]);
    }),
);

clusterTest(
  "QoS 0 between clients of one node never goes through the engine",
  (kind) =>
    withCluster(kind, 2, async ({ brokers, connect }) => {
      const sent = spyForwards(brokers[0]!.cluster!.engine);
      const sub = await connect(0, { version: 5, clientId: "sub" });
      await subscribe(sub, 1, [["local/#", 0]]);
      const pub = await connect(0, { version: 5, clientId: "pub" });
      await pub.send(publishPacket(5, { topic: "local/x", payload: "here" }));
      assertPublish(await sub.nextPacket(), { topic: "local/x", payload: "here" });
      assert.equal(sent.length, 0);
    }),
);

clusterTest(
  "$SYS is never forwarded: each node's own $SYS/broker and the cluster totals stay local",
  (kind) =>
    withCluster(kind, 2, async ({ brokers, connect, routed }) => {
      const sub = await connect(1, { version: 5, clientId: "sub" });
      await subscribe(sub, 1, [["$SYS/#", 0]]);
      await routed(0, 1);
      const sent = spyForwards(brokers[0]!.cluster!.engine);
      brokers[0]!.publish({ topic: "$SYS/broker/x", payload: new Uint8Array([1]), qos: 0, retain: false });
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(sent.length, 0);
    }),
);
