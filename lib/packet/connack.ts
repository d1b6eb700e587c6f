/**
 * CONNACK (section 3.2): the server's answer to CONNECT.
 *
 * @module
 */

import { malformed, protocolError } from "../mqtt_error.ts";
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
import { VALID_REASON_CODES } from "./reason_code.ts";
import { PACKET_TYPE, type ProtocolVersion } from "./packet_type.ts";

/** A CONNACK packet. For v3 `reasonCode` is the 3.1.1 return code (0..5). */
export interface ConnackPacket {
  /** The control packet type (2). */
  readonly type: typeof PACKET_TYPE.CONNACK;
  /**
   * Whether the server resumed a stored session [MQTT-3.2.2-3 (5.0)]. Not in 3.1, where that byte is reserved:
   * the broker never sets it for a 3.1 client (`successConnack` in lib/broker/handlers/connect_negotiation.ts).
   */
  readonly sessionPresent: boolean;
  /** v5 reason code, or the 3.1/3.1.1 return code (0..5). */
  readonly reasonCode: number;
  /** v5 properties; absent when there are none, and always before 5.0. */
  readonly properties?: Properties;
}

/** Decodes a CONNACK body. */
export function decodeConnack(reader: Reader, version: ProtocolVersion): ConnackPacket {
  const flags = reader.u8("acknowledge flags");
  if ((flags & 0xfe) !== 0) {
    throw malformed("Cannot decode CONNACK: reserved acknowledge flags are set [MQTT-3.2.2-1 (5.0)]");
  }
  const reasonCode = reader.u8("reason code");
  if (version === 5 ? !VALID_REASON_CODES[PACKET_TYPE.CONNACK]!.has(reasonCode) : reasonCode > 5) {
    throw protocolError(
      `Cannot decode CONNACK: reason code 0x${
        reasonCode.toString(16)
      } is not valid here [MQTT-3.2.2-8 (5.0)]`,
    );
  }
  const sessionPresent = (flags & 1) === 1;
  if (sessionPresent && reasonCode !== 0) {
    throw protocolError(
      "Cannot decode CONNACK: Session Present is set with a failure reason code [MQTT-3.2.2-6 (5.0)] [MQTT-3.2.2-4 (3.1.1)]",
    );
  }
  const packet: { -readonly [K in keyof ConnackPacket]: ConnackPacket[K] } = {
    type: PACKET_TYPE.CONNACK,
    sessionPresent,
    reasonCode,
  };
  if (version === 5) {
    const properties = readProperties(reader, PROPERTY_CONTEXT.CONNACK);
    if (properties !== undefined) packet.properties = properties;
  }
  reader.expectEnd();
  return packet;
}

/** Encodes a CONNACK packet. */
export function encodeConnack(packet: ConnackPacket, version: ProtocolVersion): Uint8Array {
  const propsLength = version === 5 ? propertiesLength(packet.properties) : 0;
  const w = startPacket(
    PACKET_TYPE.CONNACK << 4,
    version === 5 ? 2 + varintLength(propsLength) + propsLength : 2,
  );
  w.u8(packet.sessionPresent ? 1 : 0);
  w.u8(packet.reasonCode);
  if (version === 5) writeProperties(w, packet.properties, propsLength);
  return w.bytes;
}
