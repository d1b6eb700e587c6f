/**
 * SUBACK (section 3.9).
 *
 * @module
 */

import type { Reader } from "../codec/reader.ts";
import { decodeSubAck, encodeSubAck, type SubAckFields } from "./_sub_ack.ts";
import { PACKET_TYPE, type ProtocolVersion } from "./packet_type.ts";

/** A SUBACK packet: one reason code (granted QoS or failure) per requested filter. */
export interface SubackPacket extends SubAckFields {
  readonly type: typeof PACKET_TYPE.SUBACK;
}

/** Decodes a SUBACK body. */
export function decodeSuback(reader: Reader, version: ProtocolVersion): SubackPacket {
  return { type: PACKET_TYPE.SUBACK, ...decodeSubAck(reader, PACKET_TYPE.SUBACK, version) };
}

/** Encodes a SUBACK packet. */
export function encodeSuback(packet: SubAckFields, version: ProtocolVersion): Uint8Array {
  return encodeSubAck(PACKET_TYPE.SUBACK << 4, packet, version);
}
