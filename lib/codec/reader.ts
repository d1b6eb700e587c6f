/**
 * A bounds-checked reader over one packet's bytes. Every read that would run past the end throws a Malformed
 * Packet error naming the packet and the field, so a decoder never reads garbage.
 *
 * @module
 */

import { malformed } from "../mqtt_error.ts";
import { readUtf8 } from "./utf8.ts";

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

  /** Variable Byte Integer; more than 4 bytes is malformed [MQTT-1.5.5-1]. */
  varint(what: string): number {
    let value = 0;
    let multiplier = 1;
    for (let i = 0; i < 4; i++) {
      const byte = this.u8(what);
      value += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) return value;
      multiplier *= 128;
    }
    throw malformed(
      `Cannot decode ${this.packet}: ${what} is a Variable Byte Integer longer than 4 bytes [MQTT-1.5.5-1]`,
    );
  }

  /** UTF-8 Encoded String: 2-byte length, then well-formed UTF-8 without U+0000. */
  utf8(what: string): string {
    const length = this.u16(what);
    this.#need(length, what);
    const start = this.pos;
    this.pos += length;
    return readUtf8(this.bytes, start, this.pos, `Cannot decode ${this.packet}: ${what}`);
  }

  /** Binary Data: 2-byte length then bytes; returns a view (no copy). */
  binary(what: string): Uint8Array {
    const length = this.u16(what);
    this.#need(length, what);
    const view = this.bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    return view;
  }

  /** Everything left, as a view. */
  rest(): Uint8Array {
    const view = this.bytes.subarray(this.pos, this.end);
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
