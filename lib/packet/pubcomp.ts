/**
 * PUBCOMP (section 3.7).
 *
 * @module
 */

import type { Reader } from "../codec/reader.ts";
import { type AckFields, decodeAck, encodeAck } from "./_ack.ts";
import type { Properties } from "./properties.ts";
import { PACKET_TYPE, type ProtocolVersion } from "./packet_type.ts";

/** A PUBCOMP packet. */
export interface PubcompPacket {
  /** The control packet type (7). */
  readonly type: typeof PACKET_TYPE.PUBCOMP;
  /** The identifier of the QoS 2 PUBLISH completed. */
  readonly packetId: number;
  /** v5 reason code; 0 (Success) before 5.0. */
  readonly reasonCode: number;
  /** v5 properties (Reason String, User Properties); absent when there are none. */
  readonly properties?: Properties;
}

/** Decodes a PUBCOMP body. */
export function decodePubcomp(reader: Reader, version: ProtocolVersion): PubcompPacket {
  return decodeAck(reader, PACKET_TYPE.PUBCOMP, version);
}

/** Encodes a PUBCOMP packet. */
export function encodePubcomp(packet: AckFields, version: ProtocolVersion): Uint8Array {
  return encodeAck((PACKET_TYPE.PUBCOMP << 4) | 0x0, packet, version);
}
