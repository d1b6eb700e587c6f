/**
 * PINGRESP (section 3.13): no variable header, no payload.
 *
 * @module
 */

import type { Reader } from "../codec/reader.ts";
import { startPacket } from "../codec/writer.ts";
import { PACKET_TYPE } from "./packet_type.ts";

/** A PINGRESP packet. */
export interface PingrespPacket {
  /** The control packet type (13). */
  readonly type: typeof PACKET_TYPE.PINGRESP;
}

/** The one PINGRESP value. */
export const PINGRESP: PingrespPacket = Object.freeze({ type: PACKET_TYPE.PINGRESP });

/** Decodes a PINGRESP body (it must be empty). */
export function decodePingresp(reader: Reader): PingrespPacket {
  reader.expectEnd();
  return PINGRESP;
}

/** Encodes a PINGRESP packet. */
export function encodePingresp(): Uint8Array {
  return startPacket(PACKET_TYPE.PINGRESP << 4, 0).bytes;
}
