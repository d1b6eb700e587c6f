/** The broker-wide counters (`lib/broker/counters.ts`), read through `Broker.counters`: totals that only grow. */

import assert from "node:assert/strict";
import { DROP, tickTime } from "../../lib/broker/counters.ts";
import { MemoryPersistence } from "../../lib/broker/storage/memory_persistence.ts";
import { ManualClock } from "../../lib/clock.ts";
import { P, puback, publishPacket, subscribe, subscribePacket, waitFor, withBroker } from "./_wire.ts";

Deno.test("Broker.counters: connections, messages and drops are totals that survive the session that made them", async () => {
  await withBroker({ maxQueued: 1 }, async ({ connect, broker }) => {
    const away = { version: 5 as const, clientId: "away", clean: false, properties: [P.sessionExpiry(3600)] };
    const first = await connect(away);
    await subscribe(first, 1, [["d", 1]]);
    await first.disconnect();
    const publisher = await connect({ version: 4, clientId: "publisher" });
    for (let id = 1; id <= 4; id++) {
      await publisher.send(publishPacket(4, { topic: "d", payload: `${id}`, qos: 1, id }));
      await publisher.expect(puback(4, id));
    }
    assert.equal(broker.counters.messagesDropped, 3, "1 queued, 3 dropped");
    assert.equal(broker.counters.messagesReceived, 4);
    const back = await connect({ ...away, clean: true }); // ends the session that dropped them
    await back.disconnect();
    await publisher.disconnect();
    assert.equal(broker.session("away")?.dropped, 0, "a new session, its own count at 0");
    assert.equal(broker.counters.messagesDropped, 3, "kept after the session ended");
    assert.equal(broker.counters.connections, 3);
    assert.equal(broker.stats, broker.counters, "stats is the same object");
  });
});

Deno.test("Broker.counters: a PUBLISH sent with a Topic Alias counts as a message sent, by its QoS", async () => {
  await withBroker({}, async ({ connect, broker }) => {
    const sub = await connect({ version: 5, clientId: "sub", properties: [P.topicAliasMaximum(10)] });
    await subscribe(sub, 1, [["t", 0]]);
    const pub = await connect({ version: 4, clientId: "pub" });
    const before = broker.counters.messagesSent;
    await pub.send(publishPacket(4, { topic: "t", payload: "a" }));
    await pub.send(publishPacket(4, { topic: "t", payload: "b" }));
    await sub.nextPacket("first PUBLISH (sets the alias)");
    await sub.nextPacket("second PUBLISH (uses it)");
    assert.equal(broker.counters.messagesSent - before, 2);
    assert.equal(broker.counters.messagesSentByQos[0], 2);
    assert.equal(broker.counters.packetsSentByType[3], 2);
  });
});

Deno.test("Broker.counters: a delivery over the client's Maximum Packet Size counts as dropped (too_large)", async () => {
  await withBroker({}, async ({ connect, broker }) => {
    const sub = await connect({ version: 5, clientId: "sub", properties: [P.maximumPacketSize(32)] });
    await subscribe(sub, 1, [["big", 1]]);
    const pub = await connect({ version: 4, clientId: "pub" });
    await pub.send(publishPacket(4, { topic: "big", payload: "x".repeat(100), qos: 1, id: 1 }));
    await pub.expect(puback(4, 1));
    await pub.send(publishPacket(4, { topic: "big", payload: "y".repeat(100) }));
    await waitFor(() => broker.counters.messagesDropped === 2, "two drops");
    assert.equal(broker.counters.messagesDroppedByReason[DROP.tooLarge], 2);
    assert.equal(broker.session("sub")!.dropped, 2);
  });
});

Deno.test("Broker.counters: a queued message that expires before it goes out counts as dropped (expired)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect, broker }) => {
    const away = { version: 5 as const, clientId: "away", clean: false, properties: [P.sessionExpiry(3600)] };
    const first = await connect(away);
    await subscribe(first, 1, [["e", 1]]);
    await first.disconnect();
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(
      publishPacket(5, { topic: "e", payload: "soon gone", qos: 1, id: 1, properties: [P.messageExpiry(5)] }),
    );
    await pub.expectPacket(4, "PUBACK");
    clock.advance(6000);
    await connect({ ...away }, true);
    await waitFor(() => broker.counters.messagesDropped === 1, "the expired message dropped");
    assert.equal(broker.counters.messagesDroppedByReason[DROP.expired], 1);
  });
});

Deno.test("Broker.counters: retained messages a SUBSCRIBE is owed past the backlog cap count as dropped broker-wide", async () => {
  await withBroker({}, async ({ connect, broker }) => {
    const pub = await connect({ version: 4, clientId: "pub" });
    for (let i = 0; i < 1500; i++) {
      await pub.send(publishPacket(4, { topic: `r/${i}`, payload: "v", qos: 1, id: i + 1, retain: true }));
    }
    await waitFor(() => broker.retained.size === 1500, "1500 retained");
    const sub = await connect({ version: 5, clientId: "sub", properties: [P.receiveMaximum(1)] });
    await sub.send(subscribePacket(5, 1, [["r/#", 1]]));
    await sub.expectPacket(9, "SUBACK");
    await sub.expectPacket(3, "the one retained PUBLISH the window takes; 1499 owed");
    await sub.send(subscribePacket(5, 2, [["r/+", 1]])); // room for 2500 - 1499 = 1001 of 1500: 499 dropped
    await sub.expectPacket(9, "SUBACK");
    const dropped = broker.session("sub")!.dropped;
    assert.equal(dropped, 499);
    assert.equal(broker.counters.messagesDropped, dropped);
    assert.equal(broker.counters.messagesDroppedByReason[DROP.retainedBacklog], dropped);
  });
});

Deno.test("Broker.counters: packets, messages by QoS, unrouted, denials by reason move exactly with known traffic", async () => {
  const authorizer = {
    canPublish: (_c: unknown, topic: string) => !topic.startsWith("secret"),
    canSubscribe: (_c: unknown, filter: string) => !filter.startsWith("secret"),
    canReceive: () => true,
  };
  await withBroker(
    { authorizer, maxSubscriptionsPerClient: 2, topicLimits: { maxLength: 100, maxDepth: 3 } },
    async ({ connect, broker }) => {
      const c = broker.counters;
      const sub = await connect({ version: 5, clientId: "sub" });
      // acl, quota (third subscription), topic_limits (depth 4): refused slots.
      await subscribe(sub, 1, [["a", 1], ["secret/x", 0], ["b", 0], ["c", 0], ["d/e/f/g", 0]], [
        1,
        0x87,
        0,
        0x97,
        0x8f,
      ]);
      assert.deepEqual(c.subscribeDenied, [1, 0, 1, 0, 1]);
      const pub = await connect({ version: 5, clientId: "pub" });
      const n = 7;
      for (let id = 1; id <= n; id++) {
        await pub.send(publishPacket(5, { topic: "a", payload: "m", qos: 1, id }));
        await pub.expectPacket(4, "PUBACK");
        const got = await sub.expectPacket(3, "PUBLISH");
        await sub.send(puback(5, got.packetId!));
      }
      await pub.send(publishPacket(5, { topic: "nobody", payload: "m", qos: 1, id: 100 }));
      await pub.expectPacket(4, "PUBACK 0x10");
      await pub.send(publishPacket(5, { topic: "secret/y", payload: "m", qos: 1, id: 101 }));
      await pub.expectPacket(4, "PUBACK 0x87");
      await pub.send(publishPacket(5, { topic: "$SYS/x", payload: "m", qos: 1, id: 102 }));
      await pub.expectPacket(4, "PUBACK 0x87");
      await waitFor(() => c.packetsReceivedByType[4] === n, "the subscriber's PUBACKs");
      assert.deepEqual(c.messagesReceivedByQos, [0, n + 3, 0]);
      assert.deepEqual(c.messagesSentByQos, [0, n, 0]);
      assert.equal(c.messagesUnrouted, 1);
      assert.deepEqual(c.publishDenied, [1, 1, 0, 0, 0]);
      assert.equal(c.packetsReceivedByType[1], 2, "two CONNECT");
      assert.equal(c.packetsSentByType[2], 2, "two CONNACK");
      assert.equal(c.packetsReceivedByType[8], 1, "one SUBSCRIBE");
      assert.equal(c.packetsSentByType[4], n + 3, "PUBACK to the publisher");
      assert.equal(c.deliveryLatency[1]!.count, n, "one latency per acknowledged delivery");
    },
  );
});

Deno.test("Broker.counters: takeovers, wills and expired sessions are counted", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect, broker }) => {
    const will = { topic: "w", payload: "gone" };
    const first = await connect({ version: 5, clientId: "dup", will, properties: [P.sessionExpiry(10)] });
    await connect({ version: 5, clientId: "dup", clean: false, properties: [P.sessionExpiry(10)] }, true);
    await first.expectDisconnect(0x8e, "DISCONNECT Session taken over");
    assert.equal(broker.counters.sessionTakeovers, 1);
    await waitFor(() => broker.counters.willsPublished === 1, "the will of the taken-over connection");
    const second = broker.session("dup")!;
    await (second.link as unknown as { close(r: string, w: boolean): Promise<void> }).close("test", false);
    clock.advance(11_000);
    assert.equal(broker.counters.sessionsExpired, 1);
  });
});

Deno.test("Broker.counters: storage commits, operations and their duration", async () => {
  await withBroker({ persistence: new MemoryPersistence() }, async ({ connect, broker }) => {
    const away = { version: 5 as const, clientId: "p", clean: false, properties: [P.sessionExpiry(3600)] };
    const c = await connect(away);
    await subscribe(c, 1, [["s", 1]]);
    await waitFor(() => broker.counters.storageCommits >= 1, "a commit");
    assert.ok(broker.counters.storageOperations >= 1);
    assert.equal(broker.counters.storageCommitFailures, 0);
    assert.equal(broker.counters.storageCommitDuration.count, broker.counters.storageCommits);
  });
});

Deno.test("tickTime() reads the clock once per turn of the event loop", async () => {
  const first = tickTime();
  const until = performance.now() + 3;
  while (performance.now() < until) {
    // the same turn: no new reading
  }
  assert.equal(tickTime(), first);
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(tickTime() >= first + 5, "a later turn reads the clock again");
});

Deno.test("Broker.counters: retained messages past maxRetained or maxRetainedBytes are counted by the limit they met", async () => {
  await withBroker({ maxRetained: 2, maxRetainedBytes: 10 }, async ({ connect, broker }) => {
    const pub = await connect({ version: 4, clientId: "pub" });
    const retain = async (id: number, topic: string, payload: string) => {
      await pub.send(publishPacket(4, { topic, payload, qos: 1, id, retain: true }));
      await pub.expect(puback(4, id));
    };
    await retain(1, "a", "1234");
    await retain(2, "b", "12345678901"); // 4 + 11 bytes: over maxRetainedBytes
    await retain(3, "c", "1234");
    await retain(4, "d", "1"); // a third topic: over maxRetained
    assert.equal(broker.retained.size, 2);
    assert.deepEqual(broker.counters.retainedRejected, [1, 1]);
  });
});
