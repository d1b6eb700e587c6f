/**
 * Malformed and forbidden input (5.0 sections 1.5, 2.1, 4.13 and each packet's rules): every case gets the spec's
 * answer — v5 DISCONNECT with its reason code then close, v3 close — and the broker goes on serving a client
 * that was connected before and one that connects after.
 */

import assert from "node:assert/strict";
import type { BrokerOptions } from "../../lib/broker/broker.ts";
import type { ProtocolVersion } from "../../lib/packet/packet_type.ts";
import {
  concat,
  connectPacket,
  hex,
  P,
  packet,
  publishPacket,
  str,
  subscribe,
  subscribePacket,
  u16,
  unsubscribePacket,
  utf8,
  v,
  VERSIONS,
  withBroker,
} from "./_wire.ts";

const MALFORMED = 0x81;
const PROTOCOL_ERROR = 0x82;

/**
 * The rule a case breaks: a conformance statement (`MQTT-x.y.z-n (version)`), or the section or broker option
 * that states it; one per version where 3.1.1 and 5.0 number it differently.
 */
type Rule = string | { readonly 4: string; readonly 5: string };

/** One bad packet sent after a successful CONNECT. */
interface AfterConnectCase {
  readonly name: string;
  readonly rule: Rule;
  /** The bytes to send for a version. */
  readonly bytes: (version: ProtocolVersion) => Uint8Array;
  /** The v5 DISCONNECT reason code (v3 is closed without a packet). */
  readonly reason: number;
  /** Only for these versions. @default both */
  readonly versions?: readonly (4 | 5)[];
  readonly options?: BrokerOptions;
}

const AFTER_CONNECT: readonly AfterConnectCase[] = [
  {
    name: "PUBLISH with QoS 3",
    rule: { 4: "MQTT-3.3.1-4 (3.1.1)", 5: "MQTT-3.3.1-4 (5.0)" },
    bytes: (ver) => withHeader(publishPacket(ver, { topic: "a", qos: 1, id: 1 }), 0x36),
    reason: MALFORMED,
  },
  {
    name: "PUBLISH QoS 0 with DUP set",
    rule: { 4: "MQTT-3.3.1-2 (3.1.1)", 5: "MQTT-3.3.1-2 (5.0)" },
    bytes: (ver) => withHeader(publishPacket(ver, { topic: "a" }), 0x38),
    reason: MALFORMED,
  },
  {
    name: "PUBLISH QoS 1 with packet id 0",
    rule: { 4: "MQTT-2.3.1-1 (3.1.1)", 5: "MQTT-2.2.1-3 (5.0)" },
    bytes: (ver) => publishPacket(ver, { topic: "a", qos: 1, id: 0 }),
    reason: MALFORMED,
  },
  {
    name: "PUBLISH to a topic with a wildcard",
    rule: { 4: "MQTT-3.3.2-2 (3.1.1)", 5: "MQTT-3.3.2-2 (5.0)" },
    bytes: (ver) => publishPacket(ver, { topic: "a/+", payload: "x" }),
    reason: 0x90,
  },
  {
    name: "PUBLISH with an empty topic and no Topic Alias",
    rule: { 4: "MQTT-4.7.3-1 (3.1.1)", 5: "5.0 section 3.3.2.1" },
    bytes: (ver) => publishPacket(ver, { topic: "", payload: "x" }),
    reason: PROTOCOL_ERROR,
  },
  {
    name: "PUBLISH topic with U+0000",
    rule: { 4: "MQTT-1.5.3-2 (3.1.1)", 5: "MQTT-1.5.4-2 (5.0)" },
    bytes: (ver) => publishPacket(ver, { topic: "a\u0000b" }),
    reason: MALFORMED,
  },
  {
    name: "PUBLISH topic with invalid UTF-8 (a lone surrogate)",
    rule: { 4: "MQTT-1.5.3-1 (3.1.1)", 5: "MQTT-1.5.4-1 (5.0)" },
    bytes: (ver) => packet(0x30, u16(3), [0xed, 0xa0, 0x80], ...(ver === 5 ? [0] : [])),
    reason: MALFORMED,
  },
  {
    name: "PUBLISH whose topic length runs past the packet",
    rule: { 4: "3.1.1 section 1.5.3", 5: "5.0 section 1.5.4" },
    bytes: () => packet(0x30, u16(50), utf8("abc")),
    reason: MALFORMED,
  },
  {
    name: "SUBSCRIBE with fixed header flags 0000",
    rule: { 4: "MQTT-3.8.1-1 (3.1.1)", 5: "MQTT-3.8.1-1 (5.0)" },
    bytes: (ver) => withHeader(subscribePacket(ver, 1, [["a", 0]]), 0x80),
    reason: MALFORMED,
  },
  {
    name: "SUBSCRIBE without any topic filter",
    rule: { 4: "MQTT-3.8.3-3 (3.1.1)", 5: "MQTT-3.8.3-2 (5.0)" },
    bytes: (ver) => packet(0x82, u16(1), ...(ver === 5 ? [0] : [])),
    reason: PROTOCOL_ERROR,
  },
  {
    name: "SUBSCRIBE with requested QoS 3",
    rule: { 4: "MQTT-3.8.3-4 (3.1.1)", 5: "5.0 section 3.8.3.1" },
    bytes: (ver) => subscribePacket(ver, 1, [["a", 3]]),
    reason: PROTOCOL_ERROR,
  },
  {
    name: "SUBSCRIBE with reserved option bits set",
    rule: { 4: "MQTT-3.8.3-4 (3.1.1)", 5: "MQTT-3.8.3-5 (5.0)" },
    bytes: (ver) => subscribePacket(ver, 1, [["a", 0xc0]]),
    reason: MALFORMED,
  },
  {
    name: "SUBSCRIBE with Retain Handling 3",
    rule: "5.0 section 3.8.3.1",
    bytes: (ver) => subscribePacket(ver, 1, [["a", 0x30]]),
    reason: PROTOCOL_ERROR,
    versions: [5],
  },
  {
    name: "SUBSCRIBE with packet id 0",
    rule: { 4: "MQTT-2.3.1-1 (3.1.1)", 5: "MQTT-2.2.1-3 (5.0)" },
    bytes: (ver) => subscribePacket(ver, 0, [["a", 0]]),
    reason: MALFORMED,
  },
  {
    name: "UNSUBSCRIBE without any topic filter",
    rule: { 4: "MQTT-3.10.3-2 (3.1.1)", 5: "MQTT-3.10.3-2 (5.0)" },
    bytes: (ver) => packet(0xa2, u16(1), ...(ver === 5 ? [0] : [])),
    reason: PROTOCOL_ERROR,
  },
  {
    name: "UNSUBSCRIBE with fixed header flags 0000",
    rule: { 4: "MQTT-3.10.1-1 (3.1.1)", 5: "MQTT-3.10.1-1 (5.0)" },
    bytes: (ver) => withHeader(unsubscribePacket(ver, 1, ["a"]), 0xa0),
    reason: MALFORMED,
  },
  {
    name: "PUBREL with fixed header flags 0000",
    rule: { 4: "MQTT-3.6.1-1 (3.1.1)", 5: "MQTT-3.6.1-1 (5.0)" },
    bytes: () => hex("60 02 00 01"),
    reason: MALFORMED,
  },
  {
    name: "PINGREQ with a body",
    rule: { 4: "3.1.1 section 3.12", 5: "5.0 section 3.12" },
    bytes: () => hex("c0 01 00"),
    reason: MALFORMED,
  },
  {
    name: "reserved packet type 0",
    rule: { 4: "3.1.1 section 2.2.1", 5: "5.0 section 2.1.2" },
    bytes: () => hex("00 00"),
    reason: MALFORMED,
  },
  {
    name: "AUTH (type 15) before MQTT 5",
    rule: "3.1.1 section 2.2.1",
    bytes: () => hex("f0 00"),
    reason: MALFORMED,
    versions: [4],
  },
  {
    name: "CONNACK sent by a client",
    rule: { 4: "3.1.1 section 3.2", 5: "5.0 section 3.2" },
    bytes: (ver) => ver === 5 ? hex("20 03 00 00 00") : hex("20 02 00 00"),
    reason: PROTOCOL_ERROR,
  },
  {
    name: "SUBACK sent by a client",
    rule: { 4: "3.1.1 section 3.9", 5: "5.0 section 3.9" },
    bytes: (ver) => packet(0x90, u16(1), ...(ver === 5 ? [0] : []), 0),
    reason: PROTOCOL_ERROR,
  },
  {
    name: "a Remaining Length of five bytes",
    rule: { 4: "3.1.1 section 2.2.3", 5: "5.0 section 1.5.5" },
    bytes: () => hex("30 ff ff ff ff 01"),
    reason: MALFORMED,
  },
  {
    name: "a packet over maxPacketSize",
    rule: { 4: "maxPacketSize", 5: "MQTT-3.2.2-15 (5.0)" },
    bytes: (ver) => publishPacket(ver, { topic: "big", payload: new Uint8Array(200) }),
    reason: 0x95,
    options: { maxPacketSize: 128 },
  },
  {
    name: "PUBLISH to a topic deeper than topicLimits.maxDepth",
    rule: "topicLimits",
    bytes: (ver) => publishPacket(ver, { topic: "a/b/c/d", payload: "x" }),
    reason: 0x90,
    options: { topicLimits: { maxLength: 100, maxDepth: 3 } },
  },
  {
    name: "PUBLISH above the maximum QoS",
    rule: { 4: "maxQoS", 5: "MQTT-3.2.2-11 (5.0)" },
    bytes: (ver) => publishPacket(ver, { topic: "a", qos: 2, id: 1 }),
    reason: 0x9b,
    options: { maxQoS: 1 },
  },
  {
    name: "retained PUBLISH when retain is not available",
    rule: { 4: "retainAvailable", 5: "MQTT-3.2.2-14 (5.0)" },
    bytes: (ver) => publishPacket(ver, { topic: "a", payload: "x", retain: true }),
    reason: 0x9a,
    options: { retainAvailable: false },
  },
  {
    name: "PUBLISH with Topic Alias 0",
    rule: "MQTT-3.3.2-8 (5.0)",
    bytes: () => publishPacket(5, { topic: "a", properties: [P.topicAlias(0)] }),
    reason: 0x94,
    versions: [5],
  },
  {
    name: "PUBLISH with a Topic Alias above the maximum",
    rule: "MQTT-3.3.2-9 (5.0)",
    bytes: () => publishPacket(5, { topic: "a", properties: [P.topicAlias(11)] }),
    reason: 0x94,
    versions: [5],
  },
  {
    name: "PUBLISH with an unknown Topic Alias and an empty topic",
    rule: "5.0 section 3.3.2.3.4",
    bytes: () => publishPacket(5, { topic: "", properties: [P.topicAlias(3)] }),
    reason: PROTOCOL_ERROR,
    versions: [5],
  },
  {
    name: "PUBLISH from a client with a Subscription Identifier",
    rule: "MQTT-3.3.4-6 (5.0)",
    bytes: () => publishPacket(5, { topic: "a", properties: [P.subscriptionId(1)] }),
    reason: PROTOCOL_ERROR,
    versions: [5],
  },
  {
    name: "PUBLISH with Message Expiry Interval twice",
    rule: "5.0 section 3.3.2.3",
    bytes: () => publishPacket(5, { topic: "a", properties: [P.messageExpiry(1), P.messageExpiry(2)] }),
    reason: PROTOCOL_ERROR,
    versions: [5],
  },
  {
    name: "PUBLISH with a property PUBLISH cannot carry (Session Expiry)",
    rule: "5.0 section 2.2.2.2",
    bytes: () => publishPacket(5, { topic: "a", properties: [P.sessionExpiry(1)] }),
    reason: MALFORMED,
    versions: [5],
  },
  {
    name: "QoS 0 PUBLISH whose payload is not UTF-8 as its Payload Format Indicator says",
    rule: "5.0 section 3.3.2.3.2",
    bytes: () =>
      publishPacket(5, { topic: "a", payload: Uint8Array.of(0xff), properties: [P.payloadFormat(1)] }),
    reason: 0x99,
    versions: [5],
  },
  {
    name: "DISCONNECT with a reason code DISCONNECT cannot carry",
    rule: "MQTT-3.14.2-1 (5.0)",
    bytes: () => hex("e0 01 05"),
    reason: PROTOCOL_ERROR,
    versions: [5],
  },
];

/** `[MQTT-x.y.z-n (version)]` for a numbered conformance statement, `(section x.y)` otherwise. */
function cite(rule: Rule, version: ProtocolVersion): string {
  const text = typeof rule === "string" ? rule : rule[version === 5 ? 5 : 4];
  return text.startsWith("MQTT-") ? `[${text}]` : `(${text})`;
}

/** Replaces a packet's first byte. */
function withHeader(bytes: Uint8Array, header: number): Uint8Array {
  const copy = bytes.slice();
  copy[0] = header;
  return copy;
}

for (const version of VERSIONS) {
  for (const c of AFTER_CONNECT) {
    if (c.versions !== undefined && !c.versions.includes(version)) continue;
    const answer = version === 5 ? `DISCONNECT 0x${c.reason.toString(16)}` : "close";
    Deno.test(`${v(version)}: ${c.name} → ${answer} ${cite(c.rule, version)}`, async () => {
      await withBroker(c.options ?? {}, async ({ connect }) => {
        const bystander = await connect({ version, clientId: "bystander" });
        await subscribe(bystander, 1, [["#", 0]]);
        const bad = await connect({ version, clientId: "bad", will: { topic: "will/bad", payload: "w" } });
        await bad.trySend(c.bytes(version));
        await bad.expectDisconnect(c.reason, answer);
        // The broker goes on: the bystander gets the bad client's will and can still talk.
        await bystander.expect(
          publishPacket(version, { topic: "will/bad", payload: "w" }),
          "will of the bad client",
        );
        await bystander.barrier("nothing of the bad packet was routed");
        const after = await connect({ version, clientId: "after" });
        await after.send(publishPacket(version, { topic: "ok", payload: "fine" }));
        await bystander.expect(publishPacket(version, { topic: "ok", payload: "fine" }));
        await after.disconnect();
        await bystander.disconnect();
      });
    });
  }
}

/** A bad CONNECT (or bytes instead of one): closed, at most a CONNACK refusal first. */
interface ConnectCase {
  readonly name: string;
  readonly rule: Rule;
  readonly version: ProtocolVersion;
  readonly bytes: Uint8Array;
}

/** A CONNECT with its connect flags byte replaced. */
function connectWithFlags(version: ProtocolVersion, flags: number): Uint8Array {
  const bytes = connectPacket({ version, clientId: "c" });
  const copy = bytes.slice();
  copy[version === 3 ? 11 : 9] = flags;
  return copy;
}

const BAD_CONNECTS: readonly ConnectCase[] = [
  ...VERSIONS.flatMap((version): ConnectCase[] => [
    {
      name: "reserved flag set",
      rule: { 4: "MQTT-3.1.2-3 (3.1.1)", 5: "MQTT-3.1.2-3 (5.0)" },
      version,
      bytes: connectWithFlags(version, 0x03),
    },
    {
      name: "Will QoS without the Will Flag",
      rule: { 4: "MQTT-3.1.2-13 (3.1.1)", 5: "MQTT-3.1.2-11 (5.0)" },
      version,
      bytes: connectWithFlags(version, 0x0a),
    },
    {
      name: "Will Retain without the Will Flag",
      rule: { 4: "MQTT-3.1.2-15 (3.1.1)", 5: "MQTT-3.1.2-13 (5.0)" },
      version,
      bytes: connectWithFlags(version, 0x22),
    },
    {
      name: "Will QoS 3",
      rule: { 4: "MQTT-3.1.2-14 (3.1.1)", 5: "MQTT-3.1.2-12 (5.0)" },
      version,
      bytes: connectPacket({ version, clientId: "c", will: { topic: "w", payload: "x", qos: 3 as 2 } }),
    },
    {
      name: "client id with invalid UTF-8",
      rule: { 4: "MQTT-1.5.3-1 (3.1.1)", 5: "MQTT-1.5.4-1 (5.0)" },
      version,
      bytes: packet(
        0x10,
        str("MQTT"),
        version,
        0x02,
        u16(0),
        ...(version === 5 ? [0] : []),
        u16(2),
        [0xc3, 0x28],
      ),
    },
    {
      name: "bytes after the payload",
      rule: { 4: "MQTT-3.1.4-1 (3.1.1)", 5: "MQTT-3.1.4-1 (5.0)" },
      version,
      bytes: (() => {
        const body = connectPacket({ version, clientId: "c" });
        return concat(body[0]!, body[1]! + 1, body.subarray(2), 0);
      })(),
    },
  ]),
  {
    name: "password without user name",
    rule: "MQTT-3.1.2-22 (3.1.1)",
    version: 4,
    bytes: connectPacket({ version: 4, clientId: "c", password: "pw" }),
  },
  {
    name: "Receive Maximum 0",
    rule: "5.0 section 3.1.2.11",
    version: 5,
    bytes: connectPacket({ version: 5, clientId: "c", properties: [P.receiveMaximum(0)] }),
  },
  {
    name: "Maximum Packet Size 0",
    rule: "5.0 section 3.1.2.11",
    version: 5,
    bytes: connectPacket({ version: 5, clientId: "c", properties: [P.maximumPacketSize(0)] }),
  },
  {
    name: "Session Expiry Interval twice",
    rule: "5.0 section 3.1.2.11",
    version: 5,
    bytes: connectPacket({ version: 5, clientId: "c", properties: [P.sessionExpiry(1), P.sessionExpiry(2)] }),
  },
];

/** The CONNECT is checked against section 3.1 (3.1.1 and 5.0) and the connection closed if it does not conform. */
const CONNECT_VALIDATED: Rule = { 4: "MQTT-3.1.4-1 (3.1.1)", 5: "MQTT-3.1.4-1 (5.0)" };

for (const c of BAD_CONNECTS) {
  Deno.test(`${v(c.version)}: CONNECT with ${c.name} is closed ${cite(CONNECT_VALIDATED, c.version)} ${cite(c.rule, c.version)}`, async () => {
    await withBroker({}, async ({ open, connect, broker }) => {
      const client = await open(c.version);
      await client.trySend(c.bytes);
      const frame = await client.nextOrEnd();
      if (frame !== undefined) {
        // v5 may send a CONNACK with a reason of 0x80 or more first [MQTT-3.1.4-1 (5.0)]; v3 has no code for this.
        assert.equal(c.version, 5, `v3 gets no CONNACK for a malformed CONNECT, got ${frame}`);
        assert.equal(frame[0], 0x20, "a CONNACK");
        assert.ok(frame[3]! >= 0x80, "a failure reason code");
      }
      await client.expectClosed();
      assert.equal(broker.sessionCount, 0);
      const next = await connect({ version: c.version, clientId: "next" });
      await next.barrier();
      await next.disconnect();
    });
  });
}

Deno.test("v5: a password without a user name is allowed in MQTT 5 (5.0 section 3.1.2.9)", async () => {
  await withBroker({}, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "pw", password: "secret" });
    await client.disconnect();
  });
});

Deno.test("v5: a QoS 1 PUBLISH with a bad UTF-8 payload gets PUBACK 0x99, not a disconnect", async () => {
  await withBroker({}, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "pfi" });
    await client.send(
      publishPacket(5, {
        topic: "a",
        payload: Uint8Array.of(0xff),
        qos: 1,
        id: 4,
        properties: [P.payloadFormat(1)],
      }),
    );
    const ack = await client.expectPacket(4, "PUBACK Payload format invalid");
    assert.equal(ack.packetId, 4);
    assert.equal(ack.reasonCode, 0x99);
    await client.barrier();
    await client.disconnect();
  });
});

Deno.test("garbage bytes instead of CONNECT close the socket; the broker survives 50 of them", async () => {
  await withBroker({}, async ({ open, connect }) => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 50; i++) {
      const client = await open(4, "memory");
      const junk = Uint8Array.from(
        { length: 1 + Math.floor(random() * 64) },
        () => Math.floor(random() * 256),
      );
      junk[0] = 0x10 | (junk[0]! & 0x0f); // start like a CONNECT so the decoder is exercised
      await client.trySend(junk);
      await client.close();
    }
    const next = await connect({ version: 5, clientId: "survivor" });
    await next.barrier();
    await next.disconnect();
  });
});

Deno.test("v5: with Request Problem Information 0, an error PUBACK has no Reason String [MQTT-3.1.2-29 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const client = await connect({
      version: 5,
      clientId: "quiet",
      properties: [P.requestProblemInformation(0)],
    });
    await client.send(
      publishPacket(5, {
        topic: "a",
        payload: Uint8Array.of(0xff),
        qos: 1,
        id: 4,
        properties: [P.payloadFormat(1)],
      }),
    );
    await client.expect(hex("40 03 00 04 99"), "PUBACK 0x99 without properties");
    await client.disconnect();
  });
});

Deno.test("v5: more unacknowledged QoS 1 PUBLISH than Receive Maximum is not possible once acked in time", async () => {
  await withBroker({ receiveMaximum: 1 }, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "steady" });
    for (let id = 1; id <= 5; id++) {
      await client.send(publishPacket(5, { topic: "s", qos: 1, id }));
      const ack = await client.expectPacket(4);
      assert.equal(ack.packetId, id);
    }
    await client.disconnect();
  });
});

Deno.test("v5: an error DISCONNECT fits the client's Maximum Packet Size: the Reason String is left out [MQTT-3.1.2-24 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "tiny", properties: [P.maximumPacketSize(16)] });
    await client.send(connectPacket({ version: 5, clientId: "tiny" })); // a second CONNECT
    await client.expect(hex("e0 01 82"), "DISCONNECT 0x82 without a Reason String");
    await client.expectClosed();
  });
});

Deno.test("v5: an error PUBACK fits the client's Maximum Packet Size: the Reason String is left out [MQTT-3.1.2-25 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "tiny", properties: [P.maximumPacketSize(16)] });
    await client.send(
      publishPacket(5, {
        topic: "a",
        payload: Uint8Array.of(0xff),
        qos: 1,
        id: 4,
        properties: [P.payloadFormat(1)],
      }),
    );
    await client.expect(hex("40 03 00 04 99"), "PUBACK 0x99 without a Reason String");
    await client.disconnect();
  });
});
