/**
 * The codec cases, each declared once: a packet, the versions it is valid in, and its bytes annotated
 * field by field. `codec_test.ts` expands every case into decode, encode and round-trip tests; the framer
 * and fuzz tests reuse the bytes. Strings and binary fields go through {@linkcode str} and {@linkcode bin},
 * which build the 2-byte length prefix with TextEncoder, independently of the codec under test.
 *
 * @module
 */

import type { Packet } from "../../lib/packet/packet.ts";
import type { ProtocolVersion } from "../../lib/packet/packet_type.ts";

/** One declared case. */
export interface CodecCase {
  /** What the case shows, e.g. "PUBLISH QoS 1 with every PUBLISH property". */
  readonly name: string;
  /** The protocol versions in which `packet` has exactly the wire form `bytes`. */
  readonly versions: readonly ProtocolVersion[];
  readonly packet: Packet;
  /** The wire form, fixed header included. */
  readonly bytes: readonly number[];
  /**
   * Set when `bytes` is a longer form the spec also allows (e.g. a v5 PUBACK that spells out reason code 0
   * and an empty property block): the shorter form the encoder writes. Such a case is decoded from `bytes`
   * and encoded to `canonical`.
   */
  readonly canonical?: readonly number[];
}

const encoder = new TextEncoder();

/** A UTF-8 Encoded String: 2-byte big-endian length, then the UTF-8 bytes. */
export function str(text: string): number[] {
  const bytes = encoder.encode(text);
  return [bytes.length >> 8, bytes.length & 0xff, ...bytes];
}

/** Binary Data: 2-byte big-endian length, then the bytes. */
export function bin(...bytes: number[]): number[] {
  return [bytes.length >> 8, bytes.length & 0xff, ...bytes];
}

/** The UTF-8 bytes of `text` as a Uint8Array (payloads and binary properties in packet objects). */
export function text(value: string): Uint8Array {
  return encoder.encode(value);
}

/** "v3.1", "v3.1.1" or "v5", for test names. */
export function versionLabel(version: ProtocolVersion): string {
  return version === 3 ? "v3.1" : version === 4 ? "v3.1.1" : "v5";
}

/** 0, 1, ..., n - 1 as bytes (mod 256). */
export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i & 0xff);
}

const ALL: readonly ProtocolVersion[] = [3, 4, 5];
const V3: readonly ProtocolVersion[] = [3, 4];
const V5: readonly ProtocolVersion[] = [5];

/** Every declared case. Kept out of `deno fmt`, which would put each byte on its own line. */
// deno-fmt-ignore
export const CASES: readonly CodecCase[] = [
  // ---------------------------------------------------------------- CONNECT
  {
    name: "CONNECT 3.1.1 minimal: empty client id, clean session",
    versions: [4],
    packet: { type: 1, protocolVersion: 4, clientId: "", cleanStart: true, keepAlive: 0 },
    bytes: [
      0x10, 12, // header, remaining length
      ...str("MQTT"), // protocol name
      4, // protocol level
      0x02, // connect flags: clean session
      0, 0, // keep alive
      ...str(""), // client id
    ],
  },
  {
    name: "CONNECT 3.1 (MQIsdp) with user name and password",
    versions: [3],
    packet: {
      type: 1,
      protocolVersion: 3,
      clientId: "test",
      cleanStart: true,
      keepAlive: 30,
      username: "user",
      password: text("pass"),
    },
    bytes: [
      0x10, 30, // header, remaining length
      ...str("MQIsdp"), // protocol name
      3, // protocol level
      0xc2, // connect flags: user name, password, clean session
      0, 30, // keep alive
      ...str("test"), // client id
      ...str("user"), // user name
      ...bin(0x70, 0x61, 0x73, 0x73), // password
    ],
  },
  {
    name: "CONNECT 3.1.1 with a retained QoS 1 will and a user name",
    versions: [4],
    packet: {
      type: 1,
      protocolVersion: 4,
      clientId: "c1",
      cleanStart: false,
      keepAlive: 60,
      username: "u",
      will: { topic: "w/t", payload: text("bye"), qos: 1, retain: true },
    },
    bytes: [
      0x10, 27, // header, remaining length
      ...str("MQTT"), // protocol name
      4, // protocol level
      0xac, // connect flags: user name, will retain, will QoS 1, will flag
      0, 60, // keep alive
      ...str("c1"), // client id
      ...str("w/t"), // will topic
      ...bin(0x62, 0x79, 0x65), // will payload
      ...str("u"), // user name
    ],
  },
  {
    name: "CONNECT 5.0 with every CONNECT property and a will with every will property",
    versions: V5,
    packet: {
      type: 1,
      protocolVersion: 5,
      clientId: "client-5",
      cleanStart: true,
      keepAlive: 30,
      username: "alice",
      password: text("s3"),
      properties: {
        sessionExpiryInterval: 3600,
        authenticationMethod: "SCRAM",
        authenticationData: Uint8Array.of(1, 2, 3),
        requestProblemInformation: 0,
        requestResponseInformation: 1,
        receiveMaximum: 20,
        topicAliasMaximum: 10,
        userProperties: [["region", "eu"], ["region", "us"]],
        maximumPacketSize: 1_048_576,
      },
      will: {
        topic: "will/topic",
        payload: text("gone"),
        qos: 2,
        retain: false,
        properties: {
          payloadFormatIndicator: 1,
          messageExpiryInterval: 120,
          contentType: "text/plain",
          responseTopic: "r/t",
          correlationData: Uint8Array.of(0xca, 0xfe),
          willDelayInterval: 30,
          userProperties: [["k", "v"]],
        },
      },
    },
    bytes: [
      0x10, 0x9a, 0x01, // header, remaining length 154 in two bytes
      ...str("MQTT"), // protocol name
      5, // protocol level
      0xd6, // connect flags: user name, password, will QoS 2, will flag, clean start
      0, 30, // keep alive
      60, // property length
      0x11, 0, 0, 0x0e, 0x10, // session expiry interval 3600
      0x15, ...str("SCRAM"), // authentication method
      0x16, ...bin(1, 2, 3), // authentication data
      0x17, 0, // request problem information
      0x19, 1, // request response information
      0x21, 0, 20, // receive maximum
      0x22, 0, 10, // topic alias maximum
      0x26, ...str("region"), ...str("eu"), // user property
      0x26, ...str("region"), ...str("us"), // user property, same name, order kept
      0x27, 0, 0x10, 0, 0, // maximum packet size 1 MiB
      ...str("client-5"), // client id
      43, // will property length
      0x01, 1, // payload format indicator
      0x02, 0, 0, 0, 120, // message expiry interval
      0x03, ...str("text/plain"), // content type
      0x08, ...str("r/t"), // response topic
      0x09, ...bin(0xca, 0xfe), // correlation data
      0x18, 0, 0, 0, 30, // will delay interval
      0x26, ...str("k"), ...str("v"), // user property
      ...str("will/topic"), // will topic
      ...bin(0x67, 0x6f, 0x6e, 0x65), // will payload
      ...str("alice"), // user name
      ...bin(0x73, 0x33), // password
    ],
  },
  {
    name: "CONNECT 5.0 with a password and no user name (allowed from 5.0)",
    versions: V5,
    packet: {
      type: 1,
      protocolVersion: 5,
      clientId: "p",
      cleanStart: true,
      keepAlive: 10,
      password: Uint8Array.of(1),
    },
    bytes: [
      0x10, 17, // header, remaining length
      ...str("MQTT"), // protocol name
      5, // protocol level
      0x42, // connect flags: password, clean start
      0, 10, // keep alive
      0, // property length
      ...str("p"), // client id
      ...bin(1), // password
    ],
  },
  {
    name: "CONNECT 5.0 with a will without properties",
    versions: V5,
    packet: {
      type: 1,
      protocolVersion: 5,
      clientId: "w",
      cleanStart: false,
      keepAlive: 0,
      will: { topic: "t", payload: new Uint8Array(0), qos: 0, retain: false },
    },
    bytes: [
      0x10, 20, // header, remaining length
      ...str("MQTT"), // protocol name
      5, // protocol level
      0x04, // connect flags: will flag
      0, 0, // keep alive
      0, // property length
      ...str("w"), // client id
      0, // will property length
      ...str("t"), // will topic
      ...bin(), // will payload, empty
    ],
  },

  // ---------------------------------------------------------------- CONNACK
  {
    name: "CONNACK accepted with session present",
    versions: V3,
    packet: { type: 2, sessionPresent: true, reasonCode: 0 },
    bytes: [
      0x20, 2, // header, remaining length
      0x01, // acknowledge flags: session present
      0x00, // return code: accepted
    ],
  },
  {
    name: "CONNACK refused: not authorized",
    versions: V3,
    packet: { type: 2, sessionPresent: false, reasonCode: 5 },
    bytes: [
      0x20, 2, // header, remaining length
      0x00, // acknowledge flags
      0x05, // return code: not authorized
    ],
  },
  {
    name: "CONNACK 5.0 success without properties",
    versions: V5,
    packet: { type: 2, sessionPresent: false, reasonCode: 0 },
    bytes: [
      0x20, 3, // header, remaining length
      0x00, // acknowledge flags
      0x00, // reason code: success
      0, // property length
    ],
  },
  {
    name: "CONNACK 5.0 refused with a reason string",
    versions: V5,
    packet: { type: 2, sessionPresent: false, reasonCode: 0x87, properties: { reasonString: "no" } },
    bytes: [
      0x20, 8, // header, remaining length
      0x00, // acknowledge flags
      0x87, // reason code: not authorized
      5, // property length
      0x1f, ...str("no"), // reason string
    ],
  },
  {
    name: "CONNACK 5.0 with every CONNACK property",
    versions: V5,
    packet: {
      type: 2,
      sessionPresent: true,
      reasonCode: 0,
      properties: {
        sessionExpiryInterval: 7200,
        assignedClientIdentifier: "auto-1",
        serverKeepAlive: 45,
        authenticationMethod: "SCRAM",
        authenticationData: Uint8Array.of(4, 5),
        responseInformation: "resp/",
        serverReference: "other:1883",
        reasonString: "ok",
        receiveMaximum: 100,
        topicAliasMaximum: 16,
        maximumQoS: 1,
        retainAvailable: 0,
        userProperties: [["a", "1"]],
        maximumPacketSize: 65_536,
        wildcardSubscriptionAvailable: 1,
        subscriptionIdentifiersAvailable: 0,
        sharedSubscriptionAvailable: 1,
      },
    },
    bytes: [
      0x20, 87, // header, remaining length
      0x01, // acknowledge flags: session present
      0x00, // reason code: success
      84, // property length
      0x11, 0, 0, 0x1c, 0x20, // session expiry interval 7200
      0x12, ...str("auto-1"), // assigned client identifier
      0x13, 0, 45, // server keep alive
      0x15, ...str("SCRAM"), // authentication method
      0x16, ...bin(4, 5), // authentication data
      0x1a, ...str("resp/"), // response information
      0x1c, ...str("other:1883"), // server reference
      0x1f, ...str("ok"), // reason string
      0x21, 0, 100, // receive maximum
      0x22, 0, 16, // topic alias maximum
      0x24, 1, // maximum QoS
      0x25, 0, // retain available
      0x26, ...str("a"), ...str("1"), // user property
      0x27, 0, 1, 0, 0, // maximum packet size 65536
      0x28, 1, // wildcard subscription available
      0x29, 0, // subscription identifiers available
      0x2a, 1, // shared subscription available
    ],
  },

  // ---------------------------------------------------------------- PUBLISH
  {
    name: "PUBLISH QoS 0",
    versions: V3,
    packet: { type: 3, topic: "a/b", payload: text("hi"), qos: 0, retain: false, dup: false },
    bytes: [
      0x30, 7, // header: PUBLISH QoS 0, remaining length
      ...str("a/b"), // topic name
      0x68, 0x69, // payload
    ],
  },
  {
    name: "PUBLISH 5.0 QoS 0 without properties",
    versions: V5,
    packet: { type: 3, topic: "a/b", payload: text("hi"), qos: 0, retain: false, dup: false },
    bytes: [
      0x30, 8, // header: PUBLISH QoS 0, remaining length
      ...str("a/b"), // topic name
      0, // property length
      0x68, 0x69, // payload
    ],
  },
  {
    name: "PUBLISH QoS 1 retained",
    versions: V3,
    packet: { type: 3, topic: "a/b", payload: text("x"), qos: 1, retain: true, dup: false, packetId: 10 },
    bytes: [
      0x33, 8, // header: PUBLISH QoS 1 RETAIN, remaining length
      ...str("a/b"), // topic name
      0, 10, // packet identifier
      0x78, // payload
    ],
  },
  {
    name: "PUBLISH QoS 2 duplicate with packet identifier 65535 and an empty payload",
    versions: V3,
    packet: {
      type: 3, topic: "t", payload: new Uint8Array(0), qos: 2, retain: false, dup: true, packetId: 65535,
    },
    bytes: [
      0x3c, 5, // header: PUBLISH DUP QoS 2, remaining length
      ...str("t"), // topic name
      0xff, 0xff, // packet identifier
    ],
  },
  {
    name: "PUBLISH with a multi-byte UTF-8 topic",
    versions: V3,
    packet: { type: 3, topic: "é/✓/😀", payload: new Uint8Array(0), qos: 0, retain: false, dup: false },
    bytes: [
      0x30, 13, // header, remaining length
      0, 11, 0xc3, 0xa9, 0x2f, 0xe2, 0x9c, 0x93, 0x2f, 0xf0, 0x9f, 0x98, 0x80, // topic name "é/✓/😀"
    ],
  },
  {
    name: "PUBLISH keeps a leading BOM in the topic [MQTT-1.5.4-3 (5.0)]",
    versions: V3,
    packet: { type: 3, topic: "\ufeffbom", payload: new Uint8Array(0), qos: 0, retain: false, dup: false },
    bytes: [
      0x30, 8, // header, remaining length
      0, 6, 0xef, 0xbb, 0xbf, 0x62, 0x6f, 0x6d, // topic name: U+FEFF "bom"
    ],
  },
  {
    name: "PUBLISH with a 200-byte payload (two-byte Remaining Length)",
    versions: V3,
    packet: {
      type: 3, topic: "big", payload: Uint8Array.from(range(200)), qos: 0, retain: false, dup: false,
    },
    bytes: [
      0x30, 0xcd, 0x01, // header, remaining length 205
      ...str("big"), // topic name
      ...range(200), // payload
    ],
  },
  {
    name: "PUBLISH 5.0 QoS 1 with every PUBLISH property, two subscription identifiers, user properties",
    versions: V5,
    packet: {
      type: 3,
      topic: "t/1",
      payload: text("{}"),
      qos: 1,
      retain: false,
      dup: false,
      packetId: 1,
      properties: {
        payloadFormatIndicator: 1,
        messageExpiryInterval: 60,
        contentType: "application/json",
        responseTopic: "reply/here",
        correlationData: Uint8Array.of(1, 2, 3, 4),
        subscriptionIdentifiers: [1, 268_435_455],
        topicAlias: 5,
        userProperties: [["b", "1"], ["a", "2"], ["b", "3"]],
      },
    },
    bytes: [
      0x32, 87, // header: PUBLISH QoS 1, remaining length
      ...str("t/1"), // topic name
      0, 1, // packet identifier
      77, // property length
      0x01, 1, // payload format indicator: UTF-8
      0x02, 0, 0, 0, 60, // message expiry interval
      0x03, ...str("application/json"), // content type
      0x08, ...str("reply/here"), // response topic
      0x09, ...bin(1, 2, 3, 4), // correlation data
      0x0b, 1, // subscription identifier 1
      0x0b, 0xff, 0xff, 0xff, 0x7f, // subscription identifier 268435455
      0x23, 0, 5, // topic alias
      0x26, ...str("b"), ...str("1"), // user property b=1
      0x26, ...str("a"), ...str("2"), // user property a=2
      0x26, ...str("b"), ...str("3"), // user property b=3: order and repeats kept [MQTT-3.3.2-18 (5.0)]
      0x7b, 0x7d, // payload
    ],
  },
  {
    name: "PUBLISH 5.0 with an empty topic and a Topic Alias",
    versions: V5,
    packet: {
      type: 3,
      topic: "",
      payload: text("z"),
      qos: 0,
      retain: false,
      dup: false,
      properties: { topicAlias: 7 },
    },
    bytes: [
      0x30, 7, // header, remaining length
      ...str(""), // topic name, empty
      3, // property length
      0x23, 0, 7, // topic alias
      0x7a, // payload
    ],
  },
  {
    name: "PUBLISH 5.0 with subscription identifiers of 1, 2 and 3 bytes",
    versions: V5,
    packet: {
      type: 3,
      topic: "s",
      payload: new Uint8Array(0),
      qos: 0,
      retain: false,
      dup: false,
      properties: { subscriptionIdentifiers: [3, 200, 16_384] },
    },
    bytes: [
      0x30, 13, // header, remaining length
      ...str("s"), // topic name
      9, // property length
      0x0b, 3, // subscription identifier 3
      0x0b, 0xc8, 0x01, // subscription identifier 200
      0x0b, 0x80, 0x80, 0x01, // subscription identifier 16384
    ],
  },

  // ---------------------------------------------------------------- PUBACK, PUBREC, PUBREL, PUBCOMP
  {
    name: "PUBACK",
    versions: ALL,
    packet: { type: 4, packetId: 1, reasonCode: 0 },
    bytes: [0x40, 2, 0, 1], // header, remaining length, packet identifier
  },
  {
    name: "PUBREC",
    versions: ALL,
    packet: { type: 5, packetId: 2, reasonCode: 0 },
    bytes: [0x50, 2, 0, 2], // header, remaining length, packet identifier
  },
  {
    name: "PUBREL",
    versions: ALL,
    packet: { type: 6, packetId: 3, reasonCode: 0 },
    bytes: [0x62, 2, 0, 3], // header (flags 0010), remaining length, packet identifier
  },
  {
    name: "PUBREL 3.1 re-sent with DUP set",
    versions: [3],
    packet: { type: 6, packetId: 3, reasonCode: 0 },
    bytes: [0x6a, 2, 0, 3], // header (flags 1010: DUP, QoS 1), remaining length, packet identifier
    canonical: [0x62, 2, 0, 3],
  },
  {
    name: "PUBCOMP",
    versions: ALL,
    packet: { type: 7, packetId: 0x1234, reasonCode: 0 },
    bytes: [0x70, 2, 0x12, 0x34], // header, remaining length, packet identifier
  },
  {
    name: "PUBACK 5.0 with remaining length 3: reason code, no property length",
    versions: V5,
    packet: { type: 4, packetId: 2, reasonCode: 0x10 },
    bytes: [
      0x40, 3, // header, remaining length
      0, 2, // packet identifier
      0x10, // reason code: no matching subscribers
    ],
  },
  {
    name: "PUBREC 5.0 with remaining length 3",
    versions: V5,
    packet: { type: 5, packetId: 3, reasonCode: 0x80 },
    bytes: [0x50, 3, 0, 3, 0x80], // header, remaining length, packet identifier, reason code
  },
  {
    name: "PUBREL 5.0 with remaining length 3",
    versions: V5,
    packet: { type: 6, packetId: 4, reasonCode: 0x92 },
    bytes: [0x62, 3, 0, 4, 0x92], // header, remaining length, packet identifier, packet identifier not found
  },
  {
    name: "PUBCOMP 5.0 with remaining length 3",
    versions: V5,
    packet: { type: 7, packetId: 5, reasonCode: 0x92 },
    bytes: [0x70, 3, 0, 5, 0x92], // header, remaining length, packet identifier, packet identifier not found
  },
  {
    name: "PUBACK 5.0 with success and an empty property block (encoded in the 2-byte form)",
    versions: V5,
    packet: { type: 4, packetId: 5, reasonCode: 0 },
    bytes: [
      0x40, 4, // header, remaining length
      0, 5, // packet identifier
      0x00, // reason code: success
      0, // property length
    ],
    canonical: [0x40, 2, 0, 5],
  },
  {
    name: "PUBREC 5.0 with a reason code and an empty property block (encoded in the 3-byte form)",
    versions: V5,
    packet: { type: 5, packetId: 6, reasonCode: 0x97 },
    bytes: [
      0x50, 4, // header, remaining length
      0, 6, // packet identifier
      0x97, // reason code: quota exceeded
      0, // property length
    ],
    canonical: [0x50, 3, 0, 6, 0x97],
  },
  {
    name: "PUBACK 5.0 with a reason string and a user property",
    versions: V5,
    packet: {
      type: 4,
      packetId: 7,
      reasonCode: 0x99,
      properties: { reasonString: "why", userProperties: [["k", "v"]] },
    },
    bytes: [
      0x40, 17, // header, remaining length
      0, 7, // packet identifier
      0x99, // reason code: payload format invalid
      13, // property length
      0x1f, ...str("why"), // reason string
      0x26, ...str("k"), ...str("v"), // user property
    ],
  },
  {
    name: "PUBREC 5.0 with a reason string and a user property",
    versions: V5,
    packet: {
      type: 5,
      packetId: 8,
      reasonCode: 0x97,
      properties: { reasonString: "why", userProperties: [["k", "v"]] },
    },
    bytes: [
      0x50, 17, // header, remaining length
      0, 8, // packet identifier
      0x97, // reason code: quota exceeded
      13, // property length
      0x1f, ...str("why"), // reason string
      0x26, ...str("k"), ...str("v"), // user property
    ],
  },
  {
    name: "PUBREL 5.0 with a reason string and a user property",
    versions: V5,
    packet: {
      type: 6,
      packetId: 9,
      reasonCode: 0x92,
      properties: { reasonString: "why", userProperties: [["k", "v"]] },
    },
    bytes: [
      0x62, 17, // header, remaining length
      0, 9, // packet identifier
      0x92, // reason code: packet identifier not found
      13, // property length
      0x1f, ...str("why"), // reason string
      0x26, ...str("k"), ...str("v"), // user property
    ],
  },
  {
    name: "PUBCOMP 5.0 with success, a reason string and a user property",
    versions: V5,
    packet: {
      type: 7,
      packetId: 10,
      reasonCode: 0,
      properties: { reasonString: "why", userProperties: [["k", "v"]] },
    },
    bytes: [
      0x70, 17, // header, remaining length
      0, 10, // packet identifier
      0x00, // reason code: success, written because properties follow
      13, // property length
      0x1f, ...str("why"), // reason string
      0x26, ...str("k"), ...str("v"), // user property
    ],
  },

  // ---------------------------------------------------------------- SUBSCRIBE, SUBACK
  {
    name: "SUBSCRIBE 3.1 re-sent with DUP set",
    versions: [3],
    packet: {
      type: 8,
      packetId: 2,
      subscriptions: [{ filter: "a", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
    },
    bytes: [
      0x8a, 6, // header (flags 1010: DUP, QoS 1), remaining length
      0, 2, // packet identifier
      ...str("a"), 0x01, // filter, requested QoS 1
    ],
    canonical: [0x82, 6, 0, 2, ...str("a"), 0x01],
  },
  {
    name: "SUBSCRIBE with two filters",
    versions: V3,
    packet: {
      type: 8,
      packetId: 1,
      subscriptions: [
        { filter: "a/+", qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        { filter: "b/#", qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    },
    bytes: [
      0x82, 14, // header (flags 0010), remaining length
      0, 1, // packet identifier
      ...str("a/+"), 0x00, // filter, requested QoS 0
      ...str("b/#"), 0x02, // filter, requested QoS 2
    ],
  },
  {
    name: "SUBSCRIBE 5.0 with subscription options, a subscription identifier and a user property",
    versions: V5,
    packet: {
      type: 8,
      packetId: 2,
      subscriptions: [
        { filter: "x/y", qos: 1, noLocal: true, retainAsPublished: true, retainHandling: 2 },
        { filter: "$share/g/z", qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 1 },
      ],
      properties: { subscriptionIdentifiers: [42], userProperties: [["k", "v"]] },
    },
    bytes: [
      0x82, 31, // header, remaining length
      0, 2, // packet identifier
      9, // property length
      0x0b, 42, // subscription identifier
      0x26, ...str("k"), ...str("v"), // user property
      ...str("x/y"), 0x2d, // filter; options: retain handling 2, retain as published, no local, QoS 1
      ...str("$share/g/z"), 0x10, // filter; options: retain handling 1, QoS 0
    ],
  },
  {
    name: "SUBACK with every 3.1.1 return code",
    versions: V3,
    packet: { type: 9, packetId: 1, reasonCodes: [0, 1, 2, 0x80] },
    bytes: [
      0x90, 6, // header, remaining length
      0, 1, // packet identifier
      0x00, 0x01, 0x02, 0x80, // granted QoS 0, 1, 2, failure
    ],
  },
  {
    name: "SUBACK 5.0 with every SUBACK reason code, a reason string and a user property",
    versions: V5,
    packet: {
      type: 9,
      packetId: 3,
      reasonCodes: [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2],
      properties: { reasonString: "r", userProperties: [["k", "v"]] },
    },
    bytes: [
      0x90, 26, // header, remaining length
      0, 3, // packet identifier
      11, // property length
      0x1f, ...str("r"), // reason string
      0x26, ...str("k"), ...str("v"), // user property
      0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2, // reason codes
    ],
  },

  // ---------------------------------------------------------------- UNSUBSCRIBE, UNSUBACK
  {
    name: "UNSUBSCRIBE 3.1 re-sent with DUP set",
    versions: [3],
    packet: { type: 10, packetId: 4, filters: ["a"] },
    bytes: [
      0xaa, 5, // header (flags 1010: DUP, QoS 1), remaining length
      0, 4, // packet identifier
      ...str("a"), // filter
    ],
    canonical: [0xa2, 5, 0, 4, ...str("a")],
  },
  {
    name: "UNSUBSCRIBE with two filters",
    versions: V3,
    packet: { type: 10, packetId: 4, filters: ["a/+", "b"] },
    bytes: [
      0xa2, 10, // header (flags 0010), remaining length
      0, 4, // packet identifier
      ...str("a/+"), // filter
      ...str("b"), // filter
    ],
  },
  {
    name: "UNSUBSCRIBE 5.0 with a user property",
    versions: V5,
    packet: { type: 10, packetId: 5, filters: ["a/+"], properties: { userProperties: [["k", "v"]] } },
    bytes: [
      0xa2, 15, // header, remaining length
      0, 5, // packet identifier
      7, // property length
      0x26, ...str("k"), ...str("v"), // user property
      ...str("a/+"), // filter
    ],
  },
  {
    name: "UNSUBACK (no payload before 5.0)",
    versions: V3,
    packet: { type: 11, packetId: 6, reasonCodes: [] },
    bytes: [0xb0, 2, 0, 6], // header, remaining length, packet identifier
  },
  {
    name: "UNSUBACK 5.0 with every UNSUBACK reason code, a reason string and a user property",
    versions: V5,
    packet: {
      type: 11,
      packetId: 7,
      reasonCodes: [0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91],
      properties: { reasonString: "r", userProperties: [["k", "v"]] },
    },
    bytes: [
      0xb0, 21, // header, remaining length
      0, 7, // packet identifier
      11, // property length
      0x1f, ...str("r"), // reason string
      0x26, ...str("k"), ...str("v"), // user property
      0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91, // reason codes
    ],
  },

  // ---------------------------------------------------------------- PINGREQ, PINGRESP
  { name: "PINGREQ", versions: ALL, packet: { type: 12 }, bytes: [0xc0, 0] },
  { name: "PINGRESP", versions: ALL, packet: { type: 13 }, bytes: [0xd0, 0] },

  // ---------------------------------------------------------------- DISCONNECT
  {
    name: "DISCONNECT (5.0: remaining length 0 means normal disconnection)",
    versions: ALL,
    packet: { type: 14, reasonCode: 0 },
    bytes: [0xe0, 0],
  },
  {
    name: "DISCONNECT 5.0 with remaining length 1: reason code only",
    versions: V5,
    packet: { type: 14, reasonCode: 0x04 },
    bytes: [0xe0, 1, 0x04], // header, remaining length, disconnect with will message
  },
  {
    name: "DISCONNECT 5.0 with success and an empty property block (encoded in the 0-byte form)",
    versions: V5,
    packet: { type: 14, reasonCode: 0 },
    bytes: [0xe0, 2, 0x00, 0], // header, remaining length, reason code, property length
    canonical: [0xe0, 0],
  },
  {
    name: "DISCONNECT 5.0 with every DISCONNECT property",
    versions: V5,
    packet: {
      type: 14,
      reasonCode: 0x9c,
      properties: {
        sessionExpiryInterval: 0,
        serverReference: "b:1883",
        reasonString: "move",
        userProperties: [["k", "v"]],
      },
    },
    bytes: [
      0xe0, 30, // header, remaining length
      0x9c, // reason code: use another server
      28, // property length
      0x11, 0, 0, 0, 0, // session expiry interval
      0x1c, ...str("b:1883"), // server reference
      0x1f, ...str("move"), // reason string
      0x26, ...str("k"), ...str("v"), // user property
    ],
  },

  // ---------------------------------------------------------------- AUTH
  {
    name: "AUTH 5.0 with remaining length 0 means success",
    versions: V5,
    packet: { type: 15, reasonCode: 0 },
    bytes: [0xf0, 0],
  },
  {
    name: "AUTH 5.0 with success and an empty property block (encoded in the 0-byte form)",
    versions: V5,
    packet: { type: 15, reasonCode: 0 },
    bytes: [0xf0, 2, 0x00, 0], // header, remaining length, reason code, property length
    canonical: [0xf0, 0],
  },
  {
    name: "AUTH 5.0 continue authentication with every AUTH property",
    versions: V5,
    packet: {
      type: 15,
      reasonCode: 0x18,
      properties: {
        authenticationMethod: "SCRAM",
        authenticationData: Uint8Array.of(9, 9),
        reasonString: "go",
        userProperties: [["k", "v"]],
      },
    },
    bytes: [
      0xf0, 27, // header, remaining length
      0x18, // reason code: continue authentication
      25, // property length
      0x15, ...str("SCRAM"), // authentication method
      0x16, ...bin(9, 9), // authentication data
      0x1f, ...str("go"), // reason string
      0x26, ...str("k"), ...str("v"), // user property
    ],
  },
  {
    name: "AUTH 5.0 re-authenticate",
    versions: V5,
    packet: { type: 15, reasonCode: 0x19, properties: { authenticationMethod: "SCRAM" } },
    bytes: [
      0xf0, 10, // header, remaining length
      0x19, // reason code: re-authenticate
      8, // property length
      0x15, ...str("SCRAM"), // authentication method
    ],
  },
];
