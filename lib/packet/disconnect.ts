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
  readonly type: typeof PACKET_TYPE.DISCONNECT;
  /** v5 reason code; 0 in v3. */
  readonly reasonCode: number;
  readonly properties?: Properties;
}

/** Decodes a DISCONNECT body. */
export function decodeDisconnect(reader: Reader, version: ProtocolVersion): DisconnectPacket {
  let reasonCode = 0;
  let properties: Properties | undefined;
  if (version === 5 && reader.remaining > 0) {
    reasonCode = reader.u8("reason code");
    if (!VALID_REASON_CODES[PACKET_TYPE.DISCONNECT]!.has(reasonCode)) {
      throw protocolError(
        `Cannot decode DISCONNECT: reason code 0x${reasonCode.toString(16)} is not valid here`,
      );
    }
    if (reader.remaining > 0) properties = readProperties(reader, PROPERTY_CONTEXT.DISCONNECT);
  }
  reader.expectEnd();
  return { type: PACKET_TYPE.DISCONNECT, reasonCode, ...(properties === undefined ? {} : { properties }) };
}

/** Encodes a DISCONNECT packet (v3: always the two-byte form). */
export function encodeDisconnect(
  packet: Omit<DisconnectPacket, "type">,
  version: ProtocolVersion,
): Uint8Array {
  const header = PACKET_TYPE.DISCONNECT << 4;
  if (version < 5) return Uint8Array.of(header, 0);
  const propsLength = propertiesLength(packet.properties);
  if (propsLength === 0) {
    return packet.reasonCode === 0 ? Uint8Array.of(header, 0) : Uint8Array.of(header, 1, packet.reasonCode);
  }
  const w = startPacket(header, 1 + varintLength(propsLength) + propsLength);
  w.u8(packet.reasonCode);
  writeProperties(w, packet.properties, propsLength);
  return w.bytes;
}
