/**
 * MQTT 3.1 (protocol level 3, `MQIsdp`) peculiarities over the wire. 3.1 clients set DUP when they re-send
 * PUBREL, SUBSCRIBE and UNSUBSCRIBE (fixed header flags 1010 instead of 0010); the broker accepts that from a
 * level 3 client only, as Mosquitto does, and stays strict for 3.1.1 [MQTT-3.6.1-1 (3.1.1)].
 */

import {
  hex,
  packet,
  publishPacket,
  pubrec,
  subscribe,
  u16,
  unsubscribePacket,
  v,
  VERSIONS,
  withBroker,
} from "./_wire.ts";

Deno.test("v3.1: a PUBREL re-sent with DUP set completes the QoS 2 exchange, exactly once", async () => {
  await withBroker({}, async ({ connect }) => {
    const sub = await connect({ version: 3, clientId: "sub31" });
    await subscribe(sub, 1, [["q2", 0]]);
    const pub = await connect({ version: 3, clientId: "pub31" });
    await pub.send(publishPacket(3, { topic: "q2", payload: "once", qos: 2, id: 9 }));
    await pub.expect(pubrec(3, 9), "PUBREC");
    // The first PUBREL was lost on the way: the 3.1 client re-sends it with DUP (0x6a).
    await pub.send(hex("6a 02 00 09"));
    await pub.expect(hex("70 02 00 09"), "PUBCOMP");
    await sub.expect(publishPacket(3, { topic: "q2", payload: "once" }), "the message");
    // Our PUBCOMP was lost too: the client re-sends PUBREL with DUP again and is answered, not closed.
    await pub.send(hex("6a 02 00 09"));
    await pub.expect(hex("70 02 00 09"), "PUBCOMP again");
    await pub.barrier();
    await sub.barrier("no second copy");
    await pub.disconnect();
    await sub.disconnect();
  });
});

Deno.test("v3.1: SUBSCRIBE and UNSUBSCRIBE re-sent with DUP set are answered", async () => {
  await withBroker({}, async ({ connect }) => {
    const client = await connect({ version: 3, clientId: "retry31" });
    await client.send(packet(0x8a, u16(3), hex("00 01 61"), 1)); // SUBSCRIBE with DUP, "a" at QoS 1
    await client.expect(hex("90 03 00 03 01"), "SUBACK");
    await client.send(packet(0xaa, u16(4), hex("00 01 61"))); // UNSUBSCRIBE with DUP, "a"
    await client.expect(hex("b0 02 00 04"), "UNSUBACK");
    await client.barrier();
    await client.disconnect();
  });
});

for (const version of VERSIONS) {
  const rule = version === 5 ? "MQTT-3.6.1-1 (5.0)" : "MQTT-3.6.1-1 (3.1.1)";
  Deno.test(`${v(version)}: a PUBREL with DUP set is malformed and closes the connection [${rule}]`, async () => {
    await withBroker({}, async ({ connect }) => {
      const pub = await connect({ version, clientId: "strict" });
      await pub.send(publishPacket(version, { topic: "q2", payload: "x", qos: 2, id: 9 }));
      await pub.expect(pubrec(version, 9, version === 5 ? 0x10 : 0), "PUBREC (v5: No matching subscribers)");
      await pub.send(hex("6a 02 00 09"));
      if (version === 5) await pub.expectDisconnect(0x81);
      else await pub.expectClosed();
    });
  });
}

Deno.test("v3.1.1: an UNSUBSCRIBE with DUP set closes the connection [MQTT-3.10.1-1 (3.1.1)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const client = await connect({ version: 4, clientId: "strict-unsub" });
    await client.send(unsubscribePacket(4, 4, ["a"]).with(0, 0xaa));
    await client.expectClosed();
  });
});
