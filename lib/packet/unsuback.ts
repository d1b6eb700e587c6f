/**
 * UNSUBACK (section 3.11).
 *
 * @module
 */

import type { Reader } from "../codec/reader.ts";
import { decodeSubAck, encodeSubAck, type SubAckFields } from "./_sub_ack.ts";
import { PACKET_TYPE, type ProtocolVersion } from "./packet_type.ts";

/** An UNSUBACK packet; v5 carries one reason code per filter, 3.1.1 none. */
export interface UnsubackPacket extends SubAckFields {
  readonly type: typeof PACKET_TYPE.UNSUBACK;
}

/** Decodes an UNSUBACK body. */
export function decodeUnsuback(reader: Reader, version: ProtocolVersion): UnsubackPacket {
  return { type: PACKET_TYPE.UNSUBACK, ...decodeSubAck(reader, PACKET_TYPE.UNSUBACK, version) };
}

/** Encodes an UNSUBACK packet. */
export function encodeUnsuback(packet: SubAckFields, version: ProtocolVersion): Uint8Array {
  return encodeSubAck(PACKET_TYPE.UNSUBACK << 4, packet, version);
}
