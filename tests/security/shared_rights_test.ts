/**
 * Shared subscriptions whose members have different read rights (issue #15 item 4): a message goes only to a
 * member who may read its topic, so none is handed to a member who then drops it.
 */

import assert from "node:assert/strict";
import type { Authorizer } from "../../lib/broker/auth/auth.ts";
import type { Message } from "../../lib/broker/storage/persistence.ts";
import type { PublishPacket } from "../../lib/packet/publish.ts";
import { type SubscriptionRouter, TopicRouter } from "../../lib/topic/router.ts";
import { puback, subscribe, v, VERSIONS, type WireClient, withBroker } from "../broker/_wire.ts";
import { NaiveRouter } from "../topic/_naive_router.ts";

/** "reader-a" may read a/... only; "reader-all" everything. Subscribing is free. */
const RIGHTS: Authorizer = {
  canPublish: () => true,
  canSubscribe: () => true,
  canReceive: (client, topic) => client.clientId !== "reader-a" || topic.startsWith("a/"),
};

const decoder = new TextDecoder();

/** Reads QoS 1 PUBLISH (acknowledging each) until PINGRESP proves there are no more; returns their topics. */
async function drain(client: WireClient): Promise<string[]> {
  const topics: string[] = [];
  await client.send(Uint8Array.of(0xc0, 0));
  for (;;) {
    const packet = await client.nextPacket("PUBLISH or PINGRESP");
    if (packet.type === 13) return topics;
    assert.equal(packet.type, 3);
    const publish = packet as PublishPacket;
    topics.push(`${publish.topic}=${decoder.decode(publish.payload)}`);
    await client.send(puback(client.version, publish.packetId!));
  }
}

function message(topic: string, i: number): Message {
  return { topic, payload: new TextEncoder().encode(String(i)), qos: 1, retain: false, origin: "pub" };
}

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: a shared group gives each message to a member who may read it, and loses none`, async () => {
    await withBroker({ authorizer: RIGHTS }, async ({ broker, connect }) => {
      const a = await connect({ version, clientId: "reader-a" });
      const all = await connect({ version, clientId: "reader-all" });
      await subscribe(a, 1, [["$share/g/#", 1]]);
      await subscribe(all, 1, [["$share/g/#", 1]]);
      for (let i = 0; i < 10; i++) broker.publish(message("b/x", i)); // round-robin would give half to reader-a
      for (let i = 0; i < 10; i++) broker.publish(message("a/x", i));
      const toA = await drain(a);
      const toAll = await drain(all);
      assert.ok(toA.every((t) => t.startsWith("a/")), `reader-a got only a/...: ${toA}`);
      assert.equal(toA.length + toAll.length, 20, `every message reached a member: ${toA} | ${toAll}`);
      assert.equal(
        toAll.filter((t) => t.startsWith("b/")).length,
        10,
        "every b/... message went to reader-all",
      );
      await a.disconnect();
      await all.disconnect();
    });
  });

  Deno.test(`${v(version)}: a shared group with no member who may read the topic delivers it to none`, async () => {
    await withBroker({ authorizer: RIGHTS }, async ({ broker, connect }) => {
      const a = await connect({ version, clientId: "reader-a" });
      await subscribe(a, 1, [["$share/g/#", 1]]);
      broker.publish(message("b/x", 1));
      assert.deepEqual(await drain(a), []);
      assert.equal(broker.session("reader-a")?.dropped, 0, "not handed to reader-a at all");
      await a.disconnect();
    });
  });
}

for (
  const [name, make] of [["TopicRouter", () => new TopicRouter()], [
    "NaiveRouter",
    () => new NaiveRouter(),
  ]] as const
) {
  Deno.test(`${name}.match() picks only shared members canReceive allows, round-robin among them; none when none may`, () => {
    const router: SubscriptionRouter = make();
    const sub = {
      filter: "$share/g/#",
      qos: 1,
      noLocal: false,
      retainAsPublished: false,
      retainHandling: 0,
    } as const;
    for (const id of ["m1", "m2", "m3"]) router.subscribe(id, sub);
    const canReceive = (clientId: string, topic: string) => clientId !== "m2" || topic === "open";
    const picks = (topic: string, n: number) =>
      Array.from({ length: n }, () => router.match(topic, { canReceive }).map((d) => d.clientId).join());
    assert.deepEqual(picks("closed", 4), ["m1", "m3", "m1", "m3"]);
    assert.ok(picks("open", 3).includes("m2"), "m2 is picked where it may read");
    const none = router.match("closed", { canReceive: () => false });
    assert.deepEqual(none, [], "no member may read: no delivery");
  });
}
