/**
 * PUBREC (section 3.5).
 *
 * @module
 */

import type { Reader } from "../codec/reader.ts";
import { type AckFields, decodeAck, encodeAck } from "./_ack.ts";
import type { Properties } from "./properties.ts";
import { PACKET_TYPE, type ProtocolVersion } from "./packet_type.ts";

/** A PUBREC packet. */
export interface PubrecPacket {
  /** The control packet type (5). */
  readonly type: typeof PACKET_TYPE.PUBREC;
  /** The identifier of the QoS 2 PUBLISH received. */
  readonly packetId: number;
  /** v5 reason code; 0 (Success) before 5.0. */
  readonly reasonCode: number;
  /** v5 properties (Reason String, User Properties); absent when there are none. */
  readonly properties?: Properties;
}

/** Decodes a PUBREC body. */
export function decodePubrec(reader: Reader, version: ProtocolVersion): PubrecPacket {
  return decodeAck(reader, PACKET_TYPE.PUBREC, version);
}

/** Encodes a PUBREC packet. */
export function encodePubrec(packet: AckFields, version: ProtocolVersion): Uint8Array {
  return encodeAck((PACKET_TYPE.PUBREC << 4) | 0x0, packet, version);
}
