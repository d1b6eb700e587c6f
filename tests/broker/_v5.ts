/**
 * MQTT 5.0 helpers for the v5 feature tests, beside `_wire.ts`: more property builders, persistent-session
 * CONNECTs, decoded-PUBLISH and acknowledgement checks, and a small authorizer.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Authorizer } from "../../lib/broker/auth/auth.ts";
import type { Packet } from "../../lib/packet/packet.ts";
import type { Properties } from "../../lib/packet/properties.ts";
import type { PublishPacket } from "../../lib/packet/publish.ts";
import { bin, concat, type ConnectSpec, P, type Part, str, type WireClient } from "./_wire.ts";

/** v5 properties that `P` of `_wire.ts` lacks (identifier byte + value), for `props()` and `properties`. */
export const P5 = {
  contentType: (text: string): Uint8Array => concat(0x03, str(text)),
  responseTopic: (topic: string): Uint8Array => concat(0x08, str(topic)),
  correlationData: (bytes: Uint8Array): Uint8Array => concat(0x09, bin(bytes)),
  requestResponseInformation: (n: number): Uint8Array => Uint8Array.of(0x19, n),
  responseInformation: (text: string): Uint8Array => concat(0x1a, str(text)),
  serverReference: (text: string): Uint8Array => concat(0x1c, str(text)),
  reasonString: (text: string): Uint8Array => concat(0x1f, str(text)),
} as const;

/** A v5 CONNECT spec for a session that outlives its connection (`expiry` seconds). */
export function persistent(clientId: string, expiry = 300, extra: readonly Part[] = []): ConnectSpec {
  return { version: 5, clientId, clean: false, properties: [P.sessionExpiry(expiry), ...extra] };
}

/** What a received PUBLISH is compared with: the listed fields only (properties compared whole). */
export interface ExpectedPublish {
  readonly topic: string;
  readonly payload?: string;
  readonly qos?: 0 | 1 | 2;
  readonly retain?: boolean;
  readonly dup?: boolean;
  /** The whole property set the broker must send (undefined: none at all). */
  readonly properties?: Properties;
}

const decoder = new TextDecoder();

/** Checks a decoded PUBLISH against `expected` (properties compared whole, so nothing extra slips in). */
export function assertPublish(packet: Packet, expected: ExpectedPublish, what = "PUBLISH"): PublishPacket {
  assert.equal(packet.type, 3, `${what}: expected PUBLISH, got packet type ${packet.type}`);
  const publish = packet as PublishPacket;
  assert.equal(publish.topic, expected.topic, `${what}: topic`);
  if (expected.payload !== undefined) assert.equal(decoder.decode(publish.payload), expected.payload, what);
  assert.equal(publish.qos, expected.qos ?? 0, `${what}: QoS`);
  assert.equal(publish.retain, expected.retain ?? false, `${what}: RETAIN`);
  assert.equal(publish.dup, expected.dup ?? false, `${what}: DUP`);
  assert.deepEqual(publish.properties, expected.properties, `${what}: properties`);
  return publish;
}

/** Payloads of the PUBLISH packets among `packets`, as text. */
export function payloads(packets: readonly Packet[]): string[] {
  return packets.map((p) => {
    assert.equal(p.type, 3, `expected only PUBLISH, got packet type ${p.type}`);
    return decoder.decode((p as PublishPacket).payload);
  });
}

/** Expects an acknowledgement of `type` (4 PUBACK, 5 PUBREC, 7 PUBCOMP) with `reason`, and whether it explains. */
export async function expectAck(
  client: WireClient,
  type: 4 | 5 | 7,
  id: number,
  reason: number,
  reasonString: "with reason string" | "without reason string" | "any" = "any",
): Promise<void> {
  const ack = await client.expectPacket(type, `ack type ${type} for ${id}`);
  assert.equal(ack.packetId, id, "packet id");
  assert.equal(ack.reasonCode, reason, `reason 0x${ack.reasonCode.toString(16)}`);
  if (reasonString === "with reason string") {
    assert.equal(typeof ack.properties?.reasonString, "string", "a Reason String explains the refusal");
  } else if (reasonString === "without reason string") {
    assert.equal(ack.properties, undefined, "no properties at all [MQTT-3.1.2-29 (5.0)]");
  }
}

/** An authorizer that refuses publishing to the listed topics and allows everything else. */
export function denyPublish(...topics: string[]): Authorizer {
  return {
    canPublish: (_client, topic) => !topics.includes(topic),
    canSubscribe: () => true,
    canReceive: () => true,
  };
}
