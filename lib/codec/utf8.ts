/**
 * UTF-8 strings as MQTT carries them (5.0 section 1.5.4): well-formed, no U+0000 [MQTT-1.5.4-1 (5.0)]
 * [MQTT-1.5.4-2 (5.0)], a BOM kept, not skipped [MQTT-1.5.4-3 (5.0)].
 *
 * @module
 */

import { malformed } from "../mqtt_error.ts";

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();
/** Strings up to this many bytes take the ASCII fast path of {@linkcode readUtf8}. */
const SCRATCH_MAX = 256;
const scratch: number[] = [];

/** The number of bytes `text` takes in UTF-8 (lone surrogates count as U+FFFD, as TextEncoder writes them). */
export function utf8Length(text: string): number {
  const n = text.length;
  let bytes = n;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      bytes += 1;
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2; // a pair: 2 UTF-16 units, 4 bytes
        i++;
      } else {
        bytes += 2;
      }
    } else {
      bytes += 2;
    }
  }
  return bytes;
}

/** Writes `text` as UTF-8 at `offset`, which must have room for `byteLength` bytes; returns the offset after it. */
export function writeUtf8(target: Uint8Array, offset: number, text: string, byteLength: number): number {
  if (byteLength === text.length) {
    for (let i = 0; i < byteLength; i++) target[offset + i] = text.charCodeAt(i);
    return offset + byteLength;
  }
  encoder.encodeInto(text, target.subarray(offset, offset + byteLength));
  return offset + byteLength;
}

/**
 * Decodes `bytes[start, end)` as an MQTT UTF-8 string; throws a Malformed Packet error for ill-formed UTF-8 or
 * U+0000. `what` names the field for the message.
 */
export function readUtf8(bytes: Uint8Array, start: number, end: number, what: string): string {
  const length = end - start;
  if (length <= SCRATCH_MAX) {
    // Fast path for short ASCII (most topics and ids): one pass that checks and collects the codes, then one
    // flat string. About twice as fast as concatenating characters, five times TextDecoder.
    const codes = scratch;
    codes.length = length;
    let i = 0;
    for (; i < length; i++) {
      const b = bytes[start + i]!;
      if (b === 0 || b >= 0x80) break;
      codes[i] = b;
    }
    if (i === length) return length === 0 ? "" : String.fromCharCode.apply(null, codes);
  }
  for (let i = start; i < end; i++) {
    if (bytes[i] === 0) throw malformed(`${what} contains U+0000 [MQTT-1.5.4-2 (5.0)]`);
  }
  try {
    return decoder.decode(bytes.subarray(start, end));
  } catch {
    throw malformed(`${what} is not well-formed UTF-8 [MQTT-1.5.4-1 (5.0)]`);
  }
}

/** Encodes a string to UTF-8 bytes (for payloads built from text). */
export function utf8Encode(text: string): Uint8Array {
  return encoder.encode(text);
}

/** True when `bytes` is well-formed UTF-8 (used for Payload Format Indicator checks). */
export function isWellFormedUtf8(bytes: Uint8Array): boolean {
  try {
    decoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}
