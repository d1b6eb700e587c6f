/**
 * The wire of a peer link (`peer_link.ts`): length-prefixed frames and the handshake that authenticates both
 * ends with the cluster secret.
 *
 * Frame: u32 length (big endian, of what follows), u8 type, body. Handshake, the connecting node C to the
 * accepting node A:
 *
 * 1. C → A `HELLO`: u8 version, UTF-8 C's incarnation, UTF-8 A's incarnation (as C believes), 16 random bytes.
 * 2. A → C `CHALLENGE`: 16 random bytes, then HMAC-SHA256(secret, "accept" + HELLO body + A's bytes): A knows
 *    the secret, so C sends nothing to an impostor.
 * 3. C → A `AUTH`: HMAC-SHA256(secret, "connect" + HELLO body + A's bytes): C knows it too; a replay fails,
 *    since A's bytes are new each time.
 * 4. A → C `READY` once A has checked that C's incarnation is alive. Then only `DATA` frames, C → A, each one
 *    forward batch (`_redis_forward_codec.ts`).
 *
 * Frames before `READY` are at most {@linkcode HANDSHAKE_FRAME_MAX} bytes, so an unauthenticated peer makes
 * the node allocate nothing large.
 *
 * @module
 */

import { createHmac, timingSafeEqual } from "node:crypto";
import { Reader } from "../codec/reader.ts";
import { utf8Length } from "../codec/utf8.ts";
import { Writer } from "../codec/writer.ts";
import type { Incarnation } from "./engine.ts";

/** Frame types. */
export const FRAME = { hello: 1, challenge: 2, auth: 3, ready: 4, data: 5 } as const;
/** One of {@linkcode FRAME}. */
export type FrameType = typeof FRAME[keyof typeof FRAME];

const VERSION = 1;
const NONCE = 16;
const MAC = 32;
/** Largest frame before the handshake is done (two incarnations and a nonce fit many times over). */
export const HANDSHAKE_FRAME_MAX = 1024;
/**
 * Largest frame after it, bytes: a batch bigger than this goes through the engine instead. Bounds what a peer
 * (or a bug) can make the receiver buffer.
 */
export const DATA_FRAME_MAX = 16 * 1024 * 1024;

/** Bytes of a frame's header: the length and the type. */
export const FRAME_HEADER = 5;

/** The header and body of one frame, ready to write. */
export function encodeFrame(type: FrameType, body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER + body.length);
  frame.set(body, FRAME_HEADER);
  return sealFrame(frame, type);
}

/**
 * Writes the header into the first {@linkcode FRAME_HEADER} bytes of `frame`, whose body follows them (a body
 * encoded in place, not copied); returns `frame`.
 */
export function sealFrame(frame: Uint8Array, type: FrameType): Uint8Array {
  const length = frame.length - 4;
  frame[0] = length >>> 24;
  frame[1] = (length >>> 16) & 0xff;
  frame[2] = (length >>> 8) & 0xff;
  frame[3] = length & 0xff;
  frame[4] = type;
  return frame;
}

/** What a `HELLO` says. */
export interface Hello {
  readonly from: Incarnation;
  readonly to: Incarnation;
  /** The whole body, as the MACs cover it. */
  readonly body: Uint8Array;
}

/** A `HELLO` body from `from` to `to`. */
export function helloBody(from: Incarnation, to: Incarnation): Uint8Array {
  const w = new Writer(1 + 2 + utf8Length(from) + 2 + utf8Length(to) + NONCE);
  w.u8(VERSION);
  w.utf8(from, utf8Length(from));
  w.utf8(to, utf8Length(to));
  w.raw(crypto.getRandomValues(new Uint8Array(NONCE)));
  return w.bytes;
}

/** Decodes a `HELLO` body; throws on anything malformed. */
export function decodeHello(body: Uint8Array): Hello {
  const r = new Reader(body, "peer HELLO");
  const version = r.u8("version");
  if (version !== VERSION) throw new Error(`peer link version ${version} is not ${VERSION}`);
  const from = r.utf8("from");
  const to = r.utf8("to");
  if (r.end - r.pos !== NONCE) throw new Error("peer HELLO has a bad nonce");
  return { from, to, body };
}

/** The acceptor's `CHALLENGE` body for `hello`. */
export function challengeBody(secret: string, hello: Uint8Array): Uint8Array {
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE));
  const body = new Uint8Array(NONCE + MAC);
  body.set(nonce);
  body.set(mac(secret, "accept", hello, nonce), NONCE);
  return body;
}

/** Checks a `CHALLENGE` body against the `HELLO` sent; answers the `AUTH` body, or undefined if it is forged. */
export function answerChallenge(
  secret: string,
  hello: Uint8Array,
  challenge: Uint8Array,
): Uint8Array | undefined {
  if (challenge.length !== NONCE + MAC) return undefined;
  const nonce = challenge.subarray(0, NONCE);
  if (!timingSafeEqual(challenge.subarray(NONCE), mac(secret, "accept", hello, nonce))) return undefined;
  return mac(secret, "connect", hello, nonce);
}

/** Whether an `AUTH` body proves the connector knows the secret. */
export function authValid(
  secret: string,
  hello: Uint8Array,
  challenge: Uint8Array,
  auth: Uint8Array,
): boolean {
  if (auth.length !== MAC) return false;
  return timingSafeEqual(auth, mac(secret, "connect", hello, challenge.subarray(0, NONCE)));
}

function mac(secret: string, role: string, hello: Uint8Array, nonce: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("sha256", secret).update(role).update(hello).update(nonce).digest());
}

/** Small: a socket that never authenticates costs little (the buffer grows with the frames). */
const INITIAL = 1024;
const SHRINK_ABOVE = 1024 * 1024;

/**
 * Cuts a byte stream into frames. Bytes are copied in (the caller may reuse its read buffer) and each frame's
 * body is a view valid until the next {@linkcode FrameReader.push}.
 */
export class FrameReader {
  #buffer = new Uint8Array(INITIAL);
  #start = 0;
  #end = 0;
  /** Largest frame accepted now; more is an error. */
  limit: number = HANDSHAKE_FRAME_MAX;

  /** Appends `bytes`. */
  push(bytes: Uint8Array): void {
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
      if (this.#buffer.length > SHRINK_ABOVE) this.#buffer = new Uint8Array(INITIAL); // after a large frame
    }
    if (this.#end + bytes.length > this.#buffer.length) {
      const held = this.#end - this.#start;
      if (held + bytes.length > this.#buffer.length) {
        const grown = new Uint8Array(Math.max(2 * this.#buffer.length, held + bytes.length));
        grown.set(this.#buffer.subarray(this.#start, this.#end));
        this.#buffer = grown;
      } else {
        this.#buffer.copyWithin(0, this.#start, this.#end);
      }
      this.#start = 0;
      this.#end = held;
    }
    this.#buffer.set(bytes, this.#end);
    this.#end += bytes.length;
  }

  /** The next whole frame, or undefined until more bytes come; throws when a frame is over the limit or empty. */
  next(): { readonly type: number; readonly body: Uint8Array } | undefined {
    const available = this.#end - this.#start;
    if (available < 4) return undefined;
    const b = this.#buffer;
    const s = this.#start;
    const length = ((b[s]! << 24) >>> 0) + (b[s + 1]! << 16) + (b[s + 2]! << 8) + b[s + 3]!;
    if (length === 0 || length > this.limit) {
      throw new Error(`peer frame of ${length} bytes (limit ${this.limit})`);
    }
    if (available < 4 + length) return undefined;
    this.#start = s + 4 + length;
    return { type: b[s + 4]!, body: b.subarray(s + 5, s + 4 + length) };
  }
}
