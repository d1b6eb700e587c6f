/** The shared shape of SUBACK and UNSUBACK (sections 3.9 and 3.11): packet id, properties, reason codes. */

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

/** Fields of SUBACK and UNSUBACK. */
export interface SubAckFields {
  readonly packetId: number;
  /** One per filter, in order. An MQTT 3.1.1 UNSUBACK has none. */
  readonly reasonCodes: readonly number[];
  readonly properties?: Properties;
}

const V3_SUBACK: ReadonlySet<number> = new Set([0x00, 0x01, 0x02, 0x80]);

/** Decodes a SUBACK (type 9) or UNSUBACK (type 11) body. */
export function decodeSubAck(reader: Reader, type: 9 | 11, version: ProtocolVersion): SubAckFields {
  const name = packetName(type);
  const packetId = reader.u16("packet identifier");
  if (packetId === 0) throw malformed(`Cannot decode ${name}: packet identifier is 0 [MQTT-2.2.1-3 (5.0)]`);
  const properties = version === 5 ? readProperties(reader, type as PropertyContext) : undefined;
  const reasonCodes: number[] = [];
  if (version === 5 || type === 9) {
    const valid = version === 5 ? VALID_REASON_CODES[type]! : V3_SUBACK;
    while (reader.remaining > 0) {
      const code = reader.u8("reason code");
      if (!valid.has(code)) {
        throw protocolError(
          `Cannot decode ${name}: reason code 0x${code.toString(16)} is not valid here [MQTT-3.${type}.3-2]`,
        );
      }
      reasonCodes.push(code);
    }
    if (reasonCodes.length === 0) throw protocolError(`Cannot decode ${name}: no reason code in the payload`);
  }
  reader.expectEnd();
  return properties === undefined ? { packetId, reasonCodes } : { packetId, reasonCodes, properties };
}

/** Encodes a SUBACK or UNSUBACK with first byte `header`. */
export function encodeSubAck(header: number, ack: SubAckFields, version: ProtocolVersion): Uint8Array {
  const v3Unsuback = version < 5 && header >> 4 === 11;
  const codes = v3Unsuback ? 0 : ack.reasonCodes.length;
  let length = 2 + codes;
  let propsLength = 0;
  if (version === 5) {
    propsLength = propertiesLength(ack.properties);
    length += varintLength(propsLength) + propsLength;
  }
  const w = startPacket(header, length);
  w.u16(ack.packetId);
  if (version === 5) writeProperties(w, ack.properties, propsLength);
  for (let i = 0; i < codes; i++) w.u8(ack.reasonCodes[i]!);
  return w.bytes;
}
