/**
 * Writes MQTT data types into a buffer whose exact size was computed first.
 *
 * @module
 */

import { varintLength, writeVarint } from "./varint.ts";
import { writeUtf8 } from "./utf8.ts";

/** A cursor over a preallocated buffer. */
export class Writer {
  readonly bytes: Uint8Array;
  pos: number;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.pos = 0;
  }

  u8(value: number): void {
    this.bytes[this.pos++] = value;
  }

  u16(value: number): void {
    this.bytes[this.pos++] = value >>> 8;
    this.bytes[this.pos++] = value & 0xff;
  }

  u32(value: number): void {
    const b = this.bytes;
    b[this.pos++] = value >>> 24;
    b[this.pos++] = (value >>> 16) & 0xff;
    b[this.pos++] = (value >>> 8) & 0xff;
    b[this.pos++] = value & 0xff;
  }

  varint(value: number): void {
    this.pos = writeVarint(this.bytes, this.pos, value);
  }

  /** A UTF-8 Encoded String whose byte length is already known. */
  utf8(text: string, byteLength: number): void {
    this.u16(byteLength);
    this.pos = writeUtf8(this.bytes, this.pos, text, byteLength);
  }

  /** Binary Data with its 2-byte length. */
  binary(data: Uint8Array): void {
    this.u16(data.length);
    this.bytes.set(data, this.pos);
    this.pos += data.length;
  }

  /** Raw bytes, no length prefix. */
  raw(data: Uint8Array): void {
    this.bytes.set(data, this.pos);
    this.pos += data.length;
  }
}

/** Allocates a whole packet (fixed header included) and writes the fixed header; the body follows. */
export function startPacket(header: number, remainingLength: number): Writer {
  const writer = new Writer(1 + varintLength(remainingLength) + remainingLength);
  writer.u8(header);
  writer.varint(remainingLength);
  return writer;
}
