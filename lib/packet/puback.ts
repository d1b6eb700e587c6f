/**
 * PUBACK (section 3.4).
 *
 * @module
 */

import type { Reader } from "../codec/reader.ts";
import { type AckFields, decodeAck, encodeAck } from "./_ack.ts";
import { PACKET_TYPE, type ProtocolVersion } from "./packet_type.ts";

/** A PUBACK packet. */
export interface PubackPacket extends AckFields {
  readonly type: typeof PACKET_TYPE.PUBACK;
}

/** Decodes a PUBACK body. */
export function decodePuback(reader: Reader, version: ProtocolVersion): PubackPacket {
  return { type: PACKET_TYPE.PUBACK, ...decodeAck(reader, PACKET_TYPE.PUBACK, version) };
}

/** Encodes a PUBACK packet. */
export function encodePuback(packet: AckFields, version: ProtocolVersion): Uint8Array {
  return encodeAck((PACKET_TYPE.PUBACK << 4) | 0x0, packet, version);
}
