/**
 * Variable Byte Integer (MQTT 5.0 section 1.5.5): 1 to 4 bytes, 7 bits each, low bits first.
 *
 * @module
 */

/** The largest value a Variable Byte Integer can hold (268,435,455). */
export const VARINT_MAX = 268_435_455;

/** How many bytes `value` takes as a Variable Byte Integer. */
export function varintLength(value: number): number {
  if (value < 128) return 1;
  if (value < 16_384) return 2;
  if (value < 2_097_152) return 3;
  if (value <= VARINT_MAX) return 4;
  throw new RangeError(`Variable Byte Integer out of range: ${value}`);
}

/** Writes `value` at `offset`; returns the offset after it. */
export function writeVarint(target: Uint8Array, offset: number, value: number): number {
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value > 0) byte |= 0x80;
    target[offset++] = byte;
  } while (value > 0);
  return offset;
}
