/**
 * PINGREQ (section 3.12): no variable header, no payload.
 *
 * @module
 */

import type { Reader } from "../codec/reader.ts";
import { startPacket } from "../codec/writer.ts";
import { PACKET_TYPE } from "./packet_type.ts";

/** A PINGREQ packet. */
export interface PingreqPacket {
  /** The control packet type (12). */
  readonly type: typeof PACKET_TYPE.PINGREQ;
}

/** The one PINGREQ value. */
export const PINGREQ: PingreqPacket = Object.freeze({ type: PACKET_TYPE.PINGREQ });

/** Decodes a PINGREQ body (it must be empty). */
export function decodePingreq(reader: Reader): PingreqPacket {
  reader.expectEnd();
  return PINGREQ;
}

/** Encodes a PINGREQ packet. */
export function encodePingreq(): Uint8Array {
  return startPacket(PACKET_TYPE.PINGREQ << 4, 0).bytes;
}
