/**
 * MQTT 5.0 features on the wire (issue #6): topic aliases both ways, subscription identifiers, subscription
 * options, shared subscriptions, message expiry, flow control, packet size limits, request/response, payload
 * format, user properties, problem information, what CONNACK advertises and every reason code the broker
 * disconnects or refuses with. Exact bytes where the broker's answer is fixed by the spec; decoded packets where
 * the order of identifiers or the wording of a Reason String is the broker's to choose.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { leveledLogger } from "../../lib/broker/logger.ts";
import type { PublishPacket } from "../../lib/packet/publish.ts";
import { decode } from "../../lib/packet/decode.ts";
import {
  bin,
  concat,
  connectPacket,
  connectV5,
  hex,
  P,
  packet,
  props,
  puback,
  pubcomp,
  publishPacket,
  pubrec,
  pubrel,
  str,
  subackPacket,
  subOptions,
  subscribe,
  subscribePacket,
  unsubackPacket,
  unsubscribePacket,
  waitFor,
  withBroker,
} from "./_wire.ts";
import { assertPublish, denyPublish, expectAck, P5, payloads, persistent } from "./_v5.ts";

/** Waits until the broker saw `clientId`'s connection go (its session stays when it has an expiry). */
async function gone(broker: { session(id: string): { link: unknown } | undefined }, clientId: string) {
  await waitFor(() => broker.session(clientId)?.link === undefined, `the broker to see ${clientId} go`);
}

// ---- Topic aliases, client to broker (5.0 section 3.3.2.3.4) ----------------------------------------------

Deno.test("v5: Topic Aliases 1..Topic Alias Maximum are accepted, set, used and replaced [MQTT-3.3.2-12 (5.0)]", async () => {
  await withBroker({ topicAliasMaximum: 3 }, async (context) => {
    const sub = await context.connect({ version: 5, clientId: "sub" });
    await subscribe(sub, 1, [["t/#", 0]]);
    const { client: pub, connack } = await connectV5(context, { clientId: "pub" });
    assert.equal(connack.properties?.topicAliasMaximum, 3, "CONNACK advertises the Topic Alias Maximum");
    const topics = ["t/one", "t/two", "t/three"];
    for (const [i, topic] of topics.entries()) {
      await pub.send(publishPacket(5, { topic, payload: `set ${i + 1}`, properties: [P.topicAlias(i + 1)] }));
    }
    for (const [i] of topics.entries()) {
      await pub.send(
        publishPacket(5, { topic: "", payload: `use ${i + 1}`, properties: [P.topicAlias(i + 1)] }),
      );
    }
    // A PUBLISH with a topic and a known alias replaces the mapping.
    await pub.send(
      publishPacket(5, { topic: "t/uno", payload: "remap 1", properties: [P.topicAlias(1)] }),
      publishPacket(5, { topic: "", payload: "use 1 again", properties: [P.topicAlias(1)] }),
    );
    // The subscriber allows no aliases: it gets every topic in full and no Topic Alias property.
    for (const [i, topic] of topics.entries()) {
      await sub.expect(publishPacket(5, { topic, payload: `set ${i + 1}` }));
    }
    for (const [i, topic] of topics.entries()) {
      await sub.expect(
        publishPacket(5, { topic, payload: `use ${i + 1}` }),
        "the alias stands for its topic",
      );
    }
    await sub.expect(publishPacket(5, { topic: "t/uno", payload: "remap 1" }));
    await sub.expect(publishPacket(5, { topic: "t/uno", payload: "use 1 again" }), "the replaced mapping");
    await pub.barrier("the publisher stays connected");
    await pub.disconnect();
    await sub.disconnect();
  });
});

for (const [maximum, alias] of [[3, 4], [10, 65535], [0, 1]] as const) {
  Deno.test(
    `v5: Topic Alias ${alias} above the Topic Alias Maximum ${maximum} is DISCONNECT 0x94 [MQTT-3.3.2-9 (5.0)]`,
    async () => {
      await withBroker({ topicAliasMaximum: maximum }, async ({ connect }) => {
        const sub = await connect({ version: 5, clientId: "sub" });
        await subscribe(sub, 1, [["#", 0]]);
        const pub = await connect({ version: 5, clientId: "pub" });
        await pub.trySend(publishPacket(5, { topic: "a", payload: "x", properties: [P.topicAlias(alias)] }));
        await pub.expectDisconnect(0x94, "DISCONNECT 0x94 Topic Alias invalid");
        await sub.barrier("nothing was routed");
        await sub.disconnect();
      });
    },
  );
}

Deno.test("v5: Topic Alias 0 is DISCONNECT 0x94 [MQTT-3.3.2-8 (5.0)] (5.0 section 3.3.4)", async () => {
  await withBroker({}, async ({ connect }) => {
    const pub = await connect({ version: 5, clientId: "pub" });
    // "A Topic Alias value of 0 or greater than the Maximum Topic Alias is a Protocol Error, the receiver uses
    // DISCONNECT with Reason Code of 0x94" (5.0 section 3.3.4).
    await pub.trySend(publishPacket(5, { topic: "a", properties: [P.topicAlias(0)] }));
    await pub.expectDisconnect(0x94);
  });
});

Deno.test("v5: an unknown Topic Alias with an empty topic is DISCONNECT 0x82 (5.0 section 3.3.2.3.4)", async () => {
  await withBroker({}, async ({ connect }) => {
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "known", properties: [P.topicAlias(1)] }));
    await pub.trySend(publishPacket(5, { topic: "", payload: "?", properties: [P.topicAlias(2)] }));
    await pub.expectDisconnect(0x82, "DISCONNECT 0x82 Protocol Error");
  });
});

Deno.test("v5: Topic Alias mappings end with the connection; a new one starts empty (5.0 section 3.3.2.3.4)", async () => {
  await withBroker({}, async ({ connect }) => {
    const first = await connect(persistent("pub"));
    await first.send(publishPacket(5, { topic: "kept?", properties: [P.topicAlias(1)] }));
    await first.disconnect();
    const second = await connect(persistent("pub"), true);
    await second.trySend(publishPacket(5, { topic: "", properties: [P.topicAlias(1)] }));
    await second.expectDisconnect(0x82, "the alias of the old connection is unknown");
  });
});

// ---- Topic aliases, broker to client ---------------------------------------------------------------------

/** Resolves the Topic Aliases the broker sends, checking each against the client's maximum. */
function aliasReader(maximum: number): (packet: PublishPacket) => string {
  const aliases = new Map<number, string>();
  return (packet) => {
    const alias = packet.properties?.topicAlias;
    if (alias === undefined) {
      assert.notEqual(packet.topic, "", "an empty topic needs an alias");
      return packet.topic;
    }
    assert.ok(alias >= 1 && alias <= maximum, `alias ${alias} within 1..${maximum} [MQTT-3.3.2-11 (5.0)]`);
    if (packet.topic !== "") {
      aliases.set(alias, packet.topic);
      return packet.topic;
    }
    const topic = aliases.get(alias);
    assert.ok(topic !== undefined, `alias ${alias} used before it was set`);
    return topic;
  };
}

Deno.test("v5: the broker uses Topic Aliases for repeated topics, never above the client's maximum [MQTT-3.1.2-26 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const sub = await connect({ version: 5, clientId: "sub", properties: [P.topicAliasMaximum(2)] });
    await subscribe(sub, 1, [["ta/#", 1]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    const sequence = ["ta/a", "ta/a", "ta/b", "ta/c", "ta/a", "ta/c", "ta/b", "ta/b"];
    for (const [i, topic] of sequence.entries()) {
      await pub.send(publishPacket(5, { topic, payload: `${i}`, qos: (i % 2) as 0 | 1, id: i + 1 }));
    }
    const resolve = aliasReader(2);
    const received: PublishPacket[] = [];
    for (const [i, topic] of sequence.entries()) {
      const packet = await sub.expectPacket(3, `message ${i}`);
      assert.equal(resolve(packet), topic, `message ${i} resolves to its topic`);
      assert.equal(new TextDecoder().decode(packet.payload), `${i}`);
      if (packet.qos === 1) await sub.send(puback(5, packet.packetId!));
      received.push(packet);
    }
    assert.equal(received[1]!.topic, "", "the repeated topic went as an alias alone");
    assert.ok(received.filter((p) => p.topic === "").length >= 3, "aliases are reused");
    const used = new Set(received.map((p) => p.properties?.topicAlias).filter((a) => a !== undefined));
    assert.ok(used.size <= 2, "at most two aliases");
    await sub.barrier();
    assert.equal((await pub.collect()).length, 4, "the publisher's PUBACKs");
    await pub.disconnect();
    await sub.disconnect();
  });
});

for (
  const [what, options, properties] of [
    ["a client without Topic Alias Maximum", {}, []],
    ["a client with Topic Alias Maximum 0", {}, [P.topicAliasMaximum(0)]],
    ["topicAliasOut: false", { topicAliasOut: false }, [P.topicAliasMaximum(5)]],
  ] as const
) {
  Deno.test(`v5: no Topic Alias goes out to ${what} [MQTT-3.1.2-27 (5.0)]`, async () => {
    await withBroker(options, async ({ connect }) => {
      const sub = await connect({ version: 5, clientId: "sub", properties });
      await subscribe(sub, 1, [["plain", 0]]);
      const pub = await connect({ version: 5, clientId: "pub" });
      for (let i = 0; i < 3; i++) await pub.send(publishPacket(5, { topic: "plain", payload: `${i}` }));
      for (let i = 0; i < 3; i++) {
        await sub.expect(publishPacket(5, { topic: "plain", payload: `${i}` }), "full topic, no alias");
      }
      await pub.disconnect();
      await sub.disconnect();
    });
  });
}

Deno.test("v5: a message too large for the client does not use up a Topic Alias [MQTT-3.1.2-25 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const sub = await connect({
      version: 5,
      clientId: "sub",
      properties: [P.topicAliasMaximum(1), P.maximumPacketSize(30)],
    });
    await subscribe(sub, 1, [["big/+", 0]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(
      publishPacket(5, { topic: "big/a", payload: "x".repeat(40) }),
      publishPacket(5, { topic: "big/b", payload: "1" }),
      publishPacket(5, { topic: "big/b", payload: "2" }),
    );
    await sub.expect(publishPacket(5, { topic: "big/b", payload: "1", properties: [P.topicAlias(1)] }));
    await sub.expect(publishPacket(5, { topic: "", payload: "2", properties: [P.topicAlias(1)] }));
    await pub.disconnect();
    await sub.disconnect();
  });
});

Deno.test("v5: a message that fits the client's Maximum Packet Size only without a Topic Alias is sent without one [MQTT-3.1.2-24 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const sub = await connect({
      version: 5,
      clientId: "sub",
      properties: [P.topicAliasMaximum(3), P.maximumPacketSize(30)],
    });
    await subscribe(sub, 1, [["my/x", 0]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    const fits = "W".repeat(21); // 2 + (2 + 4) + 1 + 21 = 30 bytes; with an alias (3 bytes more) 33
    await pub.send(
      publishPacket(5, { topic: "my/x", payload: fits }),
      publishPacket(5, { topic: "my/x", payload: "short" }),
      publishPacket(5, { topic: "my/x", payload: "again" }),
    );
    await sub.expect(publishPacket(5, { topic: "my/x", payload: fits }), "30 bytes, no alias");
    await sub.expect(
      publishPacket(5, { topic: "my/x", payload: "short", properties: [P.topicAlias(1)] }),
      "the alias is still free for a message with room for it",
    );
    await sub.expect(publishPacket(5, { topic: "", payload: "again", properties: [P.topicAlias(1)] }));
    await pub.disconnect();
    await sub.disconnect();
  });
});

Deno.test("v5: outgoing aliases start over on a new connection; a resent message carries its topic again", async () => {
  await withBroker({}, async ({ connect, broker }) => {
    const spec = persistent("sub", 300, [P.topicAliasMaximum(4)]);
    const sub = await connect(spec);
    await subscribe(sub, 1, [["again", 1]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "again", payload: "1", qos: 1, id: 1 }));
    await pub.expect(puback(5, 1));
    await sub.expect(
      publishPacket(5, { topic: "again", payload: "1", qos: 1, id: 1, properties: [P.topicAlias(1)] }),
    );
    await sub.send(puback(5, 1));
    await pub.send(publishPacket(5, { topic: "again", payload: "2", qos: 1, id: 2 }));
    await pub.expect(puback(5, 2));
    await sub.expect(
      publishPacket(5, { topic: "", payload: "2", qos: 1, id: 2, properties: [P.topicAlias(1)] }),
    );
    await sub.close(); // not acknowledged: resent on the next connection
    await gone(broker, "sub");
    const back = await connect(spec, true);
    await back.expect(
      publishPacket(5, {
        topic: "again",
        payload: "2",
        qos: 1,
        id: 2,
        dup: true,
        properties: [P.topicAlias(1)],
      }),
      "resent with DUP and the topic set again",
    );
    await back.send(puback(5, 2));
    await back.disconnect();
    await pub.disconnect();
  });
});

// ---- Subscription Identifiers (5.0 section 3.8.2.1.2) -----------------------------------------------------

Deno.test("v5: overlapping subscriptions give one copy carrying every Subscription Identifier [MQTT-3.3.4-3 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "ids" });
    await client.send(subscribePacket(5, 1, [["si/+", 0]], [P.subscriptionId(1)]));
    await client.expect(subackPacket(5, 1, [0]));
    await client.send(subscribePacket(5, 2, [["si/#", 1]], [P.subscriptionId(268_435_455)]));
    await client.expect(subackPacket(5, 2, [1]), "the largest identifier is accepted");
    await client.send(subscribePacket(5, 3, [["si/x", 0]]));
    await client.expect(subackPacket(5, 3, [0]));
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "si/x", payload: "m", qos: 1, id: 9 }));
    await pub.expect(puback(5, 9));
    const packet = await client.expectPacket(3, "the one copy");
    assert.deepEqual(
      [...(packet.properties?.subscriptionIdentifiers ?? [])].sort((a, b) => a - b),
      [1, 268_435_455],
      "both identifiers, in any order [MQTT-3.3.4-4 (5.0)]",
    );
    assert.equal(packet.qos, 1, "at the highest granted QoS [MQTT-3.3.4-2 (5.0)]");
    await client.send(puback(5, packet.packetId!));
    await client.barrier("exactly one copy");
    await pub.disconnect();
    await client.disconnect();
  });
});

Deno.test("v5: the Subscription Identifier is stored with the subscription: resumed sessions and retained messages", async () => {
  await withBroker({}, async ({ connect, broker }) => {
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "keep/r", payload: "retained", retain: true }));
    const sub = await connect(persistent("sub"));
    await sub.send(subscribePacket(5, 1, [["keep/+", 1]], [P.subscriptionId(42)]));
    await sub.expect(subackPacket(5, 1, [1]));
    await sub.expect(
      publishPacket(5, {
        topic: "keep/r",
        payload: "retained",
        retain: true,
        properties: [P.subscriptionId(42)],
      }),
      "retained message with the identifier",
    );
    await sub.disconnect();
    await pub.send(publishPacket(5, { topic: "keep/q", payload: "queued", qos: 1, id: 1 }));
    await pub.expect(puback(5, 1));
    const back = await connect(persistent("sub"), true);
    await back.expect(
      publishPacket(5, {
        topic: "keep/q",
        payload: "queued",
        qos: 1,
        id: 1,
        properties: [P.subscriptionId(42)],
      }),
      "queued while away, with the identifier",
    );
    await back.send(puback(5, 1));
    // Subscribing again replaces the identifier; without one, none is sent.
    await back.send(subscribePacket(5, 2, [["keep/+", 0]], [P.subscriptionId(43)]));
    await back.expect(subackPacket(5, 2, [0]));
    await back.expect(
      publishPacket(5, {
        topic: "keep/r",
        payload: "retained",
        retain: true,
        properties: [P.subscriptionId(43)],
      }),
    );
    await back.send(subscribePacket(5, 3, [["keep/+", 0]]));
    await back.expect(subackPacket(5, 3, [0]));
    await back.expect(
      publishPacket(5, { topic: "keep/r", payload: "retained", retain: true }),
      "no identifier",
    );
    assert.ok(broker.session("sub") !== undefined);
    await back.disconnect();
    await pub.disconnect();
  });
});

Deno.test("v5: Subscription Identifier 0 is DISCONNECT 0x82 (5.0 section 3.8.2.1.2)", async () => {
  await withBroker({}, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "zero" });
    await client.trySend(subscribePacket(5, 1, [["a", 0]], [P.subscriptionId(0)]));
    await client.expectDisconnect(0x82, "DISCONNECT 0x82 Protocol Error");
  });
});

Deno.test("v5: with subscriptionIdentifiersAvailable false, CONNACK says 0 and an identifier is DISCONNECT 0xA1", async () => {
  await withBroker({ subscriptionIdentifiersAvailable: false }, async (context) => {
    const { client, connack } = await connectV5(context, { clientId: "noids" });
    assert.equal(connack.properties?.subscriptionIdentifiersAvailable, 0);
    await subscribe(client, 1, [["fine", 0]]);
    await client.trySend(subscribePacket(5, 2, [["a", 0]], [P.subscriptionId(5)]));
    await client.expectDisconnect(0xa1, "DISCONNECT 0xA1 Subscription Identifiers not supported");
  });
});

// ---- Subscription options (5.0 section 3.8.3.1) ------------------------------------------------------------

Deno.test("v5: No Local keeps a client's own messages from it, also through a wildcard [MQTT-3.8.3-3 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const me = await connect({ version: 5, clientId: "me" });
    await subscribe(me, 1, [["nl/#", subOptions(1, { noLocal: true })]]);
    const other = await connect({ version: 5, clientId: "other" });
    await subscribe(other, 1, [["nl/#", 1]]);
    await me.send(publishPacket(5, { topic: "nl/x", payload: "mine", qos: 1, id: 1 }));
    await me.expect(puback(5, 1), "PUBACK 0x00: another client received it");
    await other.expect(publishPacket(5, { topic: "nl/x", payload: "mine", qos: 1, id: 1 }));
    await other.send(puback(5, 1));
    await me.barrier("not sent back to its publisher");
    await other.send(publishPacket(5, { topic: "nl/y", payload: "theirs" }));
    await me.expect(publishPacket(5, { topic: "nl/y", payload: "theirs" }), "other clients' messages arrive");
    await other.expect(publishPacket(5, { topic: "nl/y", payload: "theirs" }), "without No Local: its own");
    await me.disconnect();
    await other.disconnect();
  });
});

Deno.test("v5: Retain As Published keeps RETAIN on live messages; without it RETAIN is 0 [MQTT-3.3.1-12 (5.0)] [MQTT-3.3.1-13 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const kept = await connect({ version: 5, clientId: "kept" });
    await subscribe(kept, 1, [["rap", subOptions(0, { retainAsPublished: true })]]);
    const cleared = await connect({ version: 5, clientId: "cleared" });
    await subscribe(cleared, 1, [["rap", 0]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(
      publishPacket(5, { topic: "rap", payload: "r", retain: true }),
      publishPacket(5, { topic: "rap", payload: "n" }),
    );
    await kept.expect(publishPacket(5, { topic: "rap", payload: "r", retain: true }), "RETAIN as published");
    await kept.expect(publishPacket(5, { topic: "rap", payload: "n" }));
    await cleared.expect(publishPacket(5, { topic: "rap", payload: "r" }), "RETAIN cleared on forwarding");
    await cleared.expect(publishPacket(5, { topic: "rap", payload: "n" }));
    // A retained message sent because of a subscribe has RETAIN set whatever the option [MQTT-3.3.1-9 (5.0)].
    const late = await connect({ version: 5, clientId: "late" });
    await subscribe(late, 1, [["rap", 0]]);
    await late.expect(publishPacket(5, { topic: "rap", payload: "r", retain: true }));
    for (const c of [kept, cleared, pub, late]) await c.disconnect();
  });
});

Deno.test("v5: Retain Handling 0 sends retained messages at every subscribe, 1 only for a new one, 2 never", async () => {
  await withBroker({}, async ({ connect }) => {
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "rh", payload: "kept", retain: true }));
    await pub.barrier();
    const retained = publishPacket(5, { topic: "rh", payload: "kept", retain: true });
    const client = await connect({ version: 5, clientId: "client" });
    for (const [handling, sends] of [[0, [true, true]], [1, [true, false]], [2, [false, false]]] as const) {
      for (const [round, expected] of sends.entries()) {
        await client.send(subscribePacket(5, 1, [["rh", subOptions(0, { retainHandling: handling })]]));
        await client.expect(subackPacket(5, 1, [0]));
        if (expected) await client.expect(retained, `Retain Handling ${handling}, subscribe ${round + 1}`);
        await client.barrier(`Retain Handling ${handling}, subscribe ${round + 1}: nothing more`);
      }
      await client.send(unsubscribePacket(5, 2, ["rh"]));
      await client.expect(unsubackPacket(5, 2, [0]), "UNSUBACK: the next round starts with no subscription");
    }
    await client.disconnect();
    await pub.disconnect();
  });
});

Deno.test("v5: QoS 0 messages queued for an offline session keep their identifiers and forwarded RETAIN (queueQoS0)", async () => {
  await withBroker({ queueQoS0: true }, async ({ connect, broker }) => {
    const sub = await connect(persistent("sub"));
    await sub.send(subscribePacket(5, 1, [["q0/plain", 0]], [P.subscriptionId(3)]));
    await sub.expect(subackPacket(5, 1, [0]));
    await sub.send(
      subscribePacket(5, 2, [["q0/rap", subOptions(0, { retainAsPublished: true })]], [P.subscriptionId(4)]),
    );
    await sub.expect(subackPacket(5, 2, [0]));
    await sub.disconnect();
    await gone(broker, "sub");
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(
      publishPacket(5, { topic: "q0/plain", payload: "a", retain: true }),
      publishPacket(5, { topic: "q0/rap", payload: "b", retain: true }),
    );
    await pub.barrier();
    const back = await connect(persistent("sub"), true);
    await back.expect(
      publishPacket(5, { topic: "q0/plain", payload: "a", properties: [P.subscriptionId(3)] }),
      "RETAIN cleared as for a live delivery [MQTT-3.3.1-12 (5.0)], identifier kept [MQTT-3.3.4-3 (5.0)]",
    );
    await back.expect(
      publishPacket(5, { topic: "q0/rap", payload: "b", retain: true, properties: [P.subscriptionId(4)] }),
      "Retain As Published [MQTT-3.3.1-13 (5.0)]",
    );
    await back.disconnect();
    await pub.disconnect();
  });
});

// ---- Shared subscriptions (5.0 section 4.8.2) --------------------------------------------------------------

Deno.test("v5: a shared subscription gives each message to one member, in turn", async () => {
  await withBroker({}, async ({ connect }) => {
    const members = [];
    for (const id of ["m1", "m2", "m3"]) {
      const member = await connect({ version: 5, clientId: id });
      await subscribe(member, 1, [["$share/group/work/+", 0]]);
      members.push(member);
    }
    const pub = await connect({ version: 5, clientId: "pub" });
    for (let i = 0; i < 9; i++) await pub.send(publishPacket(5, { topic: "work/x", payload: `${i}` }));
    await pub.barrier();
    const got = await Promise.all(members.map(async (m) => payloads(await m.collect()).map(Number)));
    assert.deepEqual(
      got.flat().sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8],
      "each message exactly once",
    );
    for (const [i, numbers] of got.entries()) {
      assert.equal(numbers.length, 3, `member ${i + 1} gets its turn every third message`);
      assert.ok(numbers.every((n) => n % 3 === numbers[0]! % 3), `member ${i + 1}: round-robin (${numbers})`);
    }
    for (const c of [...members, pub]) await c.disconnect();
  });
});

Deno.test("v5: a shared subscription gets no retained messages; a plain one of the same client does", async () => {
  await withBroker({}, async ({ connect }) => {
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "sr/x", payload: "kept", retain: true }));
    await pub.barrier();
    const client = await connect({ version: 5, clientId: "client" });
    await subscribe(client, 1, [["$share/g/sr/+", 0]]);
    await client.barrier("no retained message for a shared subscription");
    await subscribe(client, 2, [["sr/+", 0]]);
    await client.expect(publishPacket(5, { topic: "sr/x", payload: "kept", retain: true }));
    await client.disconnect();
    await pub.disconnect();
  });
});

Deno.test("v5: No Local on a shared subscription is DISCONNECT 0x82 [MQTT-3.8.3-4 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "nl" });
    await client.trySend(subscribePacket(5, 1, [["$share/g/a", subOptions(0, { noLocal: true })]]));
    await client.expectDisconnect(0x82, "DISCONNECT 0x82 Protocol Error");
  });
});

Deno.test("v5: unacknowledged QoS 1 messages of a member whose session ends go to another member", async () => {
  await withBroker({}, async ({ connect, broker }) => {
    const leaving = await connect({ version: 5, clientId: "leaving", properties: [P.receiveMaximum(1)] });
    await leaving.send(subscribePacket(5, 1, [["$share/g/jobs", 1]], [P.subscriptionId(5)]));
    await leaving.expect(subackPacket(5, 1, [1]));
    const pub = await connect({ version: 5, clientId: "pub" });
    for (let i = 1; i <= 3; i++) {
      await pub.send(publishPacket(5, { topic: "jobs", payload: `job ${i}`, qos: 1, id: i }));
      await pub.expect(puback(5, i));
    }
    await leaving.expect(
      publishPacket(5, { topic: "jobs", payload: "job 1", qos: 1, id: 1, properties: [P.subscriptionId(5)] }),
      "in flight",
    );
    const staying = await connect({ version: 5, clientId: "staying" });
    await staying.send(subscribePacket(5, 1, [["$share/g/jobs", 1]], [P.subscriptionId(9)]));
    await staying.expect(subackPacket(5, 1, [1]));
    await leaving.close(); // no PUBACK, and Session Expiry 0: the session ends with the connection
    await waitFor(() => broker.session("leaving") === undefined, "the leaving session to end");
    const redelivered = [];
    for (let i = 0; i < 3; i++) {
      const packet = await staying.expectPacket(3, `redelivered message ${i + 1}`);
      assert.deepEqual(packet.properties, { subscriptionIdentifiers: [9] }, "the new member's identifier");
      redelivered.push(new TextDecoder().decode(packet.payload));
      await staying.send(puback(5, packet.packetId!));
    }
    assert.deepEqual(
      redelivered,
      ["job 1", "job 2", "job 3"],
      "the in-flight one and the queued ones, in order",
    );
    await staying.barrier();
    await staying.disconnect();
    await pub.disconnect();
  });
});

Deno.test("v5: a QoS 2 message that reached a member is not sent to another when its session ends [MQTT-4.8.2-5 (5.0)]", async () => {
  await withBroker({}, async ({ connect, broker }) => {
    const leaving = await connect({ version: 5, clientId: "leaving", properties: [P.receiveMaximum(2)] });
    await subscribe(leaving, 1, [["$share/g/q2", 2]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    for (const [id, payload] of [[1, "sent"], [2, "released"], [3, "queued"]] as const) {
      await pub.send(publishPacket(5, { topic: "q2", payload, qos: 2, id }));
      await pub.expect(pubrec(5, id));
      await pub.send(pubrel(5, id));
      await pub.expect(pubcomp(5, id));
    }
    await leaving.expect(publishPacket(5, { topic: "q2", payload: "sent", qos: 2, id: 1 }));
    await leaving.expect(publishPacket(5, { topic: "q2", payload: "released", qos: 2, id: 2 }));
    await leaving.send(pubrec(5, 2));
    await leaving.expect(pubrel(5, 2), "the member has message 2: PUBREL");
    await leaving.barrier("message 3 waits behind the window of 2");
    const staying = await connect({ version: 5, clientId: "staying" });
    await subscribe(staying, 1, [["$share/g/q2", 2]]);
    await leaving.close();
    await waitFor(() => broker.session("leaving") === undefined, "the leaving session to end");
    const packet = await staying.expectPacket(3, "only the message that never left the broker");
    assert.equal(new TextDecoder().decode(packet.payload), "queued");
    await staying.send(pubrec(5, packet.packetId!));
    await staying.expect(pubrel(5, packet.packetId!));
    await staying.send(pubcomp(5, packet.packetId!));
    await staying.barrier("the two in flight were not sent again");
    await staying.disconnect();
    await pub.disconnect();
  });
});

Deno.test("v5: a shared message skips a member whose Receive Maximum is used up", async () => {
  await withBroker({}, async ({ connect }) => {
    const busy = await connect({ version: 5, clientId: "busy", properties: [P.receiveMaximum(1)] });
    const free = await connect({ version: 5, clientId: "free" });
    await busy.send(subscribePacket(5, 1, [["$share/g/s", 1]], [P.subscriptionId(7)]));
    await busy.expect(subackPacket(5, 1, [1]));
    await subscribe(free, 1, [["$share/g/s", 1]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    const received: string[][] = [[], []];
    for (let i = 1; i <= 4; i++) {
      await pub.send(publishPacket(5, { topic: "s", payload: `${i}`, qos: 1, id: i }));
      await pub.expect(puback(5, i));
    }
    for (const [i, member] of [busy, free].entries()) {
      for (const packet of await member.collect()) {
        const publish = assertPublish(packet, {
          topic: "s",
          qos: 1,
          ...(member === busy ? { properties: { subscriptionIdentifiers: [7] } } : {}),
        }, "each member's own Subscription Identifier [MQTT-3.3.4-3 (5.0)]");
        received[i]!.push(new TextDecoder().decode(publish.payload));
        await member.send(puback(5, publish.packetId!));
      }
    }
    assert.equal(received[0]!.length, 1, "one in flight to the busy member, none queued behind it");
    assert.deepEqual([...received[0]!, ...received[1]!].sort(), ["1", "2", "3", "4"]);
    await busy.barrier();
    await free.barrier();
    for (const c of [busy, free, pub]) await c.disconnect();
  });
});

Deno.test("v5: with sharedSubscriptionsAvailable false, CONNACK says 0 and SUBACK is 0x9E", async () => {
  await withBroker({ sharedSubscriptionsAvailable: false }, async (context) => {
    const { client, connack } = await connectV5(context, { clientId: "noshare" });
    assert.equal(connack.properties?.sharedSubscriptionAvailable, 0);
    await client.send(subscribePacket(5, 1, [["$share/g/a", 0], ["a", 1]]));
    await client.expect(subackPacket(5, 1, [0x9e, 1]), "0x9E Shared Subscriptions not supported, per filter");
    await client.disconnect();
  });
});

Deno.test("v5: a badly formed shared filter gets SUBACK 0x8F (5.0 section 4.8.2)", async () => {
  await withBroker({}, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "bad" });
    const filters = ["$share/g", "$share//a", "$share/g+/a", "$share/g#/a", "$share/g/"];
    await client.send(subscribePacket(5, 1, filters.map((f) => [f, 0] as const)));
    await client.expect(subackPacket(5, 1, filters.map(() => 0x8f)));
    await client.disconnect();
  });
});

// ---- Message Expiry Interval (5.0 section 3.3.2.3.3) ---------------------------------------------------------

Deno.test("v5: a receiver gets the remaining Message Expiry Interval after its time offline [MQTT-3.3.2-6 (5.0)]", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect, broker }) => {
    const sub = await connect(persistent("sub"));
    await subscribe(sub, 1, [["exp", 1]]);
    await sub.disconnect();
    await gone(broker, "sub");
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(
      publishPacket(5, { topic: "exp", payload: "m", qos: 1, id: 1, properties: [P.messageExpiry(60)] }),
    );
    await pub.expect(puback(5, 1), "taken for the offline session");
    clock.advance(20_000);
    const back = await connect(persistent("sub"), true);
    await back.expect(
      publishPacket(5, { topic: "exp", payload: "m", qos: 1, id: 1, properties: [P.messageExpiry(40)] }),
      "60 s less the 20 s it waited",
    );
    await back.send(puback(5, 1));
    await back.disconnect();
    await pub.disconnect();
  });
});

Deno.test("v5: the time a message waits behind the inflight window counts against its expiry [MQTT-3.3.2-6 (5.0)]", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect }) => {
    const sub = await connect({ version: 5, clientId: "sub", properties: [P.receiveMaximum(1)] });
    await subscribe(sub, 1, [["exp", 1]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(
      publishPacket(5, { topic: "exp", payload: "first", qos: 1, id: 1 }),
      publishPacket(5, { topic: "exp", payload: "second", qos: 1, id: 2, properties: [P.messageExpiry(60)] }),
    );
    await pub.expect(puback(5, 1));
    await pub.expect(puback(5, 2));
    await sub.expect(publishPacket(5, { topic: "exp", payload: "first", qos: 1, id: 1 }));
    await sub.barrier("the second waits for the window");
    clock.advance(5_000);
    await sub.send(puback(5, 1));
    await sub.expect(
      publishPacket(5, { topic: "exp", payload: "second", qos: 1, id: 2, properties: [P.messageExpiry(55)] }),
    );
    await sub.send(puback(5, 2));
    await sub.disconnect();
    await pub.disconnect();
  });
});

Deno.test("v5: a Message Expiry Interval of 0 reaches the subscribers that can take it as it arrives, with 0 left, and is never sent from a queue [MQTT-3.3.2-5 (5.0)] [MQTT-3.3.2-6 (5.0)]", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect }) => {
    const live = await connect({ version: 5, clientId: "live" });
    await subscribe(live, 1, [["now", 1]]);
    const busy = await connect({ version: 5, clientId: "busy", properties: [P.receiveMaximum(1)] });
    await subscribe(busy, 1, [["now", 1]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(
      publishPacket(5, { topic: "now", payload: "first", qos: 1, id: 1 }),
      publishPacket(5, {
        topic: "now",
        payload: "fleeting",
        qos: 1,
        id: 2,
        properties: [P.messageExpiry(0)],
      }),
    );
    await pub.expect(puback(5, 1));
    await pub.expect(puback(5, 2));
    await live.expect(publishPacket(5, { topic: "now", payload: "first", qos: 1, id: 1 }));
    await live.expect(
      publishPacket(5, {
        topic: "now",
        payload: "fleeting",
        qos: 1,
        id: 2,
        properties: [P.messageExpiry(0)],
      }),
      "delivered at once, 0 left",
    );
    await busy.expect(publishPacket(5, { topic: "now", payload: "first", qos: 1, id: 1 }));
    clock.advance(1);
    await busy.send(puback(5, 1));
    await busy.barrier("it waited behind the window: expired, not sent");
    for (const c of [live, busy, pub]) await c.disconnect();
  });
});

Deno.test("v5: an expired message is dropped from an offline session's queue [MQTT-3.3.2-5 (5.0)]", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect, broker }) => {
    const sub = await connect(persistent("sub"));
    await subscribe(sub, 1, [["exp/+", 1]]);
    await sub.disconnect();
    await gone(broker, "sub");
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(
      publishPacket(5, {
        topic: "exp/a",
        payload: "short",
        qos: 1,
        id: 1,
        properties: [P.messageExpiry(10)],
      }),
      publishPacket(5, {
        topic: "exp/b",
        payload: "long",
        qos: 1,
        id: 2,
        properties: [P.messageExpiry(100)],
      }),
      publishPacket(5, { topic: "exp/c", payload: "forever", qos: 1, id: 3 }),
    );
    for (const id of [1, 2, 3]) await pub.expect(puback(5, id));
    clock.advance(11_000);
    const back = await connect(persistent("sub"), true);
    const received = await back.collect();
    assert.deepEqual(payloads(received), ["long", "forever"], "the expired message is not sent");
    assertPublish(received[0]!, {
      topic: "exp/b",
      payload: "long",
      qos: 1,
      properties: { messageExpiryInterval: 89 },
    });
    for (const packet of received) await back.send(puback(5, (packet as PublishPacket).packetId!));
    await back.barrier();
    await back.disconnect();
    await pub.disconnect();
  });
});

Deno.test("v5: an expired retained message is not sent and is swept from the store [MQTT-3.3.2-5 (5.0)]", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect, broker }) => {
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(
      publishPacket(5, { topic: "rx/short", payload: "s", retain: true, properties: [P.messageExpiry(5)] }),
      publishPacket(5, { topic: "rx/long", payload: "l", retain: true, properties: [P.messageExpiry(3600)] }),
    );
    await pub.barrier();
    clock.advance(6_000);
    const sub = await connect({ version: 5, clientId: "sub" });
    await subscribe(sub, 1, [["rx/#", 0]]);
    await sub.expect(
      publishPacket(5, { topic: "rx/long", payload: "l", retain: true, properties: [P.messageExpiry(3594)] }),
      "only the live one, with its remaining interval",
    );
    await sub.barrier();
    assert.ok(broker.retained.get("rx/short") !== undefined, "still stored until the sweep");
    clock.advance(60_000);
    assert.equal(broker.retained.get("rx/short"), undefined, "swept out");
    assert.ok(broker.retained.get("rx/long") !== undefined, "the live one stays");
    await sub.disconnect();
    await pub.disconnect();
  });
});

// ---- Flow control (5.0 section 4.9) -------------------------------------------------------------------------

Deno.test("v5: CONNACK advertises Receive Maximum; one QoS 2 PUBLISH over it is DISCONNECT 0x93 [MQTT-3.3.4-7 (5.0)]", async () => {
  await withBroker({ receiveMaximum: 2 }, async (context) => {
    const { client, connack } = await connectV5(context, { clientId: "flood" });
    assert.equal(connack.properties?.receiveMaximum, 2);
    await client.send(
      publishPacket(5, { topic: "q2", qos: 2, id: 1 }),
      publishPacket(5, { topic: "q2", qos: 2, id: 2 }),
    );
    await client.expect(pubrec(5, 1, 0x10));
    await client.expect(pubrec(5, 2, 0x10));
    await client.send(pubrel(5, 1));
    await client.expect(pubcomp(5, 1), "PUBCOMP frees a slot");
    await client.send(publishPacket(5, { topic: "q2", qos: 2, id: 3 }));
    await client.expect(pubrec(5, 3, 0x10), "within the window again");
    await client.trySend(publishPacket(5, { topic: "q2", qos: 2, id: 4 }));
    await client.expectDisconnect(0x93, "DISCONNECT 0x93 Receive Maximum exceeded");
  });
});

Deno.test("v5: the broker never has more unacknowledged messages to a client than its Receive Maximum [MQTT-3.3.4-9 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const sub = await connect({ version: 5, clientId: "slow", properties: [P.receiveMaximum(2)] });
    await subscribe(sub, 1, [["rm/+", 2]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    for (let i = 1; i <= 5; i++) {
      await pub.send(publishPacket(5, { topic: "rm/1", payload: `${i}`, qos: 1, id: i }));
      await pub.expect(puback(5, i));
    }
    await pub.send(publishPacket(5, { topic: "rm/2", payload: "q2", qos: 2, id: 6 }));
    await pub.expect(pubrec(5, 6));
    await pub.send(pubrel(5, 6));
    await pub.expect(pubcomp(5, 6));
    await sub.expect(publishPacket(5, { topic: "rm/1", payload: "1", qos: 1, id: 1 }));
    await sub.expect(publishPacket(5, { topic: "rm/1", payload: "2", qos: 1, id: 2 }));
    await sub.barrier("two in flight, no more");
    for (let i = 1; i <= 3; i++) {
      await sub.send(puback(5, i));
      await sub.expect(
        publishPacket(5, { topic: "rm/1", payload: `${i + 2}`, qos: 1, id: i + 2 }),
        "one per ack",
      );
      await sub.barrier();
    }
    await sub.send(puback(5, 4));
    await sub.expect(publishPacket(5, { topic: "rm/2", payload: "q2", qos: 2, id: 6 }));
    await sub.send(pubrec(5, 6));
    await sub.expect(pubrel(5, 6));
    await sub.barrier("a QoS 2 message counts until PUBCOMP, and only one other slot is used");
    await sub.send(puback(5, 5), pubcomp(5, 6));
    await sub.barrier();
    await sub.disconnect();
    await pub.disconnect();
  });
});

// ---- Maximum Packet Size (5.0 sections 3.1.2.11.4, 3.2.2.3.6) -----------------------------------------------

Deno.test("v5: a packet over the broker's Maximum Packet Size is DISCONNECT 0x95; one at it is fine", async () => {
  await withBroker({ maxPacketSize: 64 }, async (context) => {
    const sub = await context.connect({ version: 5, clientId: "sub" });
    await subscribe(sub, 1, [["a", 0]]);
    const { client: pub, connack } = await connectV5(context, { clientId: "pub" });
    assert.equal(connack.properties?.maximumPacketSize, 64);
    const fits = publishPacket(5, { topic: "a", payload: "x".repeat(58) });
    assert.equal(fits.length, 64);
    await pub.send(fits);
    await sub.expect(fits, "a 64-byte packet passes");
    await pub.trySend(publishPacket(5, { topic: "a", payload: "x".repeat(59) }));
    await pub.expectDisconnect(0x95, "DISCONNECT 0x95 Packet too large");
    await sub.barrier("the large one is not routed");
    await sub.disconnect();
  });
});

Deno.test("v5: a message over the client's Maximum Packet Size is not sent and does not block the queue [MQTT-3.1.2-25 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const small = await connect({
      version: 5,
      clientId: "small",
      properties: [P.maximumPacketSize(40), P.receiveMaximum(1)],
    });
    await subscribe(small, 1, [["mps", 1]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    const big = "b".repeat(40);
    await pub.send(
      publishPacket(5, { topic: "mps", payload: big, qos: 1, id: 1 }),
      publishPacket(5, { topic: "mps", payload: "ok 1", qos: 1, id: 2 }),
      publishPacket(5, { topic: "mps", payload: big }),
      publishPacket(5, { topic: "mps", payload: "ok 2" }),
    );
    await pub.expect(puback(5, 1), "as if it had been delivered");
    await pub.expect(puback(5, 2));
    const ok1 = await small.expectPacket(3, "the small QoS 1 message");
    assert.equal(new TextDecoder().decode(ok1.payload), "ok 1");
    await small.expect(publishPacket(5, { topic: "mps", payload: "ok 2" }), "the small QoS 0 message");
    await small.send(puback(5, ok1.packetId!));
    await small.barrier("neither large message");
    await small.disconnect();
    await pub.disconnect();
  });
});

// ---- Request / response (5.0 section 4.10) ------------------------------------------------------------------

Deno.test("v5: Response Topic, Correlation Data and Content Type pass through untouched [MQTT-3.3.2-15 (5.0)] [MQTT-3.3.2-16 (5.0)] [MQTT-3.3.2-20 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const requester = await connect({ version: 5, clientId: "requester" });
    await subscribe(requester, 1, [["reply/requester", 0]]);
    const responder = await connect({ version: 5, clientId: "responder" });
    await subscribe(responder, 1, [["service", 0]]);
    const correlation = Uint8Array.of(0x00, 0xff, 0x10, 0x80);
    const request = publishPacket(5, {
      topic: "service",
      payload: "2+2",
      properties: [
        P5.contentType("text/plain"),
        P5.responseTopic("reply/requester"),
        P5.correlationData(correlation),
      ],
    });
    await requester.send(request);
    const received = await responder.expectPacket(3, "the request");
    assert.deepEqual(received.properties, {
      contentType: "text/plain",
      responseTopic: "reply/requester",
      correlationData: correlation,
    });
    await responder.send(
      publishPacket(5, {
        topic: received.properties!.responseTopic!,
        payload: "4",
        properties: [P5.correlationData(received.properties!.correlationData!)],
      }),
    );
    await requester.expect(
      publishPacket(5, {
        topic: "reply/requester",
        payload: "4",
        properties: [P5.correlationData(correlation)],
      }),
      "the response with the same Correlation Data",
    );
    await requester.disconnect();
    await responder.disconnect();
  });
});

Deno.test("v5: Request Response Information gets Response Information when configured, none otherwise [MQTT-3.1.2-28 (5.0)]", async () => {
  await withBroker({ responseInformation: "responses/" }, async (context) => {
    const asked = await connectV5(context, {
      clientId: "asks",
      properties: [P5.requestResponseInformation(1)],
    });
    assert.equal(asked.connack.properties?.responseInformation, "responses/");
    const notAsked = await connectV5(context, {
      clientId: "no",
      properties: [P5.requestResponseInformation(0)],
    });
    assert.equal(
      notAsked.connack.properties?.responseInformation,
      undefined,
      "0 means none [MQTT-3.1.2-28 (5.0)]",
    );
    const silent = await connectV5(context, { clientId: "silent" });
    assert.equal(silent.connack.properties?.responseInformation, undefined, "absent means 0");
    for (const c of [asked, notAsked, silent]) await c.client.disconnect();
  });
  await withBroker({}, async (context) => {
    const asked = await connectV5(context, {
      clientId: "asks",
      properties: [P5.requestResponseInformation(1)],
    });
    assert.equal(asked.connack.reasonCode, 0);
    assert.equal(asked.connack.properties?.responseInformation, undefined, "not configured: none");
    await asked.client.disconnect();
  });
});

Deno.test("v5: a Response Topic with a wildcard is DISCONNECT 0x82 [MQTT-3.3.2-14 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const sub = await connect({ version: 5, clientId: "sub" });
    await subscribe(sub, 1, [["#", 0]]);
    const client = await connect({ version: 5, clientId: "wild" });
    await client.trySend(publishPacket(5, { topic: "ask", properties: [P5.responseTopic("answers/#")] }));
    await client.expectDisconnect(0x82, "DISCONNECT 0x82 Protocol Error");
    await sub.barrier("not routed");
    await sub.disconnect();
  });
});

Deno.test("v5: a will whose Response Topic has a wildcard is refused with CONNACK 0x82 [MQTT-3.3.2-14 (5.0)]", async () => {
  await withBroker({}, async (context) => {
    const { client, connack } = await connectV5(context, {
      clientId: "wild-will",
      will: { topic: "w", payload: "x", properties: [P5.responseTopic("answers/+")] },
    });
    assert.equal(connack.reasonCode, 0x82);
    await client.expectClosed("close after the refusal");
  });
});

// ---- Payload Format Indicator (5.0 section 3.3.2.3.2) -------------------------------------------------------

Deno.test("v5: Payload Format Indicator 1 with a non-UTF-8 payload is PUBACK / PUBREC 0x99 and not delivered", async () => {
  await withBroker({}, async ({ connect }) => {
    const sub = await connect({ version: 5, clientId: "sub" });
    await subscribe(sub, 1, [["pf", 2]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    const bad = Uint8Array.of(0x68, 0xc3, 0x28); // "h" then a broken two-byte sequence
    await pub.send(
      publishPacket(5, { topic: "pf", payload: bad, qos: 1, id: 1, properties: [P.payloadFormat(1)] }),
    );
    await expectAck(pub, 4, 1, 0x99, "with reason string");
    await pub.send(
      publishPacket(5, { topic: "pf", payload: bad, qos: 2, id: 2, properties: [P.payloadFormat(1)] }),
    );
    await expectAck(pub, 5, 2, 0x99, "with reason string");
    await sub.barrier("neither was delivered");
    // Valid UTF-8 passes, and the indicator reaches the subscriber unaltered [MQTT-3.3.2-4 (5.0)].
    await pub.send(
      publishPacket(5, { topic: "pf", payload: "héllo", qos: 1, id: 3, properties: [P.payloadFormat(1)] }),
    );
    await pub.expect(puback(5, 3));
    await sub.expect(
      publishPacket(5, { topic: "pf", payload: "héllo", qos: 1, id: 1, properties: [P.payloadFormat(1)] }),
    );
    await sub.send(puback(5, 1));
    await sub.disconnect();
    await pub.disconnect();
  });
});

Deno.test("v5: with checkPayloadFormat false a non-UTF-8 payload marked UTF-8 passes unchanged", async () => {
  await withBroker({ checkPayloadFormat: false }, async ({ connect }) => {
    const sub = await connect({ version: 5, clientId: "sub" });
    await subscribe(sub, 1, [["pf", 1]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    const bad = Uint8Array.of(0xff, 0xfe);
    await pub.send(
      publishPacket(5, { topic: "pf", payload: bad, qos: 1, id: 1, properties: [P.payloadFormat(1)] }),
    );
    await pub.expect(puback(5, 1));
    await sub.expect(
      publishPacket(5, { topic: "pf", payload: bad, qos: 1, id: 1, properties: [P.payloadFormat(1)] }),
    );
    await sub.send(puback(5, 1));
    await sub.disconnect();
    await pub.disconnect();
  });
});

// ---- 0x10 No matching subscribers ---------------------------------------------------------------------------

Deno.test("v5: PUBACK and PUBREC say 0x10 No matching subscribers when nobody received the message", async () => {
  await withBroker({}, async ({ connect }) => {
    const pub = await connect({ version: 5, clientId: "pub" });
    await subscribe(pub, 1, [["nobody/own", subOptions(1, { noLocal: true })]]);
    await pub.send(publishPacket(5, { topic: "nobody/x", qos: 1, id: 1 }));
    await pub.expect(puback(5, 1, 0x10));
    await pub.send(publishPacket(5, { topic: "nobody/own", qos: 1, id: 2 }));
    await pub.expect(puback(5, 2, 0x10), "its own No Local subscription does not count");
    await pub.send(publishPacket(5, { topic: "nobody/x", qos: 2, id: 3 }));
    await pub.expect(pubrec(5, 3, 0x10));
    await pub.send(pubrel(5, 3));
    await pub.expect(pubcomp(5, 3), "0x10 is a success: the QoS 2 flow completes");
    const sub = await connect({ version: 5, clientId: "sub" });
    await subscribe(sub, 1, [["nobody/+", 0]]);
    await pub.send(publishPacket(5, { topic: "nobody/x", qos: 1, id: 4 }));
    await pub.expect(puback(5, 4), "0x00 once someone subscribed");
    await sub.expect(publishPacket(5, { topic: "nobody/x" }));
    await sub.disconnect();
    await pub.disconnect();
  });
});

// ---- Will Delay Interval (5.0 section 3.1.3.2.2) ------------------------------------------------------------

for (
  const [what, sessionExpiry, willDelay, sentAfter] of [
    ["the session ends before the Will Delay: the will goes out then", 10, 30, 10],
    ["the Will Delay ends before the session: the will goes out then", 30, 5, 5],
  ] as const
) {
  Deno.test(`v5: ${what} (ManualClock) (5.0 section 3.1.3.2.2)`, async () => {
    const clock = new ManualClock(1_000_000);
    await withBroker({ clock }, async ({ connect, broker }) => {
      const watcher = await connect({ version: 5, clientId: "watcher" });
      await subscribe(watcher, 1, [["will", 0]]);
      const client = await connect({
        version: 5,
        clientId: "mortal",
        clean: false,
        properties: [P.sessionExpiry(sessionExpiry)],
        will: { topic: "will", payload: "gone", properties: [P.willDelay(willDelay)] },
      });
      await client.close();
      await gone(broker, "mortal");
      clock.advance(sentAfter * 1000 - 1);
      await watcher.barrier("not yet");
      clock.advance(1);
      await watcher.expect(publishPacket(5, { topic: "will", payload: "gone" }), `will after ${sentAfter} s`);
      assert.equal(
        broker.session("mortal") !== undefined,
        sessionExpiry > sentAfter,
        "session kept or ended",
      );
      clock.advance(60_000);
      await watcher.barrier("sent once");
      await watcher.disconnect();
    });
  });
}

Deno.test("v5: a delayed will's Message Expiry Interval runs from its publication (ManualClock) (5.0 section 3.1.3.2.4)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect, broker }) => {
    const watcher = await connect({ version: 5, clientId: "watcher" });
    await subscribe(watcher, 1, [["will", 0]]);
    const client = await connect({
      version: 5,
      clientId: "mortal",
      clean: false,
      properties: [P.sessionExpiry(300)],
      will: { topic: "will", payload: "late", properties: [P.willDelay(30), P.messageExpiry(10)] },
    });
    await client.close();
    await gone(broker, "mortal");
    clock.advance(30_000);
    await watcher.expect(
      publishPacket(5, { topic: "will", payload: "late", properties: [P.messageExpiry(10)] }),
      "the will, with its whole lifetime ahead",
    );
    await watcher.disconnect();
  });
});

// ---- User Properties [MQTT-3.3.2-17 (5.0)] [MQTT-3.3.2-18 (5.0)] -----------------------------------------

Deno.test("v5: User Properties reach receivers unaltered and in order, duplicates included [MQTT-3.3.2-17 (5.0)] [MQTT-3.3.2-18 (5.0)]", async () => {
  await withBroker({}, async ({ connect, broker }) => {
    const userProperties = [
      P.userProperty("b", "2"),
      P.userProperty("a", "1"),
      P.userProperty("a", "1"),
      P.userProperty("a", "0"),
      P.userProperty("", ""),
      P.userProperty("ключ", "значение"),
    ];
    const live = await connect({ version: 5, clientId: "live" });
    await subscribe(live, 1, [["up", 1]]);
    const offline = await connect(persistent("offline"));
    await subscribe(offline, 1, [["up", 1]]);
    await offline.disconnect();
    await gone(broker, "offline");
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(
      publishPacket(5, {
        topic: "up",
        payload: "p",
        qos: 1,
        id: 1,
        retain: true,
        properties: userProperties,
      }),
    );
    await pub.expect(puback(5, 1));
    const forwarded = publishPacket(5, {
      topic: "up",
      payload: "p",
      qos: 1,
      id: 1,
      properties: userProperties,
    });
    await live.expect(forwarded, "live delivery");
    await live.send(puback(5, 1));
    const back = await connect(persistent("offline"), true);
    await back.expect(forwarded, "from the offline queue");
    await back.send(puback(5, 1));
    const late = await connect({ version: 5, clientId: "late" });
    await subscribe(late, 1, [["up", 0]]);
    await late.expect(
      publishPacket(5, { topic: "up", payload: "p", retain: true, properties: userProperties }),
      "from the retained store",
    );
    for (const c of [live, back, late, pub]) await c.disconnect();
  });
});

// ---- Request Problem Information [MQTT-3.1.2-29 (5.0)] -------------------------------------------------------

Deno.test("v5: a refused PUBLISH gets PUBACK / PUBREC 0x87 with a Reason String by default", async () => {
  await withBroker({ authorizer: denyPublish("secret") }, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "curious" });
    await client.send(publishPacket(5, { topic: "secret", qos: 1, id: 1 }));
    await expectAck(client, 4, 1, 0x87, "with reason string");
    await client.send(publishPacket(5, { topic: "secret", qos: 2, id: 2 }));
    await expectAck(client, 5, 2, 0x87, "with reason string");
    await client.disconnect();
  });
});

Deno.test("v5: with Request Problem Information 0 the acks carry no Reason String [MQTT-3.1.2-29 (5.0)]", async () => {
  await withBroker({ authorizer: denyPublish("secret") }, async ({ connect }) => {
    const client = await connect({
      version: 5,
      clientId: "quiet",
      properties: [P.requestProblemInformation(0)],
    });
    await client.send(publishPacket(5, { topic: "secret", qos: 1, id: 1 }));
    await client.expect(puback(5, 1, 0x87), "PUBACK 0x87, nothing else");
    await client.send(publishPacket(5, { topic: "secret", qos: 2, id: 2 }));
    await client.expect(pubrec(5, 2, 0x87), "PUBREC 0x87, nothing else");
    await client.send(
      publishPacket(5, {
        topic: "pf",
        payload: Uint8Array.of(0xff),
        qos: 1,
        id: 3,
        properties: [P.payloadFormat(1)],
      }),
    );
    await client.expect(puback(5, 3, 0x99), "PUBACK 0x99, nothing else");
    await client.disconnect();
  });
});

Deno.test("v5: Request Problem Information 1 (explicit) keeps Reason Strings on acks and DISCONNECT", async () => {
  await withBroker({ authorizer: denyPublish("secret") }, async ({ connect }) => {
    const client = await connect({
      version: 5,
      clientId: "loud",
      properties: [P.requestProblemInformation(1)],
    });
    await client.send(publishPacket(5, { topic: "secret", qos: 1, id: 1 }));
    await expectAck(client, 4, 1, 0x87, "with reason string");
    await client.trySend(publishPacket(5, { topic: "", payload: "no topic" }));
    const disconnect = await client.expectPacket(14, "DISCONNECT");
    assert.equal(disconnect.reasonCode, 0x82);
    assert.equal(typeof disconnect.properties?.reasonString, "string", "DISCONNECT explains itself");
    await client.expectClosed();
  });
});

Deno.test("v5: no Reason String when it would pass the client's Maximum Packet Size [MQTT-3.4.2-2 (5.0)] [MQTT-3.5.2-2 (5.0)] [MQTT-3.14.2-3 (5.0)]", async () => {
  await withBroker({ authorizer: denyPublish("secret") }, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "tiny", properties: [P.maximumPacketSize(16)] });
    await client.send(publishPacket(5, { topic: "secret", qos: 1, id: 1 }));
    await client.expect(puback(5, 1, 0x87), "PUBACK 0x87 without its Reason String");
    await client.send(publishPacket(5, { topic: "secret", qos: 2, id: 2 }));
    await client.expect(pubrec(5, 2, 0x87), "PUBREC 0x87 without its Reason String");
    await client.trySend(publishPacket(5, { topic: "", payload: "no topic" }));
    const disconnect = await client.next("DISCONNECT");
    assert.ok(disconnect.length <= 16, `DISCONNECT of ${disconnect.length} bytes fits [MQTT-3.1.2-24 (5.0)]`);
    assert.equal(disconnect[0], 0xe0);
    assert.equal(disconnect[2], 0x82, "DISCONNECT 0x82, without its Reason String");
    await client.expectClosed();
  });
});

Deno.test("v5: a refusing CONNACK leaves out its Reason String when it would not fit the client's Maximum Packet Size [MQTT-3.2.2-19 (5.0)]", async () => {
  await withBroker({ authenticator: { authenticate: () => ({ reasonCode: 0x87 }) } }, async ({ open }) => {
    const client = await open(5);
    await client.send(connectPacket({ version: 5, clientId: "x", properties: [P.maximumPacketSize(8)] }));
    await client.expect(hex("20 03 00 87 00"), "CONNACK 0x87 with no properties");
    await client.expectClosed();
  });
  await withBroker({ redirect: { reference: "other.example:1883" } }, async ({ open }) => {
    const client = await open(5);
    await client.send(connectPacket({ version: 5, clientId: "x", properties: [P.maximumPacketSize(40)] }));
    await client.expect(
      packet(0x20, 0, 0x9c, props(P5.serverReference("other.example:1883"))),
      "CONNACK 0x9C with its Server Reference only",
    );
    await client.expectClosed();
  });
});

Deno.test("v5: a success CONNACK fits the client's Maximum Packet Size: what the client can do without is left out; if the rest cannot fit, it is closed without CONNACK [MQTT-3.1.2-24 (5.0)]", async () => {
  await withBroker({}, async ({ open }) => {
    const client = await open(5);
    await client.send(connectPacket({ version: 5, clientId: "tiny", properties: [P.maximumPacketSize(16)] }));
    const bytes = await client.next("CONNACK");
    assert.ok(bytes.length <= 16, `CONNACK of ${bytes.length} bytes fits in 16`);
    const connack = decode(bytes, 5);
    assert.equal(connack.type, 2);
    if (connack.type !== 2) return;
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties?.receiveMaximum, 100, "what limits the client stays");
    assert.equal(connack.properties?.maximumPacketSize, 1_048_576);
    assert.equal(connack.properties?.topicAliasMaximum, 10, "it fits, so it stays (issue #14 item 9)");
    assert.equal(connack.properties?.retainAvailable, undefined, "absent means available anyway");
    await client.send(subscribePacket(5, 1, [["t", 0]]));
    await client.expect(subackPacket(5, 1, [0]), "the connection works");
    await client.disconnect();
  });
  await withBroker({}, async ({ open }) => {
    // 13 bytes: Receive Maximum and Maximum Packet Size fit, Topic Alias Maximum does not: it alone is shed.
    const client = await open(5);
    await client.send(
      connectPacket({ version: 5, clientId: "tinier", properties: [P.maximumPacketSize(13)] }),
    );
    const bytes = await client.next("CONNACK");
    assert.ok(bytes.length <= 13, `CONNACK of ${bytes.length} bytes fits in 13`);
    const connack = decode(bytes, 5);
    assert.equal(connack.type, 2);
    if (connack.type !== 2) return;
    assert.equal(connack.properties?.receiveMaximum, 100, "what limits the client stays");
    assert.equal(connack.properties?.maximumPacketSize, 1_048_576);
    assert.equal(connack.properties?.topicAliasMaximum, undefined, "no aliases: the safe default");
    await client.disconnect();
  });
  await withBroker({}, async ({ open }) => {
    // An empty client id gets an Assigned Client Identifier of 41 bytes: no CONNACK of 20 bytes can hold it.
    const client = await open(5);
    await client.send(connectPacket({ version: 5, clientId: "", properties: [P.maximumPacketSize(20)] }));
    await client.expectClosed("closed without a CONNACK too large for the client");
  });
  await withBroker({}, async ({ open }) => {
    const client = await open(5);
    await client.send(
      connectPacket({ version: 5, clientId: "roomy", properties: [P.maximumPacketSize(1024)] }),
    );
    const connack = await client.expectPacket(2, "CONNACK");
    assert.equal(connack.properties?.topicAliasMaximum, 10, "with room, every property is sent");
    await client.disconnect();
  });
});

// ---- What CONNACK advertises (5.0 section 3.2.2.3) ----------------------------------------------------------

Deno.test("v5: CONNACK advertises the broker's defaults, and no Maximum QoS when it is 2", async () => {
  await withBroker({}, async (context) => {
    const { client, connack } = await connectV5(context, { clientId: "defaults" });
    // Capabilities at their defaults (Retain, Wildcard, Subscription Identifier, Shared Subscription Available =
    // 1) are left out: absent says the same (5.0 section 3.2.2.3), 8 bytes fewer (issue #14 item 9).
    assert.deepEqual(connack.properties, {
      receiveMaximum: 100,
      maximumPacketSize: 1_048_576,
      topicAliasMaximum: 10,
    });
    await client.disconnect();
  });
});

Deno.test("v5: CONNACK advertises configured limits, Server Keep Alive and an Assigned Client Identifier", async () => {
  await withBroker(
    {
      receiveMaximum: 7,
      maxPacketSize: 4096,
      topicAliasMaximum: 0,
      maxQoS: 1,
      retainAvailable: false,
      wildcardSubscriptionsAvailable: false,
      subscriptionIdentifiersAvailable: false,
      sharedSubscriptionsAvailable: false,
      maxKeepAlive: 30,
    },
    async (context) => {
      const { client, connack } = await connectV5(context, { clientId: "", keepAlive: 60 });
      const assigned = connack.properties?.assignedClientIdentifier;
      assert.ok(
        typeof assigned === "string" && assigned.length > 0,
        "Assigned Client Identifier [MQTT-3.2.2-16 (5.0)]",
      );
      assert.deepEqual(connack.properties, {
        assignedClientIdentifier: assigned,
        serverKeepAlive: 30,
        receiveMaximum: 7,
        maximumPacketSize: 4096,
        topicAliasMaximum: 0,
        maximumQoS: 1,
        retainAvailable: 0,
        wildcardSubscriptionAvailable: 0,
        subscriptionIdentifiersAvailable: 0,
        sharedSubscriptionAvailable: 0,
      });
      await client.send(subscribePacket(5, 1, [["w/+", 0], ["w/#", 0], ["$share/g/w", 0], ["w", 2]]));
      await client.expect(subackPacket(5, 1, [0xa2, 0xa2, 0x9e, 1]), "the features it said it lacks");
      await client.disconnect();
    },
  );
  await withBroker({ maxQoS: 0 }, async (context) => {
    const { client, connack } = await connectV5(context, { clientId: "q0" });
    assert.equal(connack.properties?.maximumQoS, 0);
    await client.disconnect();
  });
});

// ---- Reason codes the broker disconnects or refuses with (5.0 section 4.13) ---------------------------------

Deno.test("v5: broker.close() sends DISCONNECT 0x8B Server shutting down", async () => {
  await withBroker({}, async ({ connect, broker }) => {
    const client = await connect({ version: 5, clientId: "bye" });
    await broker.close();
    await client.expectDisconnect(0x8b, "DISCONNECT 0x8B");
  });
});

Deno.test("v5: a session take-over sends DISCONNECT 0x8E to the old connection [MQTT-3.1.4-3 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const first = await connect({ version: 5, clientId: "twin" });
    const second = await connect({ version: 5, clientId: "twin" });
    await first.expectDisconnect(0x8e, "DISCONNECT 0x8E Session taken over");
    await second.disconnect();
  });
});

Deno.test("v5: silence past 1.5 x keep alive is DISCONNECT 0x8D (ManualClock) [MQTT-3.1.2-22 (5.0)]", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "quiet", keepAlive: 10 });
    clock.advance(14_999);
    await client.barrier("within 15 s"); // activity: the 15 s start again
    clock.advance(15_000);
    await client.expectDisconnect(0x8d, "DISCONNECT 0x8D Keep Alive timeout");
  });
});

Deno.test("v5: publishBytesPerSecond over quota is PUBACK / PUBREC 0x97; the next second it passes (ManualClock)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, publishBytesPerSecond: 10 }, async ({ connect }) => {
    const sub = await connect({ version: 5, clientId: "sub" });
    await subscribe(sub, 1, [["q", 0]]);
    const client = await connect({ version: 5, clientId: "chatty" });
    await client.send(publishPacket(5, { topic: "q", payload: "12345678", qos: 1, id: 1 }));
    await client.expect(puback(5, 1));
    await sub.expect(publishPacket(5, { topic: "q", payload: "12345678" }));
    await client.send(publishPacket(5, { topic: "q", payload: "12345678", qos: 1, id: 2 }));
    await expectAck(client, 4, 2, 0x97, "with reason string");
    await client.send(publishPacket(5, { topic: "q", payload: "12345678", qos: 2, id: 3 }));
    await expectAck(client, 5, 3, 0x97, "with reason string");
    await sub.barrier("the refused ones were not delivered");
    clock.advance(1_000);
    await client.send(publishPacket(5, { topic: "q", payload: "12345678", qos: 1, id: 4 }));
    await client.expect(puback(5, 4), "quota refilled");
    await sub.expect(publishPacket(5, { topic: "q", payload: "12345678" }));
    await client.disconnect();
    await sub.disconnect();
  });
});

Deno.test("v5: more PUBLISH per second than messageRatePerClient is DISCONNECT 0x96 (ManualClock)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, messageRatePerClient: 2 }, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "fast" });
    await client.send(publishPacket(5, { topic: "r" }), publishPacket(5, { topic: "r" }));
    await client.barrier("two per second are fine");
    clock.advance(1_000);
    await client.send(publishPacket(5, { topic: "r" }), publishPacket(5, { topic: "r" }));
    await client.barrier("the next second has two more");
    await client.trySend(publishPacket(5, { topic: "r" }));
    await client.expectDisconnect(0x96, "DISCONNECT 0x96 Message rate too high");
  });
});

for (const [permanent, code] of [[false, 0x9c], [true, 0x9d]] as const) {
  Deno.test(`v5: redirect (permanent: ${permanent}) answers CONNACK 0x${code.toString(16)} with a Server Reference`, async () => {
    await withBroker({ redirect: { reference: "other.example:1883", permanent } }, async (context) => {
      const { client, connack } = await connectV5(context, { clientId: "moving" });
      assert.equal(connack.reasonCode, code);
      assert.equal(connack.properties?.serverReference, "other.example:1883");
      await client.expectClosed("close after the refusal");
    });
  });
}

Deno.test("v5: CONNECTs from one address over connectRatePerAddress get CONNACK 0x9F (ManualClock)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, connectRatePerAddress: 1 }, async (context) => {
    const first = await context.connect({ version: 5, clientId: "first" });
    const { client: second, connack } = await connectV5(context, { clientId: "second" });
    assert.equal(connack.reasonCode, 0x9f, "0x9F Connection rate exceeded");
    await second.expectClosed("close after the refusal");
    clock.advance(1_000);
    const third = await context.connect({ version: 5, clientId: "third" });
    await third.disconnect();
    await first.disconnect();
  });
});

// ---- Re-authentication as someone else (issue #15 item 14) ----------------------------------------------------

/** A test method: Authentication Data is the user name, accepted as is. */
const NAME_IS_TOKEN = {
  name: "NAME",
  begin: () => ({
    step: (data: Uint8Array | undefined) => ({
      kind: "success" as const,
      username: new TextDecoder().decode(data ?? new Uint8Array()),
    }),
  }),
};

const authMethod = (name: string) => concat(0x15, str(name));
const authData = (text: string) => concat(0x16, bin(new TextEncoder().encode(text)));

Deno.test("v5: a re-authentication that ends as another user is DISCONNECT 0x87 and logged (5.0 section 4.12.1)", async () => {
  const lines: string[] = [];
  const logger = leveledLogger("info", (_level, line) => lines.push(line));
  await withBroker({ authMethods: [NAME_IS_TOKEN], logger }, async ({ open }) => {
    const client = await open(5);
    await client.send(
      connectPacket({ version: 5, clientId: "shifty", properties: [authMethod("NAME"), authData("alice")] }),
    );
    const connack = await client.expectPacket(2, "CONNACK");
    assert.equal(connack.reasonCode, 0);
    // The same user again: accepted.
    await client.send(packet(0xf0, 0x19, props(authMethod("NAME"), authData("alice"))));
    const auth = await client.expectPacket(15, "AUTH Success");
    assert.equal(auth.reasonCode, 0);
    // Another user on the same connection: refused.
    await client.trySend(packet(0xf0, 0x19, props(authMethod("NAME"), authData("mallory"))));
    await client.expectDisconnect(0x87, "DISCONNECT Not authorized");
  });
  assert.ok(
    lines.some((line) => line.includes("shifty") && line.includes("mallory")),
    `the refusal is logged: ${JSON.stringify(lines)}`,
  );
});
