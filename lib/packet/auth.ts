/**
 * AUTH (section 3.15): the v5 enhanced-authentication exchange.
 *
 * @module
 */

import { protocolError } from "../mqtt_error.ts";
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
import { PACKET_TYPE } from "./packet_type.ts";

/** An AUTH packet: 0x00 success, 0x18 continue authentication, 0x19 re-authenticate. */
export interface AuthPacket {
  /** The control packet type (15). */
  readonly type: typeof PACKET_TYPE.AUTH;
  /** 0x00 success, 0x18 continue authentication, 0x19 re-authenticate. */
  readonly reasonCode: number;
  /** v5 properties; absent when there are none, and always before 5.0. */
  readonly properties?: Properties;
}

/** Decodes an AUTH body (v5 only; the caller refuses AUTH from older clients). */
export function decodeAuth(reader: Reader): AuthPacket {
  const packet: { -readonly [K in keyof AuthPacket]: AuthPacket[K] } = {
    type: PACKET_TYPE.AUTH,
    reasonCode: 0,
  };
  if (reader.remaining > 0) {
    const reasonCode = reader.u8("reason code");
    if (!VALID_REASON_CODES[PACKET_TYPE.AUTH]!.has(reasonCode)) {
      throw protocolError(
        `Cannot decode AUTH: reason code 0x${reasonCode.toString(16)} is not valid [MQTT-3.15.2-1 (5.0)]`,
      );
    }
    packet.reasonCode = reasonCode;
    // Unlike DISCONNECT's, AUTH's Property Length is omitted only together with the Reason Code (3.15.2.1).
    const properties = readProperties(reader, PROPERTY_CONTEXT.AUTH);
    if (properties !== undefined) packet.properties = properties;
  }
  reader.expectEnd();
  return packet;
}

/** Encodes an AUTH packet. */
export function encodeAuth(packet: Omit<AuthPacket, "type">): Uint8Array {
  const header = PACKET_TYPE.AUTH << 4;
  const propsLength = propertiesLength(packet.properties);
  if (packet.reasonCode === 0 && propsLength === 0) return startPacket(header, 0).bytes;
  const w = startPacket(header, 1 + varintLength(propsLength) + propsLength);
  w.u8(packet.reasonCode);
  writeProperties(w, packet.properties, propsLength);
  return w.bytes;
}
