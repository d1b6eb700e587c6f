/**
 * PUBREC (section 3.5).
 *
 * @module
 */

import type { Reader } from "../codec/reader.ts";
import { type AckFields, decodeAck, encodeAck } from "./_ack.ts";
import { PACKET_TYPE, type ProtocolVersion } from "./packet_type.ts";

/** A PUBREC packet. */
export interface PubrecPacket extends AckFields {
  readonly type: typeof PACKET_TYPE.PUBREC;
}

/** Decodes a PUBREC body. */
export function decodePubrec(reader: Reader, version: ProtocolVersion): PubrecPacket {
  return { type: PACKET_TYPE.PUBREC, ...decodeAck(reader, PACKET_TYPE.PUBREC, version) };
}

/** Encodes a PUBREC packet. */
export function encodePubrec(packet: AckFields, version: ProtocolVersion): Uint8Array {
  return encodeAck((PACKET_TYPE.PUBREC << 4) | 0x0, packet, version);
}
