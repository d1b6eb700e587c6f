/**
 * SUBACK (section 3.9).
 *
 * @module
 */

import type { Reader } from "../codec/reader.ts";
import { decodeSubAck, encodeSubAck, type SubAckFields } from "./_sub_ack.ts";
import type { Properties } from "./properties.ts";
import { PACKET_TYPE, type ProtocolVersion } from "./packet_type.ts";

/** A SUBACK packet: one reason code (granted QoS or failure) per requested filter. */
export interface SubackPacket {
  /** The control packet type (9). */
  readonly type: typeof PACKET_TYPE.SUBACK;
  /** The identifier of the SUBSCRIBE acknowledged. */
  readonly packetId: number;
  /** One reason code per topic filter, in order: the QoS granted, or a failure (0x80 and above). */
  readonly reasonCodes: readonly number[];
  /** v5 properties (Reason String, User Properties); absent when there are none. */
  readonly properties?: Properties;
}

/** Decodes a SUBACK body. */
export function decodeSuback(reader: Reader, version: ProtocolVersion): SubackPacket {
  return { type: PACKET_TYPE.SUBACK, ...decodeSubAck(reader, PACKET_TYPE.SUBACK, version) };
}

/** Encodes a SUBACK packet. */
export function encodeSuback(packet: SubAckFields, version: ProtocolVersion): Uint8Array {
  return encodeSubAck(PACKET_TYPE.SUBACK << 4, packet, version);
}
