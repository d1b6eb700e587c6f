/**
 * PUBREL (section 3.6).
 *
 * @module
 */

import type { Reader } from "../codec/reader.ts";
import { type AckFields, decodeAck, encodeAck } from "./_ack.ts";
import { PACKET_TYPE, type ProtocolVersion } from "./packet_type.ts";

/** A PUBREL packet. */
export interface PubrelPacket extends AckFields {
  readonly type: typeof PACKET_TYPE.PUBREL;
}

/** Decodes a PUBREL body. */
export function decodePubrel(reader: Reader, version: ProtocolVersion): PubrelPacket {
  return { type: PACKET_TYPE.PUBREL, ...decodeAck(reader, PACKET_TYPE.PUBREL, version) };
}

/** Encodes a PUBREL packet. */
export function encodePubrel(packet: AckFields, version: ProtocolVersion): Uint8Array {
  return encodeAck((PACKET_TYPE.PUBREL << 4) | 0x2, packet, version);
}
