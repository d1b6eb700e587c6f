/**
 * PUBACK (section 3.4).
 *
 * @module
 */

import type { Reader } from "../codec/reader.ts";
import { type AckFields, decodeAck, encodeAck } from "./_ack.ts";
import type { Properties } from "./properties.ts";
import { PACKET_TYPE, type ProtocolVersion } from "./packet_type.ts";

/** A PUBACK packet. */
export interface PubackPacket {
  /** The control packet type (4). */
  readonly type: typeof PACKET_TYPE.PUBACK;
  /** The identifier of the PUBLISH acknowledged. */
  readonly packetId: number;
  /** v5 reason code; 0 (Success) before 5.0. */
  readonly reasonCode: number;
  /** v5 properties (Reason String, User Properties); absent when there are none. */
  readonly properties?: Properties;
}

/** Decodes a PUBACK body. */
export function decodePuback(reader: Reader, version: ProtocolVersion): PubackPacket {
  return decodeAck(reader, PACKET_TYPE.PUBACK, version);
}

/** Encodes a PUBACK packet. */
export function encodePuback(packet: AckFields, version: ProtocolVersion): Uint8Array {
  return encodeAck((PACKET_TYPE.PUBACK << 4) | 0x0, packet, version);
}
