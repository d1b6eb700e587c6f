/**
 * Client ids are unique cluster-wide: a client connecting to node B while its session lives on node A takes it
 * over. A's connection gets DISCONNECT 0x8E [MQTT-3.1.4-3 (5.0)], B answers Session Present 1
 * [MQTT-3.2.2-2 (3.1.1)], nothing published meanwhile is lost, and QoS 2 arrives exactly once.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Packet } from "../../lib/packet/packet.ts";
import type { PublishPacket } from "../../lib/packet/publish.ts";
import { persistent } from "../broker/_v5.ts";
import {
  puback,
  pubcomp,
  publishPacket,
  pubrec,
  pubrel,
  subscribe,
  type WireClient,
} from "../broker/_wire.ts";
import { clusterTest, withCluster } from "./_cluster.ts";

const decoder = new TextDecoder();

/** Publishes `from`..`to` at QoS 2 from `pub` (each flow completed) as `m<i>`. */
async function publishQoS2(pub: WireClient, topic: string, from: number, to: number): Promise<void> {
  const version = pub.version;
  for (let i = from; i <= to; i++) {
    await pub.send(publishPacket(version, { topic, payload: `m${i}`, qos: 2, id: i }));
    await pub.expect(pubrec(version, i), `PUBREC ${i}`);
    await pub.send(pubrel(version, i));
    await pub.expect(pubcomp(version, i), `PUBCOMP ${i}`);
  }
}

/** Receives QoS 2 messages on `client`, completing each flow, until `count` distinct payloads came. */
async function receiveQoS2(client: WireClient, count: number): Promise<string[]> {
  const version = client.version;
  const got: string[] = [];
  /** Packet ids answered with PUBREC whose PUBREL has not come yet. */
  const open = new Set<number>();
  while (new Set(got).size < count || open.size > 0) {
    const packet: Packet = await client.nextPacket(`message ${got.length + 1} of ${count}`);
    if (packet.type === 3) {
      const publish = packet as PublishPacket;
      got.push(decoder.decode(publish.payload));
      open.add(publish.packetId!);
      await client.send(pubrec(version, publish.packetId!));
    } else if (packet.type === 6) {
      open.delete(packet.packetId);
      await client.send(pubcomp(version, packet.packetId));
    } else {
      assert.fail(`unexpected packet type ${packet.type}`);
    }
  }
  return got;
}

/** Skips the PUBLISHes sent before it, then expects v5 DISCONNECT 0x8E Session taken over and the close. */
async function expectTakenOver(client: WireClient): Promise<void> {
  for (;;) {
    const packet = await client.nextPacket("DISCONNECT 0x8E");
    if (packet.type === 3) continue;
    assert.equal(packet.type, 14, `expected DISCONNECT, got packet type ${packet.type}`);
    assert.equal(packet.reasonCode, 0x8e, "Session taken over [MQTT-3.1.4-3 (5.0)]");
    break;
  }
  await client.expectClosed("close after DISCONNECT 0x8E");
}

clusterTest(
  "takeover across nodes (v5): 0x8E on A, Session Present 1 on B, QoS 2 exactly once, none lost",
  (kind) =>
    withCluster(kind, 3, async ({ brokers, connect, routed }) => {
      const onA = await connect(0, persistent("x"));
      await subscribe(onA, 1, [["t/#", 2]]);
      await routed(2, 0);
      const pub = await connect(2, { version: 5, clientId: "pub" });
      await publishQoS2(pub, "t/1", 1, 5); // reach A; A's client does not acknowledge them
      const publishing = publishQoS2(pub, "t/1", 6, 30); // while the session moves
      publishing.catch(() => {});
      const onB = await connect(1, persistent("x"), true);
      await expectTakenOver(onA);
      await publishing;
      const got = await receiveQoS2(onB, 30);
      assert.equal(got.length, new Set(got).size, `no QoS 2 duplicate: ${got.join(" ")}`);
      await onB.barrier("nothing more");
      assert.equal(brokers[0]!.session("x"), undefined, "the session left A");
      assert.ok(brokers[1]!.session("x") !== undefined, "the session is on B");
    }),
);

clusterTest(
  "takeover across nodes (3.1.1): A's connection closed, B's CONNACK has Session Present 1",
  (kind) =>
    withCluster(kind, 2, async ({ connect, routed }) => {
      const spec = { version: 4 as const, clientId: "y", clean: false };
      const onA = await connect(0, spec);
      await subscribe(onA, 1, [["u/+", 1]]);
      await onA.disconnect();
      const pub = await connect(0, { version: 4, clientId: "pub" });
      await pub.send(publishPacket(4, { topic: "u/1", payload: "queued", qos: 1, id: 1 }));
      await pub.expectPacket(4, "PUBACK");
      const onA2 = await connect(0, spec, true);
      const onB = await connect(1, spec, true);
      // A's connection may get the queued message first; then it is closed [MQTT-3.1.4-2 (3.1.1)].
      while ((await onA2.nextOrEnd()) !== undefined);
      const first = await onB.nextPacket();
      assert.equal(first.type, 3);
      assert.equal(decoder.decode((first as PublishPacket).payload), "queued");
      await routed(0, 1);
    }),
);

clusterTest(
  "a clean-start connection on B ends the session held on A (Session Present 0)",
  (kind) =>
    withCluster(kind, 2, async ({ brokers, connect }) => {
      const onA = await connect(0, persistent("z"));
      await subscribe(onA, 1, [["z/#", 1]]);
      const onB = await connect(1, { version: 5, clientId: "z", clean: true }, false);
      await onA.expectDisconnect(0x8e);
      await onB.barrier();
      assert.equal(brokers[1]!.router.subscriptionCount("z"), 0, "clean start: no subscription kept");
    }),
);

clusterTest(
  "a clean start on the node that holds the session keeps the client id owned there",
  (kind) =>
    withCluster(kind, 2, async ({ brokers, connect, routed }) => {
      const first = await connect(0, persistent("k"));
      await subscribe(first, 1, [["k/#", 1]]);
      await first.disconnect();
      const again = await connect(0, { ...persistent("k"), clean: true });
      await subscribe(again, 2, [["k2/#", 1]]);
      await routed(1, 0);
      const pub = await connect(1, { version: 5, clientId: "pub" });
      for (let i = 1; i <= 3; i++) {
        await pub.send(publishPacket(5, { topic: "k2/x", payload: `m${i}`, qos: 1, id: i }));
        await pub.expectPacket(4, `PUBACK ${i}`);
        const got = await again.nextPacket(`m${i}`);
        assert.equal(got.type, 3, "still connected: its writes are not refused as another node's");
        await again.send(puback(5, (got as PublishPacket).packetId!));
      }
      await again.barrier("still connected");
      // Unique cluster-wide: the same id on B takes it over from A.
      const onB = await connect(1, persistent("k"), true);
      await again.expectDisconnect(0x8e);
      await onB.barrier();
      assert.equal(brokers[0]!.session("k"), undefined);
    }),
);

for (const version of [4, 5] as const) {
  clusterTest(
    `takeover of a session that ends with its connection answers at once (v${version})`,
    (kind) =>
      withCluster(kind, 2, async ({ connect }) => {
        const onA = await connect(0, { version, clientId: "brief", clean: true });
        const started = performance.now();
        const onB = await connect(1, { version, clientId: "brief", clean: true });
        const waited = performance.now() - started;
        if (version === 5) await onA.expectDisconnect(0x8e);
        else await onA.expectClosed();
        assert.ok(waited < 1000, `CONNACK after ${waited.toFixed(0)} ms: the old node released the id`);
        await onB.barrier();
      }),
  );
}
