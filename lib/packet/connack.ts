/**
 * CONNACK (section 3.2): the server's answer to CONNECT.
 *
 * @module
 */

import { malformed } from "../mqtt_error.ts";
import type { Reader } from "../codec/reader.ts";
import { startPacket } from "../codec/writer.ts";
import { varintLength } from "../codec/varint.ts";
import {
  type Properties,
  propertiesLength,
  PROPERTY_CONTEXT,
  readProperties,
  writeProperties,
} from "./properties.ts";
import { PACKET_TYPE, type ProtocolVersion } from "./packet_type.ts";

/** A CONNACK packet. For v3 `reasonCode` is the 3.1.1 return code (0..5). */
export interface ConnackPacket {
  readonly type: typeof PACKET_TYPE.CONNACK;
  readonly sessionPresent: boolean;
  readonly reasonCode: number;
  readonly properties?: Properties;
}

/** Decodes a CONNACK body. */
export function decodeConnack(reader: Reader, version: ProtocolVersion): ConnackPacket {
  const flags = reader.u8("acknowledge flags");
  if ((flags & 0xfe) !== 0) {
    throw malformed("Cannot decode CONNACK: reserved acknowledge flags are set [MQTT-3.2.2-1]");
  }
  const reasonCode = reader.u8("reason code");
  const properties = version === 5 ? readProperties(reader, PROPERTY_CONTEXT.CONNACK) : undefined;
  reader.expectEnd();
  return {
    type: PACKET_TYPE.CONNACK,
    sessionPresent: (flags & 1) === 1,
    reasonCode,
    ...(properties === undefined ? {} : { properties }),
  };
}

/** Encodes a CONNACK packet. */
export function encodeConnack(packet: ConnackPacket, version: ProtocolVersion): Uint8Array {
  if (version < 5) {
    return Uint8Array.of(PACKET_TYPE.CONNACK << 4, 2, packet.sessionPresent ? 1 : 0, packet.reasonCode);
  }
  const propsLength = propertiesLength(packet.properties);
  const w = startPacket(PACKET_TYPE.CONNACK << 4, 2 + varintLength(propsLength) + propsLength);
  w.u8(packet.sessionPresent ? 1 : 0);
  w.u8(packet.reasonCode);
  writeProperties(w, packet.properties, propsLength);
  return w.bytes;
}
