/**
 * DISCONNECT (section 3.14). In v5 either side may send it, with a reason code.
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
import { PACKET_TYPE, type ProtocolVersion } from "./packet_type.ts";

/** A DISCONNECT packet. */
export interface DisconnectPacket {
  /** The control packet type (14). */
  readonly type: typeof PACKET_TYPE.DISCONNECT;
  /** v5 reason code; 0 in v3. */
  readonly reasonCode: number;
  /** v5 properties; absent when there are none, and always before 5.0. */
  readonly properties?: Properties;
}

/** Decodes a DISCONNECT body. */
export function decodeDisconnect(reader: Reader, version: ProtocolVersion): DisconnectPacket {
  const packet: { -readonly [K in keyof DisconnectPacket]: DisconnectPacket[K] } = {
    type: PACKET_TYPE.DISCONNECT,
    reasonCode: 0,
  };
  if (version === 5 && reader.remaining > 0) {
    const reasonCode = reader.u8("reason code");
    if (!VALID_REASON_CODES[PACKET_TYPE.DISCONNECT]!.has(reasonCode)) {
      throw protocolError(
        `Cannot decode DISCONNECT: reason code 0x${
          reasonCode.toString(16)
        } is not valid here [MQTT-3.14.2-1 (5.0)]`,
      );
    }
    packet.reasonCode = reasonCode;
    // Below 2 bytes there is no Property Length and 0 is used (5.0 section 3.14.2.2.1).
    if (reader.remaining > 0) {
      const properties = readProperties(reader, PROPERTY_CONTEXT.DISCONNECT);
      if (properties !== undefined) packet.properties = properties;
    }
  }
  reader.expectEnd();
  return packet;
}

/** Encodes a DISCONNECT packet (v3: always the two-byte form). */
export function encodeDisconnect(
  packet: Omit<DisconnectPacket, "type">,
  version: ProtocolVersion,
): Uint8Array {
  const header = PACKET_TYPE.DISCONNECT << 4;
  const propsLength = version === 5 ? propertiesLength(packet.properties) : 0;
  if (version < 5 || (propsLength === 0 && packet.reasonCode === 0)) return startPacket(header, 0).bytes;
  if (propsLength === 0) {
    const w = startPacket(header, 1);
    w.u8(packet.reasonCode);
    return w.bytes;
  }
  const w = startPacket(header, 1 + varintLength(propsLength) + propsLength);
  w.u8(packet.reasonCode);
  writeProperties(w, packet.properties, propsLength);
  return w.bytes;
}
