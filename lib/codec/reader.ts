/**
 * A bounds-checked reader over one packet's bytes. Every read that would run past the end throws a Malformed
 * Packet error naming the packet and the field, so a decoder never reads garbage.
 *
 * @module
 */

import { malformed } from "../mqtt_error.ts";
import { readUtf8 } from "./utf8.ts";

/**
 * A view of `length` bytes of `bytes` from `start`, as a plain Uint8Array. Cheaper than `subarray()`, which looks
 * up a species constructor on every call.
 */
export function slice(bytes: Uint8Array, start: number, length: number): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset + start, length);
}

/** Reads MQTT data types (section 1.5) from `bytes[pos, end)`. */
export class Reader {
  readonly bytes: Uint8Array;
  /** The packet name, used in error messages ("PUBLISH"). */
  readonly packet: string;
  pos: number;
  end: number;

  constructor(bytes: Uint8Array, packet: string, start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.packet = packet;
    this.pos = start;
    this.end = end;
  }

  /** Bytes not yet read. */
  get remaining(): number {
    return this.end - this.pos;
  }

  #need(count: number, what: string): void {
    if (this.pos + count > this.end) {
      throw malformed(`Cannot decode ${this.packet}: ${what} runs past the end of the packet`);
    }
  }

  /** One byte. */
  u8(what: string): number {
    this.#need(1, what);
    return this.bytes[this.pos++]!;
  }

  /** Two Byte Integer, big-endian. */
  u16(what: string): number {
    this.#need(2, what);
    const b = this.bytes;
    const value = (b[this.pos]! << 8) | b[this.pos + 1]!;
    this.pos += 2;
    return value;
  }

  /** Four Byte Integer, big-endian. */
  u32(what: string): number {
    this.#need(4, what);
    const b = this.bytes;
    const p = this.pos;
    const value = ((b[p]! << 24) >>> 0) + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
    this.pos += 4;
    return value;
  }

  /**
   * Variable Byte Integer; more than 4 bytes, or more bytes than the value needs, is malformed
   * [MQTT-1.5.5-1 (5.0)].
   */
  varint(what: string): number {
    let value = 0;
    let multiplier = 1;
    for (let i = 0; i < 4; i++) {
      const byte = this.u8(what);
      value += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) {
          throw malformed(
            `Cannot decode ${this.packet}: ${what} does not use the fewest bytes possible [MQTT-1.5.5-1 (5.0)]`,
          );
        }
        return value;
      }
      multiplier *= 128;
    }
    throw malformed(
      `Cannot decode ${this.packet}: ${what} is a Variable Byte Integer longer than 4 bytes [MQTT-1.5.5-1 (5.0)]`,
    );
  }

  /** UTF-8 Encoded String: 2-byte length, then well-formed UTF-8 without U+0000. */
  utf8(what: string): string {
    const length = this.u16(what);
    this.#need(length, what);
    const start = this.pos;
    this.pos += length;
    try {
      return readUtf8(this.bytes, start, this.pos, what);
    } catch (error) {
      // The packet name is added here, on failure only: building it for every string cost a quarter of decoding.
      throw malformed(`Cannot decode ${this.packet}: ${(error as Error).message}`);
    }
  }

  /** Binary Data: 2-byte length then bytes; returns a view (no copy). */
  binary(what: string): Uint8Array {
    const length = this.u16(what);
    this.#need(length, what);
    const view = slice(this.bytes, this.pos, length);
    this.pos += length;
    return view;
  }

  /** Everything left, as a view. */
  rest(): Uint8Array {
    const view = slice(this.bytes, this.pos, this.end - this.pos);
    this.pos = this.end;
    return view;
  }

  /** Throws unless every byte was consumed (no bytes may follow the last field). */
  expectEnd(): void {
    if (this.pos !== this.end) {
      throw malformed(
        `Cannot decode ${this.packet}: ${this.end - this.pos} unexpected byte(s) after the last field`,
      );
    }
  }
}
