/**
 * SUBSCRIBE / SUBACK, UNSUBSCRIBE / UNSUBACK and QoS 0 routing (5.0 sections 3.8 - 3.11, 4.7): per-filter reason
 * codes, wildcards, `$` topics, No Local and Subscription Identifiers.
 */

import assert from "node:assert/strict";
import {
  hex,
  P,
  puback,
  publishPacket,
  subackPacket,
  subOptions,
  subscribe,
  subscribePacket,
  unsubackPacket,
  unsubscribePacket,
  v,
  VERSIONS,
  withBroker,
} from "./_wire.ts";

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: SUBACK bytes and a QoS 0 message delivered exactly [MQTT-3.8.4-1 (3.1.1)] [MQTT-3.8.4-1 (5.0)]`, async () => {
    await withBroker({}, async ({ connect }) => {
      const sub = await connect({ version, clientId: "sub" });
      await sub.send(subscribePacket(version, 1, [["a/+", 0]]));
      await sub.expect(version === 4 ? hex("90 03 00 01 00") : hex("90 04 00 01 00 00"), "SUBACK");
      const pub = await connect({ version, clientId: "pub" });
      await pub.send(publishPacket(version, { topic: "a/b", payload: "hello" }));
      await sub.expect(
        version === 4
          ? hex("30 0a 00 03 61 2f 62 68 65 6c 6c 6f")
          : hex("30 0b 00 03 61 2f 62 00 68 65 6c 6c 6f"),
        "PUBLISH a/b hello",
      );
      await sub.barrier();
      await pub.disconnect();
      await sub.disconnect();
    });
  });

  Deno.test(`${v(version)}: SUBACK grants the requested QoS per filter, in order [MQTT-3.9.3-1 (3.1.1)] [MQTT-3.9.3-1 (5.0)]`, async () => {
    await withBroker({}, async ({ connect }) => {
      const client = await connect({ version, clientId: "granted" });
      await client.send(subscribePacket(version, 0x1234, [["q/0", 0], ["q/1", 1], ["q/2", 2]]));
      await client.expect(subackPacket(version, 0x1234, [0, 1, 2]), "SUBACK 00 01 02");
      await client.disconnect();
    });
  });

  Deno.test(`${v(version)}: SUBACK grants at most the broker's maximum QoS [MQTT-3.8.4-5 (3.1.1)] [MQTT-3.2.2-10 (5.0)] [MQTT-3.8.4-7 (5.0)]`, async () => {
    await withBroker({ maxQoS: 1 }, async ({ connect }) => {
      const client = await connect({ version, clientId: "capped" });
      await client.send(subscribePacket(version, 2, [["q", 2]]));
      await client.expect(subackPacket(version, 2, [1]), "SUBACK 01");
      await client.disconnect();
    });
  });

  for (const filter of ["a/#/b", "a+", "#/x", ""]) {
    Deno.test(
      `${v(version)}: a malformed filter ${JSON.stringify(filter)} in SUBSCRIBE is a protocol error (${
        version === 5 ? "DISCONNECT 0x82" : "closed"
      }), not a SUBACK slot (issue #14 item 6)`,
      async () => {
        await withBroker({}, async ({ connect }) => {
          const client = await connect({ version, clientId: "mixed" });
          // 0x8F is for a well-formed filter the broker will not take (5.0 section 3.9.3); these break section 4.7.
          await client.trySend(subscribePacket(version, 3, [["good/#", 0], [filter, 0]]));
          if (version === 5) await client.expectDisconnect(0x82, "DISCONNECT Protocol Error");
          else await client.expectClosed("closed [MQTT-4.8.0-1 (3.1.1)]");
        });
      },
    );
    Deno.test(
      `${v(version)}: a malformed filter ${
        JSON.stringify(filter)
      } in UNSUBSCRIBE is a protocol error (issue #14 item 6)`,
      async () => {
        await withBroker({}, async ({ connect }) => {
          const client = await connect({ version, clientId: "mixed" });
          await client.trySend(unsubscribePacket(version, 3, ["good/#", filter]));
          if (version === 5) await client.expectDisconnect(0x82, "DISCONNECT Protocol Error");
          else await client.expectClosed("closed");
        });
      },
    );
  }

  Deno.test(`${v(version)}: UNSUBSCRIBE stops delivery; UNSUBACK echoes the packet id [MQTT-3.10.4-4 (3.1.1)] [MQTT-3.10.4-4 (5.0)]`, async () => {
    await withBroker({}, async ({ connect }) => {
      const client = await connect({ version, clientId: "unsub" });
      await subscribe(client, 1, [["t/+", 0], ["u", 0]]);
      await client.send(unsubscribePacket(version, 0x0102, ["t/+", "never/subscribed"]));
      await client.expect(unsubackPacket(version, 0x0102, [0x00, 0x11]), "UNSUBACK");
      await client.send(
        publishPacket(version, { topic: "t/1", payload: "no" }),
        publishPacket(version, { topic: "u", payload: "yes" }),
      );
      await client.expect(
        publishPacket(version, { topic: "u", payload: "yes" }),
        "only the kept subscription",
      );
      await client.barrier();
      await client.disconnect();
    });
  });

  Deno.test(`${v(version)}: subscribing again replaces the subscription (new QoS, one copy) [MQTT-3.8.4-3 (3.1.1)] [MQTT-3.8.4-3 (5.0)]`, async () => {
    await withBroker({}, async ({ connect }) => {
      const client = await connect({ version, clientId: "again" });
      await subscribe(client, 1, [["r", 1]]);
      await subscribe(client, 2, [["r", 0]]);
      await client.send(publishPacket(version, { topic: "r", payload: "m", qos: 1, id: 9 }));
      await client.expect(publishPacket(version, { topic: "r", payload: "m" }), "delivered at the new QoS 0");
      await client.expect(puback(version, 9), "PUBACK");
      await client.barrier("one copy only");
      await client.disconnect();
    });
  });

  Deno.test(
    `${
      v(version)
    }: overlapping subscriptions deliver one copy at the highest QoS [MQTT-3.3.5-1 (3.1.1)] [MQTT-3.3.4-2 (5.0)]`,
    async () => {
      await withBroker({}, async ({ connect }) => {
        const sub = await connect({ version, clientId: "overlap" });
        await subscribe(sub, 1, [["o/#", 0], ["o/+", 1]]);
        const pub = await connect({ version, clientId: "pub" });
        await pub.send(publishPacket(version, { topic: "o/x", payload: "m", qos: 1, id: 5 }));
        await pub.expect(puback(version, 5), "PUBACK");
        await sub.expect(
          publishPacket(version, { topic: "o/x", payload: "m", qos: 1, id: 1 }),
          "PUBLISH QoS 1",
        );
        await sub.barrier("one copy only");
        await pub.disconnect();
        await sub.disconnect();
      });
    },
  );

  Deno.test(`${v(version)}: topic matching: wildcards, levels and case [MQTT-4.7.1-2 (3.1.1)] [MQTT-4.7.1-3 (3.1.1)] [MQTT-4.7.1-1 (5.0)] [MQTT-4.7.1-2 (5.0)]`, async () => {
    await withBroker({}, async ({ connect }) => {
      const sub = await connect({ version, clientId: "matcher" });
      await subscribe(sub, 1, [["sport/#", 0], ["+/+", 0], ["x/+/z", 0]]);
      const topics: readonly [string, boolean][] = [
        ["sport", true], // "#" matches the parent level too
        ["sport/tennis/player1", true],
        ["/finance", true], // "+/+": an empty first level
        ["finance", false],
        ["x/y/z", true],
        ["x//z", true],
        ["x/y/z/w", false],
        ["Sport/tennis/x", false], // topics are case-sensitive [MQTT-4.7.3-4 (3.1.1)] [MQTT-4.7.3-4 (5.0)]
      ];
      for (const [topic] of topics) {
        await sub.send(publishPacket(version, { topic, payload: topic }));
      }
      for (const [topic, matches] of topics) {
        if (matches) await sub.expect(publishPacket(version, { topic, payload: topic }), `PUBLISH ${topic}`);
      }
      await sub.barrier("nothing for the non-matching topics");
      await sub.disconnect();
    });
  });

  Deno.test(`${v(version)}: "#" and "+" do not match topics starting with $ [MQTT-4.7.2-1 (3.1.1)] [MQTT-4.7.2-1 (5.0)]`, async () => {
    await withBroker({}, async ({ connect }) => {
      const all = await connect({ version, clientId: "all" });
      await subscribe(all, 1, [["#", 0], ["+/info", 0]]);
      const dollar = await connect({ version, clientId: "dollar" });
      await subscribe(dollar, 1, [["$app/#", 0]]);
      const pub = await connect({ version, clientId: "pub" });
      await pub.send(publishPacket(version, { topic: "$app/info", payload: "d" }));
      await dollar.expect(
        publishPacket(version, { topic: "$app/info", payload: "d" }),
        "explicit $ subscription",
      );
      await pub.barrier();
      await all.barrier("no $ topic through wildcards");
      for (const c of [all, dollar, pub]) await c.disconnect();
    });
  });

  Deno.test(`${v(version)}: a binary payload with zero bytes arrives unchanged`, async () => {
    await withBroker({}, async ({ connect }) => {
      const client = await connect({ version, clientId: "bin" });
      await subscribe(client, 1, [["b", 0]]);
      const payload = Uint8Array.of(0, 1, 0xff, 0, 0x80);
      await client.send(publishPacket(version, { topic: "b", payload }));
      await client.expect(publishPacket(version, { topic: "b", payload }));
      await client.disconnect();
    });
  });
}

Deno.test("v5: No Local keeps a client's own messages from it [MQTT-3.8.3-3 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "self" });
    await subscribe(client, 1, [["mine", subOptions(0, { noLocal: true })], ["echo", 0]], [0, 0]);
    await client.send(
      publishPacket(5, { topic: "mine", payload: "1" }),
      publishPacket(5, { topic: "echo", payload: "2" }),
    );
    await client.expect(
      publishPacket(5, { topic: "echo", payload: "2" }),
      "only the subscription without No Local",
    );
    await client.barrier();
    const other = await connect({ version: 5, clientId: "other" });
    await other.send(publishPacket(5, { topic: "mine", payload: "3" }));
    await client.expect(publishPacket(5, { topic: "mine", payload: "3" }), "other clients' messages arrive");
    await other.disconnect();
    await client.disconnect();
  });
});

Deno.test("v5: a Subscription Identifier is sent with matching messages [MQTT-3.3.4-3 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "ids" });
    await client.send(subscribePacket(5, 1, [["s/+", 1]], [P.subscriptionId(300)]));
    await client.expect(subackPacket(5, 1, [1]));
    await client.send(subscribePacket(5, 2, [["plain", 0]]));
    await client.expect(subackPacket(5, 2, [0]));
    await client.send(publishPacket(5, { topic: "s/1", payload: "x" }), publishPacket(5, { topic: "plain" }));
    await client.expect(
      publishPacket(5, { topic: "s/1", payload: "x", properties: [P.subscriptionId(300)] }),
    );
    await client.expect(publishPacket(5, { topic: "plain" }), "no identifier without one");
    await client.disconnect();
  });
});

Deno.test("v5: a shared subscription delivers each message to one member (5.0 section 4.8.2)", async () => {
  await withBroker({}, async ({ connect }) => {
    const a = await connect({ version: 5, clientId: "a" });
    const b = await connect({ version: 5, clientId: "b" });
    await subscribe(a, 1, [["$share/g/jobs/+", 0]]);
    await subscribe(b, 1, [["$share/g/jobs/+", 0]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    for (let i = 0; i < 4; i++) await pub.send(publishPacket(5, { topic: "jobs/x", payload: `${i}` }));
    await pub.barrier();
    let received = 0;
    for (const c of [a, b]) {
      await c.send(hex("c0 00"));
      for (;;) {
        const frame = await c.next();
        if (frame[0] === 0xd0) break;
        received++;
      }
    }
    assert.equal(received, 4, "each message once across the group");
    for (const c of [a, b, pub]) await c.disconnect();
  });
});

Deno.test("v5: a client's Topic Alias sets and then stands for the topic (5.0 section 3.3.2.3.4)", async () => {
  await withBroker({}, async ({ connect }) => {
    const sub = await connect({ version: 5, clientId: "sub" });
    await subscribe(sub, 1, [["long/topic/name", 0]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(
      publishPacket(5, { topic: "long/topic/name", payload: "1", properties: [P.topicAlias(3)] }),
    );
    await pub.send(publishPacket(5, { topic: "", payload: "2", properties: [P.topicAlias(3)] }));
    // The alias is the publisher's business [MQTT-3.3.2-12 (5.0)]: subscribers get the full topic, no alias [MQTT-3.1.2-27 (5.0)].
    await sub.expect(publishPacket(5, { topic: "long/topic/name", payload: "1" }));
    await sub.expect(publishPacket(5, { topic: "long/topic/name", payload: "2" }));
    await pub.disconnect();
    await sub.disconnect();
  });
});

Deno.test("v5: the broker uses Topic Aliases toward a client that allows them [MQTT-3.3.2-11 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const sub = await connect({ version: 5, clientId: "aliased", properties: [P.topicAliasMaximum(1)] });
    await subscribe(sub, 1, [["t/#", 0]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(
      publishPacket(5, { topic: "t/a", payload: "1" }),
      publishPacket(5, { topic: "t/a", payload: "2" }),
      publishPacket(5, { topic: "t/b", payload: "3" }),
    );
    await sub.expect(
      publishPacket(5, { topic: "t/a", payload: "1", properties: [P.topicAlias(1)] }),
      "sets alias 1",
    );
    await sub.expect(
      publishPacket(5, { topic: "", payload: "2", properties: [P.topicAlias(1)] }),
      "uses alias 1",
    );
    // Never an alias above the client's Topic Alias Maximum [MQTT-3.3.2-11 (5.0)].
    await sub.expect(publishPacket(5, { topic: "t/b", payload: "3" }), "no alias left: full topic");
    await pub.disconnect();
    await sub.disconnect();
  });
});

Deno.test("v5: overlapping subscriptions with identifiers: one message carries both [MQTT-3.3.4-4 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "both" });
    await client.send(subscribePacket(5, 1, [["x/+", 0]], [P.subscriptionId(1)]));
    await client.expect(subackPacket(5, 1, [0]));
    await client.send(subscribePacket(5, 2, [["x/#", 0]], [P.subscriptionId(2)]));
    await client.expect(subackPacket(5, 2, [0]));
    await client.send(publishPacket(5, { topic: "x/y", payload: "m" }));
    const message = await client.expectPacket(3);
    assert.deepEqual([...(message.properties?.subscriptionIdentifiers ?? [])].sort(), [1, 2]);
    await client.barrier("one copy");
    await client.disconnect();
  });
});

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: the authorizer refuses a SUBSCRIBE per filter (v5 0x87, v4 0x80)`, async () => {
    const authorizer = {
      canPublish: () => true,
      canSubscribe: (_client: unknown, filter: string) => !filter.startsWith("secret"),
      canReceive: () => true,
    };
    await withBroker({ authorizer }, async ({ connect }) => {
      const client = await connect({ version, clientId: "nosy" });
      await client.send(subscribePacket(version, 1, [["open", 1], ["secret/#", 1]]));
      await client.expect(subackPacket(version, 1, [1, version === 5 ? 0x87 : 0x80]));
      await client.disconnect();
    });
  });

  Deno.test(`${v(version)}: a PUBLISH the authorizer refuses is acked but not routed (v5 PUBACK 0x87)`, async () => {
    const authorizer = {
      canPublish: (_client: unknown, topic: string) => topic !== "forbidden",
      canSubscribe: () => true,
      canReceive: () => true,
    };
    await withBroker({ authorizer }, async ({ connect }) => {
      const sub = await connect({ version, clientId: "sub" });
      await subscribe(sub, 1, [["#", 0]]);
      const pub = await connect({ version, clientId: "pub" });
      await pub.send(publishPacket(version, { topic: "forbidden", payload: "x", qos: 1, id: 1 }));
      const ack = await pub.expectPacket(4, "PUBACK");
      assert.equal(ack.packetId, 1);
      assert.equal(ack.reasonCode, version === 5 ? 0x87 : 0, "v5: 0x87 Not authorized");
      await pub.barrier();
      await sub.barrier("nothing routed");
      await pub.disconnect();
      await sub.disconnect();
    });
  });
}

Deno.test("v3.1: an MQIsdp client subscribes, publishes and receives like 3.1.1", async () => {
  await withBroker({}, async ({ connect }) => {
    const client = await connect({ version: 3, clientId: "old" });
    await client.send(subscribePacket(3, 1, [["legacy/+", 1]]));
    await client.expect(hex("90 03 00 01 01"), "SUBACK");
    await client.send(publishPacket(3, { topic: "legacy/a", payload: "x", qos: 1, id: 7 }));
    await client.expect(publishPacket(3, { topic: "legacy/a", payload: "x", qos: 1, id: 1 }));
    await client.expect(puback(3, 7));
    await client.send(puback(3, 1));
    await client.send(unsubscribePacket(3, 2, ["legacy/+"]));
    await client.expect(hex("b0 02 00 02"), "UNSUBACK");
    await client.disconnect();
  });
});

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: a filter past topicLimits is refused in its SUBACK slot`, async () => {
    await withBroker({ topicLimits: { maxLength: 12, maxDepth: 3 } }, async ({ connect }) => {
      const client = await connect({ version, clientId: "limits" });
      const bad = version === 5 ? 0x8f : 0x80;
      await client.send(subscribePacket(version, 1, [["a/b/c", 0], ["a/b/c/d", 0], ["abcdefghijklm", 0]]));
      await client.expect(subackPacket(version, 1, [0, bad, bad]), "too deep and too long refused");
      // UNSUBSCRIBE of a filter past the limits: 0x8F in its slot (v5), the connection stays.
      await client.send(unsubscribePacket(version, 2, ["a/b/c", "a/b/c/d"]));
      await client.expect(unsubackPacket(version, 2, [0x00, 0x8f]), "UNSUBACK");
      // The good filter still works after a refused one.
      await client.barrier();
      await client.disconnect();
    });
  });
}
