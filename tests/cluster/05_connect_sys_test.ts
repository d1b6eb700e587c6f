/**
 * Opening a session in a cluster is asynchronous (the client id is claimed first): packets sent right behind
 * CONNECT wait for it and are handled in order. `$SYS/cluster/...` carries cluster-wide totals.
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertPublish } from "../broker/_v5.ts";
import {
  concat,
  connectPacket,
  publishPacket,
  subackPacket,
  subscribe,
  subscribePacket,
} from "../broker/_wire.ts";
import type { PublishPacket } from "../../lib/packet/publish.ts";
import { MEMORY, withCluster } from "./_cluster.ts";

Deno.test("packets sent right behind CONNECT wait for the claim and are handled after CONNACK, in order", () =>
  withCluster(MEMORY, 2, async ({ engines, open, connect }) => {
    engines.memory!.faults.delayMs = 30; // every engine call takes a while
    const client = await open(1, 5);
    await client.send(concat(
      connectPacket({ version: 5, clientId: "eager" }),
      subscribePacket(5, 1, [["eager/#", 0]]),
      publishPacket(5, { topic: "eager/self", payload: "first" }),
    ));
    const connack = await client.expectPacket(2, "CONNACK first");
    assert.equal(connack.reasonCode, 0);
    await client.expect(subackPacket(5, 1, [0]), "SUBACK after CONNACK");
    assertPublish(await client.nextPacket(), { topic: "eager/self", payload: "first" });
    engines.memory!.faults.delayMs = 0;
    await connect(0, { version: 5, clientId: "other" });
  }));

Deno.test("$SYS/cluster totals: nodes, connected clients summed over every node, and the route version", () =>
  withCluster(MEMORY, 2, async ({ brokers, connect }) => {
    const watcher = await connect(0, { version: 5, clientId: "watch" });
    await connect(1, { version: 5, clientId: "c1" });
    await connect(1, { version: 5, clientId: "c2" });
    await subscribe(watcher, 1, [["$SYS/cluster/#", 0]]);
    const seen = new Map<string, string>();
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && seen.get("$SYS/cluster/clients/connected") !== "3") {
      const packet = await watcher.nextPacket();
      if (packet.type !== 3) continue;
      const publish = packet as PublishPacket;
      seen.set(publish.topic, new TextDecoder().decode(publish.payload));
    }
    assert.equal(seen.get("$SYS/cluster/clients/connected"), "3");
    assert.equal(seen.get("$SYS/cluster/nodes"), "2");
    assert.ok(Number(seen.get("$SYS/cluster/routes/version")) >= brokers[1]!.cluster!.storedVersion);
  }, { broker: { sysInterval: 1 } }));
