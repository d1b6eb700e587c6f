/**
 * The streaming framer: turns arbitrary chunks of a byte stream into whole MQTT frames. It refuses a Remaining
 * Length above the maximum packet size as soon as the fixed header is read, before buffering the body, and a
 * Remaining Length longer than 4 bytes or not in its shortest form [MQTT-1.5.5-1 (5.0)].
 *
 * @module
 */

import { malformed, MqttError } from "../mqtt_error.ts";
import { VARINT_MAX } from "./varint.ts";
import { slice } from "./reader.ts";

/** One whole frame: the first byte and the body (a view, valid until the next {@linkcode Framer.push}). */
export interface Frame {
  /** The first byte: packet type and flags. */
  readonly header: number;
  /** The Remaining Length bytes. */
  readonly body: Uint8Array;
}

/** Options for {@linkcode Framer}. */
export interface FramerOptions {
  /**
   * The largest whole packet accepted, fixed header included (v5 Maximum Packet Size).
   * @default {268435460}
   */
  maxPacketSize?: number;
}

/**
 * Splits a byte stream into frames. Push a chunk, then call {@linkcode Framer.next} until it returns undefined;
 * frames are views into the chunk where possible (no copy) and stay valid until the next push.
 *
 * @example
 * ```ts
 * import { Framer } from "./framer.ts";
 * const framer = new Framer();
 * framer.push(Uint8Array.of(0xc0, 0x00, 0xd0)); // PINGREQ and the first byte of a PINGRESP
 * console.assert(framer.next()?.header === 0xc0);
 * console.assert(framer.next() === undefined);
 * ```
 */
export class Framer {
  /** See {@linkcode FramerOptions.maxPacketSize}. */
  maxPacketSize: number;
  /** The bytes being framed: the caller's chunk, or our carry buffer. */
  #chunk: Uint8Array = EMPTY;
  #pos = 0;
  #chunkIsCarry = false;
  /** An owned buffer holding the start of an incomplete frame at [0, #carryLength). */
  #carry: Uint8Array | undefined;
  #carryLength = 0;
  /** Total length of the incomplete frame when its fixed header has been read, else 0. */
  #expected = 0;

  /** A framer for one byte stream. */
  constructor(options: FramerOptions = {}) {
    this.maxPacketSize = options.maxPacketSize ?? VARINT_MAX + 5;
  }

  /** Bytes received and not yet returned as a frame. */
  get buffered(): number {
    return this.#carryLength + this.#chunk.length - this.#pos;
  }

  /**
   * Adds the next chunk of the stream. The framer does not keep `chunk` past the frames it returns, so the caller
   * may reuse the chunk's memory once it has drained {@linkcode Framer.next}.
   */
  push(chunk: Uint8Array): void {
    if (this.#pos < this.#chunk.length) this.#stash();
    if (this.#carryLength === 0) {
      this.#chunk = chunk;
      this.#pos = 0;
      this.#chunkIsCarry = false;
      return;
    }
    const needed = this.#carryLength + chunk.length;
    let carry = this.#carry!;
    if (needed > carry.length) {
      // Grow with the bytes that arrived, not with the length the header claims: a 5-byte header must not make
      // us allocate 256 MB. Doubling keeps a large frame to a logarithmic number of copies.
      const cap = this.#expected > 0 ? this.#expected : Infinity;
      const grown = new Uint8Array(Math.max(needed, Math.min(carry.length * 2, cap)));
      grown.set(carry.subarray(0, this.#carryLength));
      carry = this.#carry = grown;
    }
    carry.set(chunk, this.#carryLength);
    this.#chunk = carry.subarray(0, needed);
    this.#pos = 0;
    this.#chunkIsCarry = true;
    this.#carryLength = 0;
  }

  /** Moves the unframed rest of the current chunk into an owned buffer, never over bytes of returned frames. */
  #stash(): void {
    const rest = this.#chunk.subarray(this.#pos);
    if (this.#chunkIsCarry && this.#pos === 0) {
      this.#carryLength = rest.length; // still accumulating one frame: the carry already holds it
    } else {
      // Sized by the bytes held, not by the Remaining Length claimed: a socket that sent a 4-byte header and
      // stopped must not cost 64 KiB (issue 15 item 9); push() grows the buffer as the rest arrives.
      const capacity = Math.max(rest.length, CARRY_MIN);
      let target = this.#carry;
      if (this.#chunkIsCarry || target === undefined || target.length < capacity) {
        target = new Uint8Array(capacity);
      }
      target.set(rest);
      this.#carry = target;
      this.#carryLength = rest.length;
    }
    this.#chunk = EMPTY;
    this.#pos = 0;
    this.#chunkIsCarry = false;
  }

  /**
   * The next whole frame, or undefined when more bytes are needed.
   * @throws {MqttError} 0x81 for a Remaining Length over 4 bytes or not in its shortest form, 0x95 for a packet
   * over the maximum size.
   */
  next(): Frame | undefined {
    const chunk = this.#chunk;
    const start = this.#pos;
    if (start >= chunk.length) {
      if (this.#chunkIsCarry && this.#carry !== undefined && this.#carry.length > CARRY_KEEP) {
        this.#carry = undefined;
      }
      // Let go of the caller's chunk: an idle connection would otherwise keep a view of its read buffer.
      this.#chunk = EMPTY;
      this.#pos = 0;
      this.#chunkIsCarry = false;
      return undefined;
    }
    let length = 0;
    let multiplier = 1;
    let i = start + 1;
    this.#expected = 0;
    for (;;) {
      if (i >= chunk.length) {
        this.#stash();
        return undefined;
      }
      const byte = chunk[i++]!;
      length += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && multiplier > 1) throw nonMinimal();
        break;
      }
      if (i - start - 1 >= 4) {
        throw malformed("Cannot decode packet: Remaining Length is longer than 4 bytes [MQTT-1.5.5-1 (5.0)]");
      }
      multiplier *= 128;
    }
    const headerLength = i - start;
    if (headerLength + length > this.maxPacketSize) {
      throw new MqttError(
        PACKET_TOO_LARGE,
        `Packet of ${
          headerLength + length
        } bytes is larger than the maximum packet size ${this.maxPacketSize}`,
      );
    }
    if (i + length > chunk.length) {
      this.#expected = headerLength + length;
      this.#stash();
      return undefined;
    }
    this.#pos = i + length;
    return { header: chunk[start]!, body: slice(chunk, i, length) };
  }
}

function nonMinimal(): MqttError {
  return malformed(
    "Cannot decode packet: Remaining Length does not use the fewest bytes possible [MQTT-1.5.5-1 (5.0)]",
  );
}

const EMPTY = new Uint8Array(0);
/** A carry buffer larger than this is dropped once drained, so an idle connection does not pin it. */
const CARRY_KEEP = 65_536;
/** The smallest carry buffer: room for a fixed header and a short packet. */
const CARRY_MIN = 256;
/** Packet Too Large (v5 reason code 0x95); the codec names it here rather than import the packet layer. */
const PACKET_TOO_LARGE = 0x95;
