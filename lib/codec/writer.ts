/**
 * Writes MQTT data types into a buffer whose exact size was computed first.
 *
 * @module
 */

import { varintLength, writeVarint } from "./varint.ts";
import { writeUtf8 } from "./utf8.ts";

/**
 * Packets up to this many bytes are carved out of a shared slab instead of getting their own ArrayBuffer: a
 * backing store per packet costs more than encoding it (bench/codec_bench.ts measures encode).
 */
const POOLED_MAX = 1024;
/** The slab size; one slab holds about 180 small PUBLISH packets. */
const SLAB_SIZE = 16 * 1024;
let slab = new ArrayBuffer(SLAB_SIZE);
let slabUsed = 0;

/**
 * A zero-filled `Uint8Array` of `size` bytes for an encoded packet. Below {@linkcode POOLED_MAX} it is a view into
 * a shared slab (as Node's `Buffer.allocUnsafe` pool, but zeroed): use the view, never its `.buffer`.
 */
export function allocate(size: number): Uint8Array {
  if (size > POOLED_MAX) return new Uint8Array(size);
  if (slabUsed + size > SLAB_SIZE) {
    slab = new ArrayBuffer(SLAB_SIZE);
    slabUsed = 0;
  }
  const bytes = new Uint8Array(slab, slabUsed, size);
  slabUsed += size;
  return bytes;
}

/** A cursor over a preallocated buffer. */
export class Writer {
  readonly bytes: Uint8Array;
  pos: number;

  /** A writer over `bytes`, by default a new buffer of `size` bytes (not pooled: the caller may keep it). */
  constructor(size: number, bytes: Uint8Array = new Uint8Array(size)) {
    this.bytes = bytes;
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

/**
 * Allocates a whole packet (fixed header included, from the shared slab when small, see {@linkcode allocate})
 * and writes the fixed header; the body follows.
 */
export function startPacket(header: number, remainingLength: number): Writer {
  const size = 1 + varintLength(remainingLength) + remainingLength;
  const writer = new Writer(size, allocate(size));
  writer.u8(header);
  writer.varint(remainingLength);
  return writer;
}
