/**
 * CONNECT negotiation as tables: the pure functions of `lib/broker/handlers/connect_negotiation.ts`, with no
 * socket, clock or broker. Each row is one CONNECT (and options) and what the broker must decide.
 */

import assert from "node:assert/strict";
import {
  announcedProperties,
  brokerConnackProperties,
  checkConnect,
  type ConnectTerms,
  negotiateConnack,
  refusalConnack,
  successConnack,
} from "../../../lib/broker/handlers/connect_negotiation.ts";
import { type BrokerOptions, EXPIRY_NEVER, resolveOptions } from "../../../lib/broker/options.ts";
import { decode } from "../../../lib/packet/decode.ts";
import type { ConnectPacket } from "../../../lib/packet/connect.ts";
import type { Properties } from "../../../lib/packet/properties.ts";

/** A CONNECT with defaults a test overrides. */
function connect(fields: Partial<ConnectPacket> = {}): ConnectPacket {
  return { type: 1, protocolVersion: 5, clientId: "c", cleanStart: true, keepAlive: 60, ...fields };
}

/** The CONNACK properties a broker with `options` announces (as the broker builds them). */
function brokerProperties(options: BrokerOptions = {}): Properties {
  return brokerConnackProperties(resolveOptions(options));
}

// ---- checkConnect: before authentication ---------------------------------------------------------------------

interface CheckRow {
  readonly name: string;
  readonly packet: ConnectPacket;
  readonly options?: BrokerOptions;
  /** A refusal's reason code, or the terms expected (the listed fields only). */
  readonly expect: { readonly refuse: number } | Partial<ConnectTerms>;
}

const CHECKS: readonly CheckRow[] = [
  { name: "a plain v5 CONNECT", packet: connect(), expect: { keepAlive: 60, serverKeepAlive: undefined } },
  {
    name: "v5 empty client id: assigned [MQTT-3.1.3-6 (5.0)]",
    packet: connect({ clientId: "" }),
    expect: { assignClientId: true },
  },
  {
    name: "3.1.1 empty client id with a clean session: assigned [MQTT-3.1.3-6 (3.1.1)]",
    packet: connect({ protocolVersion: 4, clientId: "" }),
    expect: { assignClientId: true },
  },
  {
    name: "3.1.1 empty client id without a clean session: 0x85 [MQTT-3.1.3-8 (3.1.1)]",
    packet: connect({ protocolVersion: 4, clientId: "", cleanStart: false }),
    expect: { refuse: 0x85 },
  },
  {
    name: "3.1 empty client id: 0x85",
    packet: connect({ protocolVersion: 3, clientId: "" }),
    expect: { refuse: 0x85 },
  },
  {
    name: "3.1 client id over 23 characters: 0x85",
    packet: connect({ protocolVersion: 3, clientId: "x".repeat(24) }),
    expect: { refuse: 0x85 },
  },
  {
    name: "redirect (temporary): 0x9C (5.0 section 4.11)",
    packet: connect(),
    options: { redirect: { reference: "other:1883" } },
    expect: { refuse: 0x9c },
  },
  {
    name: "redirect (permanent): 0x9D",
    packet: connect(),
    options: { redirect: { reference: "other:1883", permanent: true } },
    expect: { refuse: 0x9d },
  },
  {
    name: "v5 keep alive above the maximum: Server Keep Alive [MQTT-3.2.2-21 (5.0)]",
    packet: connect({ keepAlive: 600 }),
    options: { maxKeepAlive: 60 },
    expect: { keepAlive: 60, serverKeepAlive: 60 },
  },
  {
    name: "v5 keep alive 0 with a maximum: Server Keep Alive",
    packet: connect({ keepAlive: 0 }),
    options: { maxKeepAlive: 60 },
    expect: { keepAlive: 60, serverKeepAlive: 60 },
  },
  {
    name: "3.1.1 keep alive above the maximum: refused 0x85 (3.1.1 return code 2)",
    packet: connect({ protocolVersion: 4, keepAlive: 600 }),
    options: { maxKeepAlive: 60 },
    expect: { refuse: 0x85 },
  },
  {
    name: "will QoS above the maximum: 0x9B",
    packet: connect({ will: { topic: "w", payload: new Uint8Array(), qos: 2, retain: false } }),
    options: { maxQoS: 1 },
    expect: { refuse: 0x9b },
  },
  {
    name: "retained will without retain: 0x9A",
    packet: connect({ will: { topic: "w", payload: new Uint8Array(), qos: 0, retain: true } }),
    options: { retainAvailable: false },
    expect: { refuse: 0x9a },
  },
  {
    name: "will topic with a wildcard: 0x90",
    packet: connect({ will: { topic: "w/+", payload: new Uint8Array(), qos: 0, retain: false } }),
    expect: { refuse: 0x90 },
  },
  {
    name:
      "client limits read: Receive Maximum, Topic Alias Maximum, Maximum Packet Size, problem information",
    packet: connect({
      properties: {
        receiveMaximum: 5,
        topicAliasMaximum: 3,
        maximumPacketSize: 1000,
        requestProblemInformation: 0,
      },
    }),
    expect: { sendWindow: 5, topicAliasMaximum: 3, maxPacketSize: 1000, problemInfo: false },
  },
  {
    name: "the client's Receive Maximum is capped by maxInflight",
    packet: connect({ properties: { receiveMaximum: 500 } }),
    options: { maxInflight: 20 },
    expect: { sendWindow: 20 },
  },
  {
    name: "3.1.1: the window is maxInflight, no aliases",
    packet: connect({ protocolVersion: 4 }),
    expect: { sendWindow: 100, topicAliasMaximum: 0, maxPacketSize: 0 },
  },
];

for (const row of CHECKS) {
  Deno.test(`checkConnect(): ${row.name}`, () => {
    const result = checkConnect(row.packet, resolveOptions(row.options ?? {}));
    if ("refuse" in row.expect) {
      assert.equal(result.kind, "refuse");
      if (result.kind === "refuse") assert.equal(result.reasonCode, row.expect.refuse);
      return;
    }
    assert.equal(result.kind, "accept", result.kind === "refuse" ? result.reason : "");
    for (const [key, value] of Object.entries(row.expect)) {
      assert.deepEqual(result[key as keyof typeof result], value, key);
    }
  });
}

// ---- negotiateConnack: after authentication ------------------------------------------------------------------

interface NegotiateRow {
  readonly name: string;
  readonly packet: ConnectPacket;
  readonly options?: BrokerOptions;
  readonly authProperties?: Properties;
  readonly expiry?: number;
  /** The CONNACK's properties (`"shared"`: the broker's own), or "close" when no CONNACK fits. */
  readonly properties: Properties | "shared" | "close";
}

const ANNOUNCED = { receiveMaximum: 100, maximumPacketSize: 1_048_576, topicAliasMaximum: 10 };

const NEGOTIATIONS: readonly NegotiateRow[] = [
  {
    name: "3.1.1 clean session: expiry 0",
    packet: connect({ protocolVersion: 4 }),
    expiry: 0,
    properties: "shared",
  },
  {
    name: "3.1.1 persistent session: never expires",
    packet: connect({ protocolVersion: 4, cleanStart: false }),
    expiry: EXPIRY_NEVER,
    properties: "shared",
  },
  { name: "v5 plain: the broker's shared CONNACK", packet: connect(), expiry: 0, properties: "shared" },
  {
    name: "v5 expiry above the maximum: the broker's value, announced (section 3.2.2.3.2)",
    packet: connect({ properties: { sessionExpiryInterval: 1000 } }),
    options: { maxSessionExpiry: 60 },
    expiry: 60,
    properties: { sessionExpiryInterval: 60, ...ANNOUNCED },
  },
  {
    name: "v5 with Request Response Information: Response Information",
    packet: connect({ properties: { requestResponseInformation: 1 } }),
    options: { responseInformation: "reply/" },
    properties: { ...ANNOUNCED, responseInformation: "reply/" },
  },
  {
    name: "v5 Authentication Method / Data from the authenticator",
    packet: connect(),
    authProperties: { authenticationMethod: "X", authenticationData: Uint8Array.of(1) },
    properties: { ...ANNOUNCED, authenticationMethod: "X", authenticationData: Uint8Array.of(1) },
  },
  {
    name: "capabilities switched off are announced as 0",
    packet: connect(),
    options: { retainAvailable: false, sharedSubscriptionsAvailable: false },
    properties: "shared",
  },
  {
    name: "Maximum Packet Size 16: everything fits, Topic Alias Maximum stays (issue #14 item 9)",
    packet: connect({ properties: { maximumPacketSize: 16 } }),
    properties: "shared",
  },
  {
    name: "Maximum Packet Size 13: Topic Alias Maximum alone is shed",
    packet: connect({ properties: { maximumPacketSize: 13 } }),
    properties: { receiveMaximum: 100, maximumPacketSize: 1_048_576 },
  },
  {
    name: "Response Information is shed before Topic Alias Maximum",
    packet: connect({ properties: { maximumPacketSize: 18, requestResponseInformation: 1 } }),
    options: { responseInformation: "reply/topic/for/you" },
    properties: ANNOUNCED,
  },
  {
    name: "Maximum Packet Size 12: what must stay does not fit: close without CONNACK [MQTT-3.1.2-24 (5.0)]",
    packet: connect({ properties: { maximumPacketSize: 12 } }),
    properties: "close",
  },
];

for (const row of NEGOTIATIONS) {
  Deno.test(`negotiateConnack(): ${row.name}`, () => {
    const options = resolveOptions(row.options ?? {});
    const terms = checkConnect(row.packet, options);
    assert.equal(terms.kind, "accept");
    if (terms.kind !== "accept") return;
    const broker = brokerProperties(row.options);
    const plan = negotiateConnack({
      packet: row.packet,
      options,
      brokerProperties: broker,
      terms,
      clientId: row.packet.clientId,
      authProperties: row.authProperties,
    });
    if (row.properties === "close") {
      assert.equal(plan.kind, "close");
      return;
    }
    assert.equal(plan.kind, "accept");
    if (plan.kind !== "accept") return;
    if (row.expiry !== undefined) assert.equal(plan.expiry, row.expiry);
    if (row.properties === "shared") {
      assert.equal(plan.properties, undefined, "the broker's own CONNACK");
    } else {
      assert.deepEqual(plan.properties, row.properties);
    }
    const limit = terms.maxPacketSize === 0 ? Infinity : terms.maxPacketSize;
    const bytes = successConnack(row.packet.protocolVersion, plan.properties, broker, false);
    assert.ok(bytes.length <= limit, `CONNACK of ${bytes.length} bytes within ${limit}`);
  });
}

Deno.test("announcedProperties() leaves out capabilities at their default 1, keeps 0 (issue #14 item 9)", () => {
  assert.deepEqual(announcedProperties(brokerProperties()), ANNOUNCED);
  assert.deepEqual(announcedProperties(brokerProperties({ retainAvailable: false, maxQoS: 1 })), {
    ...ANNOUNCED,
    maximumQoS: 1,
    retainAvailable: 0,
  });
});

Deno.test("successConnack(): 3.1 has no Session Present bit, 3.1.1 has (issue #14 item 4)", () => {
  const broker = brokerProperties();
  assert.deepEqual([...successConnack(3, undefined, broker, true)], [0x20, 0x02, 0x00, 0x00]);
  assert.deepEqual([...successConnack(4, undefined, broker, true)], [0x20, 0x02, 0x01, 0x00]);
  const v5 = decode(successConnack(5, undefined, broker, true), 5);
  assert.ok(v5.type === 2 && v5.sessionPresent);
  assert.equal(
    successConnack(5, undefined, broker, false),
    successConnack(5, undefined, broker, false),
    "shared",
  );
});

Deno.test("refusalConnack(): v3 return codes, none for a broken rule, Reason String only when it fits", () => {
  const refusal = { kind: "refuse" as const, reasonCode: 0x87, reason: "not authorized" };
  assert.deepEqual([...refusalConnack(4, refusal, true, 0)!], [0x20, 0x02, 0x00, 0x05]);
  assert.equal(refusalConnack(4, { ...refusal, reasonCode: 0x82 }, true, 0), undefined, "close instead");
  const full = decode(refusalConnack(5, refusal, true, 0)!, 5);
  assert.ok(full.type === 2 && full.properties?.reasonString === "not authorized");
  const quiet = decode(refusalConnack(5, refusal, true, 8)!, 5);
  assert.ok(quiet.type === 2 && quiet.properties === undefined, "no Reason String past the size limit");
});
