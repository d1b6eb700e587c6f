/**
 * PUBLISH at QoS 0/1/2 in both directions (5.0 sections 3.3 - 3.7, 4.3, 4.6, 4.9): acknowledgement bytes, packet
 * identifiers, exactly-once delivery, the inflight window and Receive Maximum, ordering, and the delivered QoS
 * being the lower of the published and the granted one.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import type { QoS } from "../../lib/packet/packet_type.ts";
import { writeAll } from "../../lib/transport/transport.ts";
import {
  concat,
  connectPacket,
  P,
  puback,
  pubcomp,
  publishPacket,
  pubrec,
  pubrel,
  subscribe,
  v,
  VERSIONS,
  withBroker,
} from "./_wire.ts";

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: QoS 1 PUBLISH is answered by PUBACK with its packet id [MQTT-4.3.2-2 (3.1.1)] [MQTT-4.3.2-4 (5.0)]`, async () => {
    await withBroker({}, async ({ connect, broker }) => {
      const sub = await connect({ version, clientId: "sub" });
      await subscribe(sub, 1, [["q1", 1]]);
      const pub = await connect({ version, clientId: "pub" });
      await pub.send(publishPacket(version, { topic: "q1", payload: "one", qos: 1, id: 0x0a0b }));
      await pub.expect(puback(version, 0x0a0b), "PUBACK");
      await sub.expect(
        publishPacket(version, { topic: "q1", payload: "one", qos: 1, id: 1 }),
        "PUBLISH QoS 1",
      );
      await sub.send(puback(version, 1));
      await sub.barrier();
      assert.equal(broker.session("sub")?.inflight.size, 0, "acknowledged");
      await pub.disconnect();
      await sub.disconnect();
    });
  });

  Deno.test(`${v(version)}: QoS 2 PUBLISH: PUBREC, then PUBREL gets PUBCOMP [MQTT-4.3.3-2 (3.1.1)] [MQTT-4.3.3-8 (5.0)] [MQTT-4.3.3-11 (5.0)]`, async () => {
    await withBroker({}, async ({ connect, broker }) => {
      const sub = await connect({ version, clientId: "sub" });
      await subscribe(sub, 1, [["q2", 2]]);
      const pub = await connect({ version, clientId: "pub" });
      await pub.send(publishPacket(version, { topic: "q2", payload: "two", qos: 2, id: 77 }));
      await pub.expect(pubrec(version, 77), "PUBREC");
      // Outgoing QoS 2 to the subscriber: PUBLISH, PUBREC from it, PUBREL from us, PUBCOMP from it.
      await sub.expect(
        publishPacket(version, { topic: "q2", payload: "two", qos: 2, id: 1 }),
        "PUBLISH QoS 2",
      );
      await sub.send(pubrec(version, 1));
      await sub.expect(pubrel(version, 1), "PUBREL");
      await sub.send(pubcomp(version, 1));
      await pub.send(pubrel(version, 77));
      await pub.expect(pubcomp(version, 77), "PUBCOMP");
      await sub.barrier();
      assert.equal(broker.session("sub")?.inflight.size, 0, "outgoing flow complete");
      assert.equal(broker.session("pub")?.incoming.size, 0, "incoming flow complete");
      await pub.disconnect();
      await sub.disconnect();
    });
  });

  Deno.test(
    `${
      v(version)
    }: a QoS 2 PUBLISH resent with DUP before PUBREL is not delivered twice [MQTT-4.3.3-2 (3.1.1)] [MQTT-4.3.3-10 (5.0)]`,
    async () => {
      await withBroker({}, async ({ connect }) => {
        const sub = await connect({ version, clientId: "sub" });
        await subscribe(sub, 1, [["once", 0]]);
        const pub = await connect({ version, clientId: "pub" });
        await pub.send(publishPacket(version, { topic: "once", payload: "m", qos: 2, id: 3 }));
        await pub.expect(pubrec(version, 3));
        await pub.send(publishPacket(version, { topic: "once", payload: "m", qos: 2, id: 3, dup: true }));
        await pub.expect(pubrec(version, 3), "PUBREC again for the duplicate");
        await pub.send(pubrel(version, 3));
        await pub.expect(pubcomp(version, 3));
        await sub.expect(publishPacket(version, { topic: "once", payload: "m" }), "delivered once");
        await sub.barrier("not delivered twice");
        // After PUBCOMP the identifier is free: the same id is a new message [MQTT-4.3.3-2 (3.1.1)] [MQTT-4.3.3-12 (5.0)].
        await pub.send(publishPacket(version, { topic: "once", payload: "n", qos: 2, id: 3 }));
        await pub.expect(pubrec(version, 3));
        await sub.expect(
          publishPacket(version, { topic: "once", payload: "n" }),
          "a new message with the old id",
        );
        await pub.send(pubrel(version, 3));
        await pub.expect(pubcomp(version, 3));
        await pub.disconnect();
        await sub.disconnect();
      });
    },
  );

  Deno.test(`${v(version)}: PUBREL for an unknown packet id gets PUBCOMP 0x00: the client lost our PUBCOMP and resent PUBREL (issue #14 item 8)`, async () => {
    await withBroker({}, async ({ connect }) => {
      const client = await connect({ version, clientId: "lost" });
      await client.send(pubrel(version, 500));
      // Recovery, as Mosquitto answers: 0x92 made MQTT.js report an error for a message that went exactly once.
      await client.expect(pubcomp(version, 500), "PUBCOMP 0x00");
      await client.barrier();
      await client.disconnect();
    });
  });

  Deno.test(`${v(version)}: delivered QoS is the lower of published and granted QoS [MQTT-3.8.4-6 (3.1.1)] [MQTT-3.8.4-8 (5.0)]`, async () => {
    await withBroker({}, async ({ connect }) => {
      const sub = await connect({ version, clientId: "sub" });
      await subscribe(sub, 1, [["g/0", 0], ["g/1", 1], ["g/2", 2]]);
      const pub = await connect({ version, clientId: "pub" });
      let nextId = 1;
      for (const published of [0, 1, 2] as const) {
        for (const granted of [0, 1, 2] as const) {
          const topic = `g/${granted}`;
          const payload = `${published}${granted}`;
          await pub.send(publishPacket(version, { topic, payload, qos: published, id: 100 }));
          if (published === 1) await pub.expect(puback(version, 100));
          if (published === 2) {
            await pub.expect(pubrec(version, 100));
            await pub.send(pubrel(version, 100));
            await pub.expect(pubcomp(version, 100));
          }
          const qos = Math.min(published, granted) as QoS;
          const id = qos > 0 ? nextId++ : undefined;
          await sub.expect(
            publishPacket(version, { topic, payload, qos, ...(id === undefined ? {} : { id }) }),
            `published ${published}, granted ${granted}: QoS ${qos}`,
          );
          if (qos === 1) await sub.send(puback(version, id!));
          if (qos === 2) {
            await sub.send(pubrec(version, id!));
            await sub.expect(pubrel(version, id!));
            await sub.send(pubcomp(version, id!));
          }
        }
      }
      await sub.barrier();
      await pub.disconnect();
      await sub.disconnect();
    });
  });

  Deno.test(`${v(version)}: maxInflight bounds unacknowledged messages; acks let the queue flow`, async () => {
    await withBroker({ maxInflight: 2 }, async ({ connect, broker }) => {
      const sub = await connect({ version, clientId: "slow" });
      await subscribe(sub, 1, [["w", 1]]);
      const pub = await connect({ version, clientId: "pub" });
      for (let i = 0; i < 5; i++) {
        await pub.send(publishPacket(version, { topic: "w", payload: `${i}`, qos: 1, id: i + 1 }));
        await pub.expect(puback(version, i + 1));
      }
      await sub.expect(publishPacket(version, { topic: "w", payload: "0", qos: 1, id: 1 }));
      await sub.expect(publishPacket(version, { topic: "w", payload: "1", qos: 1, id: 2 }));
      await sub.barrier("only 2 in flight");
      assert.equal(broker.session("slow")?.queued, 3);
      await sub.send(puback(version, 1));
      await sub.expect(
        publishPacket(version, { topic: "w", payload: "2", qos: 1, id: 3 }),
        "third after an ack",
      );
      await sub.barrier("still 2 in flight");
      await sub.send(puback(version, 2), puback(version, 3));
      await sub.expect(publishPacket(version, { topic: "w", payload: "3", qos: 1, id: 4 }));
      await sub.expect(publishPacket(version, { topic: "w", payload: "4", qos: 1, id: 5 }));
      await sub.send(puback(version, 4), puback(version, 5));
      await sub.barrier();
      assert.equal(broker.session("slow")?.inflight.size, 0);
      await pub.disconnect();
      await sub.disconnect();
    });
  });

  Deno.test(`${v(version)}: QoS 1 messages to one subscriber keep the publisher's order [MQTT-4.6.0-6 (3.1.1)] [MQTT-4.6.0-5 (5.0)]`, async () => {
    await withBroker({ maxInflight: 3 }, async ({ connect }) => {
      const sub = await connect({ version, clientId: "ordered" });
      await subscribe(sub, 1, [["ord/#", 2]]);
      const pub = await connect({ version, clientId: "pub" });
      const count = 12;
      for (let i = 0; i < count; i++) {
        await pub.send(publishPacket(version, { topic: `ord/${i % 3}`, payload: `${i}`, qos: 1, id: i + 1 }));
      }
      for (let i = 0; i < count; i++) await pub.expect(puback(version, i + 1));
      for (let i = 0; i < count; i++) {
        const frame = await sub.expectPacket(3, `message ${i}`);
        assert.equal(new TextDecoder().decode(frame.payload), `${i}`, "in order");
        assert.equal(frame.qos, 1);
        await sub.send(puback(version, frame.packetId!));
      }
      await sub.barrier();
      await pub.disconnect();
      await sub.disconnect();
    });
  });

  Deno.test(`${v(version)}: outgoing packet ids are distinct while in flight and never 0 [MQTT-2.3.1-1 (3.1.1)] [MQTT-2.3.1-4 (3.1.1)] [MQTT-2.2.1-4 (5.0)]`, async () => {
    await withBroker({}, async ({ connect }) => {
      const sub = await connect({ version, clientId: "ids" });
      await subscribe(sub, 1, [["ids", 2]]);
      const pub = await connect({ version, clientId: "pub" });
      for (let i = 0; i < 6; i++) {
        await pub.send(
          publishPacket(version, { topic: "ids", payload: `${i}`, qos: (1 + (i % 2)) as QoS, id: i + 1 }),
        );
      }
      for (let i = 0; i < 6; i++) {
        if (i % 2 === 0) await pub.expect(puback(version, i + 1));
        else await pub.expect(pubrec(version, i + 1));
      }
      await pub.close();
      const seen = new Set<number>();
      for (let i = 0; i < 6; i++) {
        const frame = await sub.expectPacket(3);
        assert.ok(frame.packetId !== undefined && frame.packetId > 0);
        assert.ok(!seen.has(frame.packetId), `id ${frame.packetId} reused while in flight`);
        seen.add(frame.packetId);
      }
      await sub.close();
    });
  });

  Deno.test(`${v(version)}: an unknown PUBACK or PUBCOMP is ignored`, async () => {
    await withBroker({}, async ({ connect }) => {
      const client = await connect({ version, clientId: "stray" });
      await client.send(puback(version, 42));
      await client.barrier("nothing for a stray PUBACK");
      await client.send(pubcomp(version, 43));
      await client.barrier("nothing for a stray PUBCOMP");
      await client.disconnect();
    });
  });
}

Deno.test("v5: PUBACK says 0x10 No matching subscribers when nobody subscribed", async () => {
  await withBroker({}, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "alone" });
    await client.send(publishPacket(5, { topic: "nobody", payload: "x", qos: 1, id: 1 }));
    await client.expect(puback(5, 1, 0x10), "PUBACK 0x10");
    await client.send(publishPacket(5, { topic: "nobody", payload: "x", qos: 2, id: 2 }));
    await client.expect(pubrec(5, 2, 0x10), "PUBREC 0x10");
    await client.send(pubrel(5, 2));
    // 0x10 is a success code, so the flow goes on to PUBCOMP.
    await client.expect(pubcomp(5, 2), "PUBCOMP");
    await client.disconnect();
  });
});

Deno.test("v5: the client's Receive Maximum caps messages in flight to it [MQTT-3.3.4-9 (5.0)]", async () => {
  await withBroker({ maxInflight: 100 }, async ({ connect }) => {
    const sub = await connect({ version: 5, clientId: "rm", properties: [P.receiveMaximum(1)] });
    await subscribe(sub, 1, [["rm", 2]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    for (let i = 0; i < 3; i++) {
      await pub.send(publishPacket(5, { topic: "rm", payload: `${i}`, qos: 2, id: i + 1 }));
      await pub.expect(pubrec(5, i + 1));
    }
    await sub.expect(publishPacket(5, { topic: "rm", payload: "0", qos: 2, id: 1 }));
    await sub.barrier("one in flight");
    // A QoS 2 message stays in flight until PUBCOMP, not PUBREC (5.0 section 4.9).
    await sub.send(pubrec(5, 1));
    await sub.expect(pubrel(5, 1));
    await sub.barrier("still one in flight after PUBREC");
    await sub.send(pubcomp(5, 1));
    await sub.expect(publishPacket(5, { topic: "rm", payload: "1", qos: 2, id: 2 }), "next after PUBCOMP");
    await sub.barrier();
    await pub.disconnect();
    await sub.close();
  });
});

Deno.test("v5: a PUBREC with an error reason ends that QoS 2 flow without PUBREL (5.0 section 4.3.3)", async () => {
  await withBroker({}, async ({ connect, broker }) => {
    const sub = await connect({ version: 5, clientId: "refuser", properties: [P.receiveMaximum(1)] });
    await subscribe(sub, 1, [["r", 2]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "r", payload: "a", qos: 2, id: 1 }));
    await pub.send(publishPacket(5, { topic: "r", payload: "b", qos: 2, id: 2 }));
    await sub.expect(publishPacket(5, { topic: "r", payload: "a", qos: 2, id: 1 }));
    await pub.expect(pubrec(5, 1));
    await pub.expect(pubrec(5, 2));
    await sub.send(pubrec(5, 1, 0x80));
    await sub.expect(
      publishPacket(5, { topic: "r", payload: "b", qos: 2, id: 2 }),
      "next message, no PUBREL",
    );
    assert.equal(broker.session("refuser")?.inflight.has(1), false);
    await pub.send(pubrel(5, 1), pubrel(5, 2));
    await pub.expect(pubcomp(5, 1));
    await pub.expect(pubcomp(5, 2));
    await pub.disconnect();
    await sub.close();
  });
});

Deno.test("v5: more unacknowledged QoS 2 PUBLISH than Receive Maximum is DISCONNECT 0x93 [MQTT-3.3.4-7 (5.0)]", async () => {
  await withBroker({ receiveMaximum: 2 }, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "flood" });
    for (let id = 1; id <= 2; id++) {
      await client.send(publishPacket(5, { topic: "f", qos: 2, id }));
      await client.expect(pubrec(5, id, 0x10));
    }
    await client.send(publishPacket(5, { topic: "f", qos: 2, id: 3 }));
    await client.expectDisconnect(0x93, "DISCONNECT Receive Maximum exceeded");
    const next = await connect({ version: 5, clientId: "next" });
    await next.barrier("the broker still serves others");
    await next.disconnect();
  });
});

Deno.test("v5: a message over the client's Maximum Packet Size is not sent to it [MQTT-3.1.2-25 (5.0)]", async () => {
  await withBroker({}, async ({ connect, broker }) => {
    const sub = await connect({ version: 5, clientId: "small", properties: [P.maximumPacketSize(32)] });
    await subscribe(sub, 1, [["m/#", 1]]);
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "m/big", payload: "x".repeat(100), qos: 1, id: 1 }));
    await pub.expect(puback(5, 1));
    await pub.send(publishPacket(5, { topic: "m/ok", payload: "fits", qos: 1, id: 2 }));
    await pub.expect(puback(5, 2));
    await sub.expect(
      publishPacket(5, { topic: "m/ok", payload: "fits", qos: 1, id: 2 }),
      "only the one that fits",
    );
    await sub.send(puback(5, 2));
    await sub.barrier();
    // The dropped one does not hold a slot of the inflight window.
    assert.equal(broker.session("small")?.inflight.size, 0);
    await pub.disconnect();
    await sub.disconnect();
  });
});

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: a QoS 1 message resent by the client with DUP is acknowledged again`, async () => {
    await withBroker({}, async ({ connect }) => {
      const client = await connect({ version, clientId: "again" });
      await client.send(publishPacket(version, { topic: "t", payload: "m", qos: 1, id: 8 }));
      await client.expect(puback(version, 8, version === 5 ? 0x10 : 0));
      await client.send(publishPacket(version, { topic: "t", payload: "m", qos: 1, id: 8, dup: true }));
      await client.expect(puback(version, 8, version === 5 ? 0x10 : 0));
      await client.disconnect();
    });
  });
}

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: a 300 KB QoS 1 payload crosses many TCP reads and arrives unchanged`, async () => {
    await withBroker({}, async ({ connect }) => {
      const sub = await connect({ version, clientId: "big-sub" });
      await subscribe(sub, 1, [["big", 1]]);
      const pub = await connect({ version, clientId: "big-pub" });
      const payload = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 31) & 0xff);
      await pub.send(publishPacket(version, { topic: "big", payload, qos: 1, id: 1 }));
      await pub.expect(puback(version, 1));
      await sub.expect(publishPacket(version, { topic: "big", payload, qos: 1, id: 1 }));
      await sub.send(puback(version, 1));
      await pub.disconnect();
      await sub.disconnect();
    });
  });

  Deno.test(`${v(version)}: 2000 QoS 0 messages written at once arrive complete and in order`, async () => {
    await withBroker({}, async ({ connect }) => {
      const sub = await connect({ version, clientId: "burst-sub" });
      await subscribe(sub, 1, [["burst", 0]]);
      const pub = await connect({ version, clientId: "burst-pub" });
      const count = 2000;
      await pub.send(
        ...Array.from(
          { length: count },
          (_, i) => publishPacket(version, { topic: "burst", payload: `${i}` }),
        ),
      );
      for (let i = 0; i < count; i++) {
        const message = await sub.expectPacket(3, `message ${i}`);
        assert.equal(new TextDecoder().decode(message.payload), `${i}`);
      }
      await sub.barrier();
      await pub.disconnect();
      await sub.disconnect();
    });
  });

  Deno.test(
    `${
      v(version)
    }: a take-over resumes unacknowledged messages on the new connection with DUP [MQTT-4.4.0-1 (3.1.1)] [MQTT-4.4.0-1 (5.0)]`,
    async () => {
      await withBroker({}, async ({ connect }) => {
        const spec = version === 5
          ? { version, clientId: "moving", clean: false, properties: [P.sessionExpiry(60)] }
          : { version, clientId: "moving", clean: false };
        const first = await connect(spec);
        await subscribe(first, 1, [["mv", 1]]);
        const pub = await connect({ version, clientId: "pub" });
        await pub.send(publishPacket(version, { topic: "mv", payload: "m", qos: 1, id: 1 }));
        await pub.expect(puback(version, 1));
        await first.expect(publishPacket(version, { topic: "mv", payload: "m", qos: 1, id: 1 }));
        const second = await connect(spec, true);
        await first.expectDisconnect(0x8e);
        await second.expect(publishPacket(version, { topic: "mv", payload: "m", qos: 1, id: 1, dup: true }));
        await second.send(puback(version, 1));
        await second.barrier();
        await pub.disconnect();
        await second.disconnect();
      });
    },
  );
}

// ---- Acknowledgements of the wrong type (issue #14 item 5) ----------------------------------------------------

for (const version of VERSIONS) {
  const answer = version === 5 ? "DISCONNECT 0x82" : "closed";
  for (
    const [name, qos, wrong] of [
      ["PUBACK for a QoS 2 delivery", 2, (id: number) => puback(version, id)],
      ["PUBCOMP before PUBREC", 2, (id: number) => pubcomp(version, id)],
      ["PUBREC for a QoS 1 delivery", 1, (id: number) => pubrec(version, id)],
      ["PUBCOMP for a QoS 1 delivery", 1, (id: number) => pubcomp(version, id)],
    ] as const
  ) {
    Deno.test(`${v(version)}: ${name} is a protocol error (${answer}), not ignored (issue #14 item 5)`, async () => {
      await withBroker({}, async ({ connect }) => {
        const pub = await connect({ version, clientId: "pub" });
        const sub = await connect({ version, clientId: "sub" });
        await subscribe(sub, 1, [["t", qos]]);
        await pub.send(publishPacket(version, { topic: "t", payload: "m", qos, id: 1 }));
        await pub.expectPacket(qos === 1 ? 4 : 5, "the publisher's ack");
        const delivery = await sub.expectPacket(3, "the delivery");
        assert.equal(delivery.qos, qos);
        await sub.trySend(wrong(delivery.packetId!));
        if (version === 5) await sub.expectDisconnect(0x82, "DISCONNECT Protocol Error");
        else await sub.expectClosed("closed");
        await pub.disconnect();
      });
    });
  }
}

// ---- Incoming QoS 2 from 3.1.1 clients (issue #15 item 11) ----------------------------------------------------

Deno.test("v4: more unreleased QoS 2 PUBLISH than the broker's Receive Maximum closes the connection", async () => {
  await withBroker({ receiveMaximum: 3 }, async ({ connect }) => {
    const client = await connect({ version: 4, clientId: "hoarder" });
    for (let id = 1; id <= 3; id++) {
      await client.send(publishPacket(4, { topic: "h", qos: 2, id }));
      await client.expect(pubrec(4, id));
    }
    await client.trySend(publishPacket(4, { topic: "h", qos: 2, id: 4 }));
    await client.expectClosed("a 3.1.1 client cannot be told Receive Maximum: it is closed past it");
    const next = await connect({ version: 4, clientId: "next" });
    await next.barrier("the broker still serves others");
    await next.disconnect();
  });
});

Deno.test("v4: QoS 2 PUBLISH released in time never reach the broker's Receive Maximum", async () => {
  await withBroker({ receiveMaximum: 2 }, async ({ connect }) => {
    const client = await connect({ version: 4, clientId: "tidy" });
    for (let id = 1; id <= 6; id++) {
      await client.send(publishPacket(4, { topic: "h", qos: 2, id }));
      await client.expect(pubrec(4, id));
      await client.send(pubrel(4, id));
      await client.expect(pubcomp(4, id));
    }
    await client.barrier();
    await client.disconnect();
  });
});

// ---- A DISCONNECT the peer does not read at once (issue #14 item 2) --------------------------------------------

Deno.test("v5: DISCONNECT 0x93 reaches a client that keeps sending and reads late: no broken pipe, no reset (issue #14 item 2)", async () => {
  await withBroker({ receiveMaximum: 1 }, async ({ port }) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await writeAll(conn, connectPacket({ version: 5, clientId: "firehose" }));
      const received: number[] = [];
      const chunk = new Uint8Array(64 * 1024);
      while (received.length < 2 || received.length < 2 + received[1]!) {
        const n = await conn.read(chunk);
        assert.ok(n !== null, "CONNACK");
        received.push(...chunk.subarray(0, n));
      }
      assert.equal(received[0], 0x20, "CONNACK");
      received.length = 0;
      // Receive Maximum 1: the second unreleased QoS 2 PUBLISH is over it, and 400 more follow. Closed with these
      // bytes unread, the socket would send a reset.
      const burst = [];
      for (let id = 1; id <= 400; id++) {
        burst.push(publishPacket(5, { topic: "f", qos: 2, id, payload: "x".repeat(1000) }));
      }
      await writeAll(conn, concat(...burst));
      // The client goes on sending for a while before it reads (as a client does that pipelines): its writes
      // must not fail with a broken pipe before it could read the reason code.
      for (let i = 0; i < 50; i++) {
        await writeAll(conn, publishPacket(5, { topic: "f", payload: "more" }));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      let error: unknown;
      try {
        for (let n = await conn.read(chunk); n !== null; n = await conn.read(chunk)) {
          received.push(...chunk.subarray(0, n));
        }
      } catch (e) {
        error = e;
      }
      assert.equal(error, undefined, "the connection ends without a reset");
      const frames: number[][] = [];
      for (let at = 0; at < received.length;) {
        let length = 0;
        let shift = 0;
        let i = at + 1;
        for (;;) {
          const byte = received[i++]!;
          length += (byte & 0x7f) << shift;
          shift += 7;
          if ((byte & 0x80) === 0) break;
        }
        frames.push(received.slice(at, i + length));
        at = i + length;
      }
      assert.deepEqual(frames.map((f) => f[0]), [0x50, 0xe0], "PUBREC 1, then DISCONNECT");
      const disconnect = frames[1]!;
      assert.equal(disconnect[2], 0x93, "DISCONNECT 0x93 Receive Maximum exceeded");
    } finally {
      conn.close();
    }
  });
});

// ---- Rate limits on the monotonic clock (issue #15 item 13) ---------------------------------------------------

Deno.test("v5: stepping the wall clock back does not lock a client out of its message rate (0x96)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, messageRatePerClient: 1 }, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "steady" });
    await client.send(publishPacket(5, { topic: "r", qos: 1, id: 1 }));
    await client.expectPacket(4, "PUBACK 1");
    clock.advance(1000);
    clock.stepWallClock(-120_000);
    await client.send(publishPacket(5, { topic: "r", qos: 1, id: 2 }));
    await client.expectPacket(4, "PUBACK 2, not DISCONNECT 0x96");
    await client.disconnect();
  });
});
