/**
 * UNSUBSCRIBE (section 3.10).
 *
 * @module
 */

import { malformed, protocolError } from "../mqtt_error.ts";
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
import { PACKET_TYPE, type ProtocolVersion } from "./packet_type.ts";

/** An UNSUBSCRIBE packet. */
export interface UnsubscribePacket {
  /** The control packet type (10). */
  readonly type: typeof PACKET_TYPE.UNSUBSCRIBE;
  /** The packet identifier, 1..65535. */
  readonly packetId: number;
  /** One or more topic filters, in order. */
  readonly filters: readonly string[];
  /** v5 properties; absent when there are none, and always before 5.0. */
  readonly properties?: Properties;
}

/** Decodes an UNSUBSCRIBE body. */
export function decodeUnsubscribe(reader: Reader, version: ProtocolVersion): UnsubscribePacket {
  const packetId = reader.u16("packet identifier");
  if (packetId === 0) {
    throw malformed("Cannot decode UNSUBSCRIBE: packet identifier is 0 [MQTT-2.2.1-3 (5.0)]");
  }
  const properties = version === 5 ? readProperties(reader, PROPERTY_CONTEXT.UNSUBSCRIBE) : undefined;
  const filters: string[] = [];
  while (reader.remaining > 0) filters.push(reader.utf8("topic filter"));
  if (filters.length === 0) {
    throw protocolError("Cannot decode UNSUBSCRIBE: no topic filter in the payload [MQTT-3.10.3-2 (5.0)]");
  }
  return {
    type: PACKET_TYPE.UNSUBSCRIBE,
    packetId,
    filters,
    ...(properties === undefined ? {} : { properties }),
  };
}

/** Encodes an UNSUBSCRIBE packet. */
export function encodeUnsubscribe(packet: UnsubscribePacket, version: ProtocolVersion): Uint8Array {
  const lengths = packet.filters.map(utf8Length);
  let length = 2 + lengths.reduce((sum, n) => sum + 2 + n, 0);
  let propsLength = 0;
  if (version === 5) {
    propsLength = propertiesLength(packet.properties);
    length += varintLength(propsLength) + propsLength;
  }
  const w = startPacket((PACKET_TYPE.UNSUBSCRIBE << 4) | 0x02, length);
  w.u16(packet.packetId);
  if (version === 5) writeProperties(w, packet.properties, propsLength);
  packet.filters.forEach((filter, i) => w.utf8(filter, lengths[i]!));
  return w.bytes;
}
