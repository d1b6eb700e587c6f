/**
 * PUBCOMP (section 3.7).
 *
 * @module
 */

import type { Reader } from "../codec/reader.ts";
import { type AckFields, decodeAck, encodeAck } from "./_ack.ts";
import { PACKET_TYPE, type ProtocolVersion } from "./packet_type.ts";

/** A PUBCOMP packet. */
export interface PubcompPacket extends AckFields {
  readonly type: typeof PACKET_TYPE.PUBCOMP;
}

/** Decodes a PUBCOMP body. */
export function decodePubcomp(reader: Reader, version: ProtocolVersion): PubcompPacket {
  return { type: PACKET_TYPE.PUBCOMP, ...decodeAck(reader, PACKET_TYPE.PUBCOMP, version) };
}

/** Encodes a PUBCOMP packet. */
export function encodePubcomp(packet: AckFields, version: ProtocolVersion): Uint8Array {
  return encodeAck((PACKET_TYPE.PUBCOMP << 4) | 0x0, packet, version);
}
