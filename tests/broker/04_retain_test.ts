/**
 * Retained messages (5.0 section 3.3.1.3, 4.8 for shared subscriptions): stored, replaced, deleted by an empty
 * payload, sent on subscribe with RETAIN set; v5 Retain Handling, Retain As Published and Message Expiry.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import {
  P,
  puback,
  publishPacket,
  subOptions,
  subscribe,
  subscribePacket,
  v,
  VERSIONS,
  withBroker,
} from "./_wire.ts";

for (const version of VERSIONS) {
  Deno.test(
    `${
      v(version)
    }: a retained message is sent to a new subscriber with RETAIN 1 [MQTT-3.3.1-6 (3.1.1)] [MQTT-3.3.1-8 (3.1.1)] [MQTT-3.3.1-9 (5.0)]`,
    async () => {
      await withBroker({}, async ({ connect }) => {
        const live = await connect({ version, clientId: "live" });
        await subscribe(live, 1, [["status/+", 0]]);
        const pub = await connect({ version, clientId: "pub" });
        await pub.send(publishPacket(version, { topic: "status/door", payload: "open", retain: true }));
        // A subscriber that existed gets it as a normal message, RETAIN 0 [MQTT-3.3.1-9 (3.1.1)] [MQTT-3.3.1-12 (5.0)].
        await live.expect(
          publishPacket(version, { topic: "status/door", payload: "open" }),
          "live, RETAIN 0",
        );
        await pub.barrier();
        const late = await connect({ version, clientId: "late" });
        await subscribe(late, 1, [["status/+", 0]]);
        await late.expect(
          publishPacket(version, { topic: "status/door", payload: "open", retain: true }),
          "retained, RETAIN 1",
        );
        await late.barrier();
        for (const c of [live, pub, late]) await c.disconnect();
      });
    },
  );

  Deno.test(`${v(version)}: a new retained message replaces the old one [MQTT-3.3.1-5 (3.1.1)] [MQTT-3.3.1-5 (5.0)]`, async () => {
    await withBroker({}, async ({ connect }) => {
      const pub = await connect({ version, clientId: "pub" });
      await pub.send(
        publishPacket(version, { topic: "t", payload: "old", retain: true }),
        publishPacket(version, { topic: "t", payload: "new", retain: true }),
      );
      await pub.barrier();
      const sub = await connect({ version, clientId: "sub" });
      await subscribe(sub, 1, [["t", 0]]);
      await sub.expect(publishPacket(version, { topic: "t", payload: "new", retain: true }));
      await sub.barrier("only the newest");
      await pub.disconnect();
      await sub.disconnect();
    });
  });

  Deno.test(
    `${
      v(version)
    }: an empty retained payload deletes the retained message [MQTT-3.3.1-10 (3.1.1)] [MQTT-3.3.1-11 (3.1.1)] [MQTT-3.3.1-6 (5.0)] [MQTT-3.3.1-7 (5.0)]`,
    async () => {
      await withBroker({}, async ({ connect, broker }) => {
        const live = await connect({ version, clientId: "live" });
        await subscribe(live, 1, [["gone", 0]]);
        const pub = await connect({ version, clientId: "pub" });
        await pub.send(publishPacket(version, { topic: "gone", payload: "x", retain: true }));
        await pub.send(publishPacket(version, { topic: "gone", payload: "", retain: true }));
        await pub.barrier();
        await live.expect(publishPacket(version, { topic: "gone", payload: "x" }));
        // The deleting message still goes to current subscribers as a normal message.
        await live.expect(publishPacket(version, { topic: "gone", payload: "" }), "empty message forwarded");
        assert.equal(broker.retained.size, 0, "nothing stored");
        const late = await connect({ version, clientId: "late" });
        await subscribe(late, 1, [["gone", 0]]);
        await late.barrier("no retained message");
        for (const c of [live, pub, late]) await c.disconnect();
      });
    },
  );

  Deno.test(`${v(version)}: a wildcard subscription gets every matching retained message`, async () => {
    await withBroker({}, async ({ connect }) => {
      const pub = await connect({ version, clientId: "pub" });
      const topics = ["home/a", "home/b/c", "home", "other/x"];
      for (const topic of topics) {
        await pub.send(publishPacket(version, { topic, payload: topic, retain: true }));
      }
      await pub.barrier();
      const sub = await connect({ version, clientId: "sub" });
      await subscribe(sub, 1, [["home/#", 0]]);
      const received = new Set<string>();
      for (let i = 0; i < 3; i++) {
        const message = await sub.expectPacket(3);
        assert.equal(message.retain, true);
        received.add(message.topic);
      }
      assert.deepEqual([...received].sort(), ["home", "home/a", "home/b/c"]);
      await sub.barrier("not other/x");
      await pub.disconnect();
      await sub.disconnect();
    });
  });

  Deno.test(`${v(version)}: a retained message is sent at the lower of its QoS and the granted QoS`, async () => {
    await withBroker({}, async ({ connect }) => {
      const pub = await connect({ version, clientId: "pub" });
      await pub.send(publishPacket(version, { topic: "rq", payload: "m", qos: 1, id: 1, retain: true }));
      await pub.expect(puback(version, 1, version === 5 ? 0x10 : 0));
      const high = await connect({ version, clientId: "high" });
      await subscribe(high, 1, [["rq", 2]]);
      await high.expect(publishPacket(version, { topic: "rq", payload: "m", qos: 1, id: 1, retain: true }));
      await high.send(puback(version, 1));
      const low = await connect({ version, clientId: "low" });
      await subscribe(low, 1, [["rq", 0]]);
      await low.expect(publishPacket(version, { topic: "rq", payload: "m", retain: true }));
      for (const c of [pub, high, low]) await c.disconnect();
    });
  });

  Deno.test(`${v(version)}: a subscription matching more retained messages than the output limit and the queue hold gets every one, paced by the client`, async () => {
    // 300 QoS 0 and 300 QoS 1 retained messages of 1 KiB: 600 KiB against a 16 KiB output limit, and 300 QoS 1
    // messages against 5 in flight and 10 queued. None is dropped: they go out as the client takes them.
    await withBroker(
      { maxOutputBytes: 16 * 1024, maxInflight: 5, maxQueued: 10 },
      async ({ broker, connect }) => {
        const pub = await connect({ version, clientId: "pub" });
        const payload = new Uint8Array(1024);
        const count = 300;
        for (let i = 0; i < count; i++) {
          await pub.send(publishPacket(version, { topic: `r0/${i}`, payload, retain: true }));
          await pub.send(
            publishPacket(version, { topic: `r1/${i}`, payload, qos: 1, id: 1 + i, retain: true }),
          );
          await pub.expect(puback(version, 1 + i, version === 5 ? 0x10 : 0), "no subscriber yet");
        }
        await pub.barrier();
        const sub = await connect({ version, clientId: "sub" });
        await sub.send(subscribePacket(version, 1, [["r0/#", 0], ["r1/#", 1]]));
        await sub.expectPacket(9, "SUBACK");
        const seen = new Set<string>();
        while (seen.size < 2 * count) {
          const message = await sub.expectPacket(3, `retained message ${seen.size + 1}`);
          assert.equal(message.retain, true);
          assert.ok(!seen.has(message.topic), `${message.topic} once`);
          seen.add(message.topic);
          if (message.qos === 1) await sub.send(puback(version, message.packetId!));
        }
        await sub.barrier("nothing more");
        assert.equal(broker.session("sub")!.dropped, 0);
        await sub.disconnect();
        await pub.disconnect();
      },
    );
  });

  Deno.test(`${v(version)}: a retained message replaced while still owed is not sent in its old form; the new one arrives live`, async () => {
    await withBroker({ maxInflight: 1 }, async ({ connect }) => {
      const pub = await connect({ version, clientId: "pub" });
      const noMatch = version === 5 ? 0x10 : 0;
      for (let i = 1; i <= 3; i++) {
        await pub.send(
          publishPacket(version, { topic: `t/${i}`, payload: "old", qos: 1, id: i, retain: true }),
        );
        await pub.expect(puback(version, i, noMatch));
      }
      const sub = await connect({ version, clientId: "sub" });
      await subscribe(sub, 1, [["t/1", 1], ["t/2", 1], ["t/3", 1]]); // one filter each: a known order
      await sub.expect(publishPacket(version, { topic: "t/1", payload: "old", qos: 1, id: 1, retain: true }));
      // t/2 and t/3 are owed (the window of 1 is full) when t/3 changes.
      await pub.send(publishPacket(version, { topic: "t/3", payload: "new", qos: 1, id: 4, retain: true }));
      await pub.expect(puback(version, 4));
      await sub.send(puback(version, 1));
      await sub.expect(
        publishPacket(version, { topic: "t/3", payload: "new", qos: 1, id: 2 }),
        "live, RETAIN 0",
      );
      await sub.send(puback(version, 2));
      await sub.expect(publishPacket(version, { topic: "t/2", payload: "old", qos: 1, id: 3, retain: true }));
      await sub.send(puback(version, 3));
      await sub.barrier("t/3 'old' is never sent after 'new'");
      await sub.disconnect();
      await pub.disconnect();
    });
  });

  Deno.test(`${v(version)}: retained QoS 1 messages still owed when the client goes are queued in its persistent session`, async () => {
    await withBroker({ maxInflight: 1 }, async ({ connect }) => {
      const pub = await connect({ version, clientId: "pub" });
      for (let i = 1; i <= 4; i++) {
        await pub.send(
          publishPacket(version, { topic: `k/${i}`, payload: `${i}`, qos: 1, id: i, retain: true }),
        );
        await pub.expect(puback(version, i, version === 5 ? 0x10 : 0));
      }
      const keep = version === 5
        ? { version, clientId: "keep", clean: false, properties: [P.sessionExpiry(3600)] }
        : { version, clientId: "keep", clean: false };
      const first = await connect(keep);
      await subscribe(first, 1, [["k/1", 1], ["k/2", 1], ["k/3", 1], ["k/4", 1]]); // one filter each: a known order
      await first.expect(publishPacket(version, { topic: "k/1", payload: "1", qos: 1, id: 1, retain: true }));
      await first.close(); // no PUBACK, no DISCONNECT: k/2..k/4 were still owed
      const again = await connect(keep, true);
      await again.expect(
        publishPacket(version, { topic: "k/1", payload: "1", qos: 1, id: 1, retain: true, dup: true }),
        "the unacknowledged one again, DUP set [MQTT-4.4.0-1 (3.1.1)] [MQTT-4.4.0-1 (5.0)]",
      );
      await again.send(puback(version, 1));
      for (let i = 2; i <= 4; i++) {
        await again.expect(
          publishPacket(version, { topic: `k/${i}`, payload: `${i}`, qos: 1, id: i, retain: true }),
        );
        await again.send(puback(version, i));
      }
      await again.barrier();
      await again.disconnect();
      await pub.disconnect();
    });
  });

  Deno.test(`${v(version)}: subscribing again re-sends the retained messages [MQTT-3.8.4-3 (3.1.1)] [MQTT-3.8.4-4 (5.0)]`, async () => {
    await withBroker({}, async ({ connect }) => {
      const client = await connect({ version, clientId: "twice" });
      await client.send(publishPacket(version, { topic: "again", payload: "r", retain: true }));
      await subscribe(client, 1, [["again", 0]]);
      await client.expect(publishPacket(version, { topic: "again", payload: "r", retain: true }));
      await subscribe(client, 2, [["again", 0]]);
      await client.expect(publishPacket(version, { topic: "again", payload: "r", retain: true }), "re-sent");
      await client.disconnect();
    });
  });
}

Deno.test("v4: what a client is owed in retained messages is capped at one copy of the store plus 1,000; past it they are dropped and counted", async () => {
  await withBroker({ maxInflight: 1 }, async ({ broker, connect }) => {
    const pub = await connect({ version: 4, clientId: "pub" });
    const stored = 600;
    for (let i = 0; i < stored; i++) {
      await pub.send(publishPacket(4, { topic: `c/${i}`, payload: "x", qos: 1, id: 1 + i, retain: true }));
      await pub.expect(puback(4, 1 + i));
    }
    const sub = await connect({ version: 4, clientId: "sub" });
    // Three SUBSCRIBEs in one write, before it acknowledges anything: the first message fills its window of 1,
    // the rest stay owed, and the third copy passes the cap.
    await sub.send(...[1, 2, 3].map((id) => subscribePacket(4, id, [["c/#", 1]])));
    let subacks = 0;
    let received = 0;
    while (subacks < 3 || received < stored + 1000 + 1) {
      const frame = await sub.nextPacket(`packet after ${subacks} SUBACKs and ${received} messages`);
      if (frame.type === 9) {
        subacks++;
        if (subacks === 3) {
          assert.equal(
            broker.session("sub")!.dropped,
            3 * stored - 1 - (stored + 1000),
            "the third copy is cut",
          );
        }
      } else {
        assert.equal(frame.type, 3, "SUBACK or PUBLISH");
        received++;
        await sub.send(puback(4, frame.packetId!));
      }
    }
    await sub.barrier("nothing past the cap");
    await sub.disconnect();
    await pub.disconnect();
  });
});

Deno.test("v5: Retain Handling 0 sends retained messages at every subscribe [MQTT-3.3.1-9 (5.0)]", async () => {
  await retainHandlingCase(0, [true, true]);
});

Deno.test("v5: Retain Handling 1 sends them only for a new subscription [MQTT-3.3.1-10 (5.0)]", async () => {
  await retainHandlingCase(1, [true, false]);
});

Deno.test("v5: Retain Handling 2 never sends them [MQTT-3.3.1-11 (5.0)]", async () => {
  await retainHandlingCase(2, [false, false]);
});

async function retainHandlingCase(handling: 0 | 1 | 2, sent: readonly [boolean, boolean]): Promise<void> {
  await withBroker({}, async ({ connect }) => {
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "rh", payload: "kept", retain: true }));
    await pub.barrier();
    const sub = await connect({ version: 5, clientId: "sub" });
    for (const [i, expected] of sent.entries()) {
      await subscribe(sub, i + 1, [["rh", subOptions(0, { retainHandling: handling })]], [0]);
      if (expected) await sub.expect(publishPacket(5, { topic: "rh", payload: "kept", retain: true }));
      await sub.barrier(`subscribe #${i + 1}: ${expected ? "one" : "no"} retained message`);
    }
    await pub.disconnect();
    await sub.disconnect();
  });
}

Deno.test("v5: Retain As Published keeps RETAIN on forwarded messages [MQTT-3.3.1-12 (5.0)] [MQTT-3.3.1-13 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const rap = await connect({ version: 5, clientId: "rap" });
    await subscribe(rap, 1, [["rap", subOptions(0, { retainAsPublished: true })]], [0]);
    const plain = await connect({ version: 5, clientId: "plain" });
    await subscribe(plain, 1, [["rap", 0]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "rap", payload: "r", retain: true }));
    await pub.send(publishPacket(5, { topic: "rap", payload: "n" }));
    await rap.expect(publishPacket(5, { topic: "rap", payload: "r", retain: true }), "RETAIN kept");
    await rap.expect(publishPacket(5, { topic: "rap", payload: "n" }), "RETAIN 0 stays 0");
    await plain.expect(publishPacket(5, { topic: "rap", payload: "r" }), "RETAIN cleared");
    await plain.expect(publishPacket(5, { topic: "rap", payload: "n" }));
    for (const c of [rap, plain, pub]) await c.disconnect();
  });
});

Deno.test("v5: a shared subscription gets no retained messages (5.0 section 4.8.2)", async () => {
  await withBroker({}, async ({ connect }) => {
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "shared/r", payload: "x", retain: true }));
    await pub.barrier();
    const member = await connect({ version: 5, clientId: "member" });
    await subscribe(member, 1, [["$share/g/shared/r", 0]]);
    await member.barrier("no retained message for $share");
    await pub.disconnect();
    await member.disconnect();
  });
});

Deno.test("v5: a retained message expires; until then it carries the remaining interval [MQTT-3.3.2-5 (5.0)] [MQTT-3.3.2-6 (5.0)]", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect }) => {
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(
      publishPacket(5, { topic: "exp", payload: "soon", retain: true, properties: [P.messageExpiry(10)] }),
    );
    await pub.barrier();
    clock.advance(4000);
    const early = await connect({ version: 5, clientId: "early" });
    await subscribe(early, 1, [["exp", 0]]);
    await early.expect(
      publishPacket(5, { topic: "exp", payload: "soon", retain: true, properties: [P.messageExpiry(6)] }),
      "remaining 6 s",
    );
    clock.advance(6000);
    const late = await connect({ version: 5, clientId: "late" });
    await subscribe(late, 1, [["exp", 0]]);
    await late.barrier("expired: not sent");
    for (const c of [pub, early, late]) await c.disconnect();
  });
});

Deno.test("v4: a v5 publisher's retained message reaches a v4 subscriber without properties", async () => {
  await withBroker({}, async ({ connect }) => {
    const pub = await connect({ version: 5, clientId: "pub5" });
    await pub.send(
      publishPacket(5, { topic: "mix", payload: "p", retain: true, properties: [P.userProperty("k", "v")] }),
    );
    await pub.barrier();
    const sub = await connect({ version: 4, clientId: "sub4" });
    await subscribe(sub, 1, [["mix", 0]]);
    await sub.expect(publishPacket(4, { topic: "mix", payload: "p", retain: true }));
    await pub.disconnect();
    await sub.disconnect();
  });
});

Deno.test("maxRetained: a new retained topic past the limit is not stored; replacing one still works", async () => {
  await withBroker({ maxRetained: 1 }, async ({ connect, broker }) => {
    const pub = await connect({ version: 4, clientId: "pub" });
    await pub.send(
      publishPacket(4, { topic: "one", payload: "1", retain: true }),
      publishPacket(4, { topic: "two", payload: "2", retain: true }),
      publishPacket(4, { topic: "one", payload: "1b", retain: true }),
    );
    await pub.barrier();
    assert.equal(broker.retained.size, 1);
    const sub = await connect({ version: 4, clientId: "sub" });
    await subscribe(sub, 1, [["#", 0]]);
    await sub.expect(publishPacket(4, { topic: "one", payload: "1b", retain: true }));
    await sub.barrier("two was not stored");
    await pub.disconnect();
    await sub.disconnect();
  });
});
