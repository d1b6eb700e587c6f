/** The shared shape of PUBACK, PUBREC, PUBREL and PUBCOMP (sections 3.4 - 3.7). */

import { malformed, protocolError } from "../mqtt_error.ts";
import type { Reader } from "../codec/reader.ts";
import { startPacket } from "../codec/writer.ts";
import { varintLength } from "../codec/varint.ts";
import {
  type Properties,
  propertiesLength,
  type PropertyContext,
  readProperties,
  writeProperties,
} from "./properties.ts";
import { VALID_REASON_CODES } from "./reason_code.ts";
import { packetName, type ProtocolVersion } from "./packet_type.ts";

/** The fields every QoS acknowledgement has. */
export interface AckFields {
  readonly packetId: number;
  /** v5 reason code; 0 (Success) in v3. */
  readonly reasonCode: number;
  readonly properties?: Properties;
}

/** Decodes an acknowledgement body of packet type `type`. */
export function decodeAck<T extends 4 | 5 | 6 | 7>(
  reader: Reader,
  type: T,
  version: ProtocolVersion,
): AckFields & { readonly type: T } {
  const packetId = reader.u16("packet identifier");
  if (packetId === 0) {
    throw malformed(`Cannot decode ${packetName(type)}: packet identifier is 0 [MQTT-2.2.1-3 (5.0)]`);
  }
  const packet: { type: T; packetId: number; reasonCode: number; properties?: Properties } = {
    type,
    packetId,
    reasonCode: 0,
  };
  if (version === 5 && reader.remaining > 0) {
    const reasonCode = reader.u8("reason code");
    if (!VALID_REASON_CODES[type]!.has(reasonCode)) {
      throw protocolError(
        `Cannot decode ${packetName(type)}: reason code 0x${
          reasonCode.toString(16)
        } is not valid here [MQTT-3.${type}.2-1 (5.0)]`,
      );
    }
    packet.reasonCode = reasonCode;
    // Below 4 bytes there is no Property Length and 0 is used (5.0 section 3.4.2.2.1).
    if (reader.remaining > 0) {
      const properties = readProperties(reader, type as PropertyContext);
      if (properties !== undefined) packet.properties = properties;
    }
  }
  reader.expectEnd();
  return packet;
}

/** Encodes an acknowledgement, with the shortest form v5 allows (5.0 section 3.4.2.1). */
export function encodeAck(header: number, ack: AckFields, version: ProtocolVersion): Uint8Array {
  const props = version === 5 ? ack.properties : undefined;
  const propsLength = propertiesLength(props);
  if (version < 5 || (ack.reasonCode === 0 && propsLength === 0)) {
    const w = startPacket(header, 2);
    w.u16(ack.packetId);
    return w.bytes;
  }
  if (propsLength === 0) {
    const w = startPacket(header, 3);
    w.u16(ack.packetId);
    w.u8(ack.reasonCode);
    return w.bytes;
  }
  const w = startPacket(header, 3 + varintLength(propsLength) + propsLength);
  w.u16(ack.packetId);
  w.u8(ack.reasonCode);
  writeProperties(w, props, propsLength);
  return w.bytes;
}
