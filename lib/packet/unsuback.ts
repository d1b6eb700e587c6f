/**
 * UNSUBACK (section 3.11).
 *
 * @module
 */

import type { Reader } from "../codec/reader.ts";
import { decodeSubAck, encodeSubAck, type SubAckFields } from "./_sub_ack.ts";
import type { Properties } from "./properties.ts";
import { PACKET_TYPE, type ProtocolVersion } from "./packet_type.ts";

/** An UNSUBACK packet; v5 carries one reason code per filter, 3.1.1 none. */
export interface UnsubackPacket {
  /** The control packet type (11). */
  readonly type: typeof PACKET_TYPE.UNSUBACK;
  /** The identifier of the UNSUBSCRIBE acknowledged. */
  readonly packetId: number;
  /** v5: one reason code per topic filter, in order; empty before 5.0, which has none. */
  readonly reasonCodes: readonly number[];
  /** v5 properties (Reason String, User Properties); absent when there are none. */
  readonly properties?: Properties;
}

/** Decodes an UNSUBACK body. */
export function decodeUnsuback(reader: Reader, version: ProtocolVersion): UnsubackPacket {
  return { type: PACKET_TYPE.UNSUBACK, ...decodeSubAck(reader, PACKET_TYPE.UNSUBACK, version) };
}

/** Encodes an UNSUBACK packet. */
export function encodeUnsuback(packet: SubAckFields, version: ProtocolVersion): Uint8Array {
  return encodeSubAck(PACKET_TYPE.UNSUBACK << 4, packet, version);
}
