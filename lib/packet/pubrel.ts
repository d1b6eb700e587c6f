/**
 * PUBREL (section 3.6).
 *
 * @module
 */

import type { Reader } from "../codec/reader.ts";
import { type AckFields, decodeAck, encodeAck } from "./_ack.ts";
import type { Properties } from "./properties.ts";
import { PACKET_TYPE, type ProtocolVersion } from "./packet_type.ts";

/** A PUBREL packet. */
export interface PubrelPacket {
  /** The control packet type (6). */
  readonly type: typeof PACKET_TYPE.PUBREL;
  /** The identifier of the QoS 2 PUBLISH released. */
  readonly packetId: number;
  /** v5 reason code; 0 (Success) before 5.0. */
  readonly reasonCode: number;
  /** v5 properties (Reason String, User Properties); absent when there are none. */
  readonly properties?: Properties;
}

/** Decodes a PUBREL body. */
export function decodePubrel(reader: Reader, version: ProtocolVersion): PubrelPacket {
  return decodeAck(reader, PACKET_TYPE.PUBREL, version);
}

/** Encodes a PUBREL packet. */
export function encodePubrel(packet: AckFields, version: ProtocolVersion): Uint8Array {
  return encodeAck((PACKET_TYPE.PUBREL << 4) | 0x2, packet, version);
}
