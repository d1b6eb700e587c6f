/**
 * PUBLISH (section 3.3). A PUBLISH can be encoded once and the bytes shared by many receivers: only the packet
 * identifier (and the DUP flag) differ, and {@linkcode patchPublish} writes those into a copy.
 *
 * @module
 */

import { malformed } from "../mqtt_error.ts";
import type { Reader } from "../codec/reader.ts";
import { startPacket } from "../codec/writer.ts";
import { utf8Length } from "../codec/utf8.ts";
import { varintLength } from "../codec/varint.ts";
import {
  type Properties,
  propertiesLength,
  PROPERTY_CONTEXT,
  readProperties,
  writeProperties,
} from "./properties.ts";
import { PACKET_TYPE, type ProtocolVersion, type QoS } from "./packet_type.ts";

/** A PUBLISH packet. `packetId` is present exactly when `qos` > 0. */
export interface PublishPacket {
  /** The control packet type (3). */
  readonly type: typeof PACKET_TYPE.PUBLISH;
  /** May be empty in v5 when a Topic Alias stands for it. */
  readonly topic: string;
  /** A view of the received bytes, or the bytes to send. */
  readonly payload: Uint8Array;
  /** Quality of service of this delivery. */
  readonly qos: QoS;
  /** The RETAIN flag. */
  readonly retain: boolean;
  /** The DUP flag: this is a re-delivery of a QoS 1 or 2 message. */
  readonly dup: boolean;
  /** The packet identifier, present exactly when `qos` > 0. */
  readonly packetId?: number;
  /** v5 properties; absent when there are none, and always before 5.0. */
  readonly properties?: Properties;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Decodes a PUBLISH body; `flags` is the low nibble of the fixed header. */
export function decodePublish(reader: Reader, flags: number, version: ProtocolVersion): PublishPacket {
  const qos = (flags >> 1) & 0x03;
  if (qos === 3) throw malformed("Cannot decode PUBLISH: QoS is 3 [MQTT-3.3.1-4 (5.0)]");
  const dup = (flags & 0x08) !== 0;
  if (dup && qos === 0) {
    throw malformed("Cannot decode PUBLISH: DUP is set on a QoS 0 message [MQTT-3.3.1-2 (5.0)]");
  }
  const topic = reader.utf8("topic name");
  let packetId: number | undefined;
  if (qos > 0) {
    packetId = reader.u16("packet identifier");
    if (packetId === 0) throw malformed("Cannot decode PUBLISH: packet identifier is 0 [MQTT-2.2.1-3 (5.0)]");
  }
  const properties = version === 5 ? readProperties(reader, PROPERTY_CONTEXT.PUBLISH) : undefined;
  // Optional fields are added, not spread: spreads allocate and make the object's shape vary (the hot path).
  const packet: Mutable<PublishPacket> = {
    type: PACKET_TYPE.PUBLISH,
    topic,
    payload: reader.rest(),
    qos: qos as QoS,
    retain: (flags & 0x01) !== 0,
    dup,
  };
  if (packetId !== undefined) packet.packetId = packetId;
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

/**
 * Encodes a PUBLISH. With `qos` > 0 and no `packetId`, identifier 0 is written as a placeholder for
 * {@linkcode patchPublish}.
 */
export function encodePublish(packet: PublishPacket, version: ProtocolVersion): Uint8Array {
  const topicLength = utf8Length(packet.topic);
  let length = 2 + topicLength + packet.payload.length;
  if (packet.qos > 0) length += 2;
  let propsLength = 0;
  if (version === 5) {
    propsLength = propertiesLength(packet.properties);
    length += varintLength(propsLength) + propsLength;
  }
  const header = (PACKET_TYPE.PUBLISH << 4) | (packet.dup ? 0x08 : 0) | (packet.qos << 1) |
    (packet.retain ? 1 : 0);
  const w = startPacket(header, length);
  w.utf8(packet.topic, topicLength);
  if (packet.qos > 0) w.u16(packet.packetId ?? 0);
  if (version === 5) writeProperties(w, packet.properties, propsLength);
  w.raw(packet.payload);
  return w.bytes;
}

/** The offset of the packet identifier in an encoded QoS 1/2 PUBLISH. */
export function publishPacketIdOffset(bytes: Uint8Array): number {
  let i = 1;
  while ((bytes[i]! & 0x80) !== 0) i++;
  i++;
  return i + 2 + ((bytes[i]! << 8) | bytes[i + 1]!);
}

/**
 * Writes `packetId` and the DUP flag into `target` at `offset`, where a copy of an encoded QoS 1/2 PUBLISH starts
 * (`idOffset` from {@linkcode publishPacketIdOffset}).
 */
export function patchPublish(
  target: Uint8Array,
  offset: number,
  idOffset: number,
  packetId: number,
  dup: boolean,
): void {
  if (dup) target[offset] = target[offset]! | 0x08;
  target[offset + idOffset] = packetId >>> 8;
  target[offset + idOffset + 1] = packetId & 0xff;
}
