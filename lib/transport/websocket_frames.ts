/**
 * The server end of a WebSocket (RFC 6455) framed by us over a TCP or TLS stream, as a {@linkcode ByteStream}.
 * `Deno.upgradeWebSocket` buffers a whole message (up to 64 MiB) before anyone can look at it, so an
 * unauthenticated peer could make the broker hold that much per socket; here a frame's payload flows straight
 * into the reader's buffer as it arrives, a frame larger than `maxFrameBytes` is refused from its header, and a
 * socket costs a few dozen bytes beyond the caller's read buffer.
 *
 * Binary messages are a byte stream, fragmented or not [MQTT-6.0.0-2 (5.0)]; a text frame closes the
 * connection [MQTT-6.0.0-1 (5.0)]; an unmasked client frame is refused (RFC 6455 section 5.1).
 *
 * @module
 */

import { type ByteStream, writeAll } from "./transport.ts";
import { WS_CLOSE } from "./websocket.ts";

/** Options for {@linkcode WebSocketServerStream}. */
export interface WebSocketServerStreamOptions {
  /**
   * The largest frame payload accepted; a larger one closes the connection with 1009 from its header, before
   * any of it is read. The listeners pass the broker's maximum packet size.
   *
   * @default {268435460}
   */
  maxFrameBytes?: number;
  /** Bytes that arrived after the HTTP upgrade request, read before the stream. */
  leftover?: Uint8Array;
  /** Told why we closed the connection on a peer's protocol error (for the log). */
  onRefuse?: (code: number, reason: string) => void;
}

/** Opcodes (RFC 6455 section 5.2). */
const OP = { Continuation: 0, Text: 1, Binary: 2, Close: 8, Ping: 9, Pong: 10 } as const;
/** After we send a close frame, the TCP connection is closed at the latest this much later. */
const CLOSE_GRACE_MS = 1000;

type Phase = "header" | "data" | "control";

/**
 * A WebSocket connection after its upgrade, server side: reads return the payload of binary frames, writes send
 * one unmasked binary frame each; pings are answered and the close handshake is completed.
 */
export class WebSocketServerStream implements ByteStream {
  readonly #conn: ByteStream;
  readonly #maxFrame: number;
  readonly #onRefuse: ((code: number, reason: string) => void) | undefined;
  #leftover: Uint8Array | undefined;
  #open = true;
  #phase: Phase = "header";
  /** The frame header being read (at most 14 bytes). */
  readonly #head = new Uint8Array(14);
  #headLength = 0;
  readonly #mask = new Uint8Array(4);
  #maskAt = 0;
  #payloadLeft = 0;
  /** Whether a fragmented binary message is in progress (a frame with FIN 0 came). */
  #fragmented = false;
  #controlOpcode = 0;
  #control: Uint8Array = EMPTY;
  #controlLength = 0;
  /** Writes in order: frames we send ourselves (pong, close) must not cut into another write. */
  #tail: Promise<void> = Promise.resolve();
  #pongPending = false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;

  /** Frames `conn` (after the upgrade response was written). */
  constructor(conn: ByteStream, options: WebSocketServerStreamOptions = {}) {
    this.#conn = conn;
    this.#maxFrame = options.maxFrameBytes ?? 268_435_460;
    this.#onRefuse = options.onRefuse;
    this.#leftover = options.leftover !== undefined && options.leftover.length > 0
      ? options.leftover
      : undefined;
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#open) {
      let n: number;
      const leftover = this.#leftover;
      if (leftover !== undefined) {
        n = Math.min(leftover.length, buffer.length);
        buffer.set(leftover.subarray(0, n));
        this.#leftover = n < leftover.length ? leftover.subarray(n) : undefined;
      } else {
        let got: number | null;
        try {
          got = await this.#conn.read(buffer);
        } catch {
          got = null; // a reset is the end of the stream
        }
        if (got === null) {
          this.#finish();
          return null;
        }
        n = got;
      }
      const out = this.#parse(buffer, n);
      if (out > 0) return out;
    }
    return null;
  }

  async write(data: Uint8Array): Promise<number> {
    if (!this.#open) throw new Deno.errors.BrokenPipe("WebSocket closed");
    await this.#send(frame(OP.Binary, data));
    return data.length;
  }

  /** Sends a close frame (1000) and closes the connection. */
  close(): void {
    this.#closeWith(WS_CLOSE.Normal, "");
  }

  /** Unmasks the payload bytes among `buffer[0, n)` to the front of `buffer`, handling headers and control frames. */
  #parse(buffer: Uint8Array, n: number): number {
    let i = 0;
    let out = 0;
    while (i < n && this.#open) {
      if (this.#phase === "data") {
        const take = Math.min(this.#payloadLeft, n - i);
        const mask = this.#mask;
        let at = this.#maskAt;
        for (let k = 0; k < take; k++) {
          buffer[out + k] = buffer[i + k]! ^ mask[at]!;
          at = (at + 1) & 3;
        }
        this.#maskAt = at;
        out += take;
        i += take;
        this.#payloadLeft -= take;
        if (this.#payloadLeft === 0) this.#phase = "header";
      } else if (this.#phase === "control") {
        const take = Math.min(this.#payloadLeft, n - i);
        for (let k = 0; k < take; k++) {
          this.#control[this.#controlLength++] = buffer[i + k]! ^ this.#mask[this.#maskAt]!;
          this.#maskAt = (this.#maskAt + 1) & 3;
        }
        i += take;
        this.#payloadLeft -= take;
        if (this.#payloadLeft === 0) this.#onControl();
      } else {
        this.#head[this.#headLength++] = buffer[i++]!;
        if (this.#headLength >= 2 && this.#headLength === headerLength(this.#head)) this.#onHeader();
      }
    }
    return out;
  }

  #onHeader(): void {
    const head = this.#head;
    this.#headLength = 0;
    const fin = (head[0]! & 0x80) !== 0;
    const opcode = head[0]! & 0x0f;
    if ((head[0]! & 0x70) !== 0) return this.#refuse(WS_CLOSE.ProtocolError, "reserved bits set");
    if ((head[1]! & 0x80) === 0) {
      return this.#refuse(WS_CLOSE.ProtocolError, "client frames must be masked (RFC 6455 section 5.1)");
    }
    const length7 = head[1]! & 0x7f;
    let length = length7;
    let at = 2;
    if (length7 === 126) {
      length = (head[2]! << 8) | head[3]!;
      at = 4;
    } else if (length7 === 127) {
      const view = new DataView(head.buffer, head.byteOffset);
      length = view.getUint32(2) * 2 ** 32 + view.getUint32(6);
      at = 10;
    }
    this.#mask.set(head.subarray(at, at + 4));
    this.#maskAt = 0;
    if (opcode >= OP.Close) {
      if (opcode > OP.Pong) return this.#refuse(WS_CLOSE.ProtocolError, `unknown opcode ${opcode}`);
      if (!fin || length > 125) {
        return this.#refuse(WS_CLOSE.ProtocolError, "a control frame is fragmented or over 125 bytes");
      }
      this.#controlOpcode = opcode;
      this.#control = length === 0 ? EMPTY : new Uint8Array(length);
      this.#controlLength = 0;
      this.#payloadLeft = length;
      if (length === 0) this.#onControl();
      else this.#phase = "control";
      return;
    }
    if (opcode === OP.Text) {
      return this.#refuse(WS_CLOSE.UnsupportedData, "MQTT needs binary messages [MQTT-6.0.0-1 (5.0)]");
    }
    if (opcode === OP.Binary ? this.#fragmented : opcode !== OP.Continuation || !this.#fragmented) {
      return this.#refuse(
        WS_CLOSE.ProtocolError,
        opcode === OP.Binary || opcode === OP.Continuation
          ? "fragments out of order (RFC 6455 section 5.4)"
          : `unknown opcode ${opcode}`,
      );
    }
    if (length > this.#maxFrame) {
      return this.#refuse(
        WS_CLOSE.MessageTooBig,
        `a frame of ${length} bytes is larger than the maximum packet size ${this.#maxFrame}`,
      );
    }
    this.#fragmented = !fin;
    this.#payloadLeft = length;
    this.#phase = length === 0 ? "header" : "data";
  }

  #onControl(): void {
    this.#phase = "header";
    const payload = this.#control;
    this.#control = EMPTY;
    switch (this.#controlOpcode) {
      case OP.Ping:
        // One pong at a time: a peer that pings and never reads must not queue pongs without bound.
        if (this.#pongPending) return;
        this.#pongPending = true;
        this.#send(frame(OP.Pong, payload)).then(() => this.#pongPending = false, () => {});
        return;
      case OP.Pong:
        return;
      case OP.Close: {
        if (payload.length === 1) return this.#refuse(WS_CLOSE.ProtocolError, "a close frame of 1 byte");
        // Echo the peer's code, completing the close handshake (RFC 6455 section 5.5.1).
        const code = payload.length >= 2 ? (payload[0]! << 8) | payload[1]! : WS_CLOSE.Normal;
        this.#closeWith(code, "");
      }
    }
  }

  /** Closes on a peer's protocol error, and says why. */
  #refuse(code: number, reason: string): void {
    if (!this.#open) return;
    this.#onRefuse?.(code, reason);
    this.#closeWith(code, reason);
  }

  #closeWith(code: number, reason: string): void {
    if (!this.#open) return;
    this.#open = false;
    this.#leftover = undefined;
    const text = new TextEncoder().encode(reason.slice(0, 120));
    const payload = new Uint8Array(2 + text.length);
    payload[0] = code >> 8;
    payload[1] = code & 0xff;
    payload.set(text, 2);
    // A peer that does not read must not keep the socket open: close after a grace period whatever happens.
    this.#closeTimer = setTimeout(() => this.#finish(), CLOSE_GRACE_MS);
    this.#send(frame(OP.Close, payload)).catch(() => {}).finally(() => this.#finish());
  }

  /** Closes the TCP (or TLS) connection. */
  #finish(): void {
    this.#open = false;
    if (this.#closeTimer !== undefined) {
      clearTimeout(this.#closeTimer);
      this.#closeTimer = undefined;
    }
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  #send(bytes: Uint8Array): Promise<void> {
    const sent = this.#tail.then(() => writeAll(this.#conn, bytes));
    this.#tail = sent.catch(() => {});
    return sent;
  }
}

const EMPTY = new Uint8Array(0);

/** The length of the frame header that starts with `head[0..1]` (the length bytes and a mask included). */
function headerLength(head: Uint8Array): number {
  const length7 = head[1]! & 0x7f;
  const extended = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
  return 2 + extended + ((head[1]! & 0x80) !== 0 ? 4 : 0);
}

/** An unmasked frame with FIN set, as a server sends it. */
function frame(opcode: number, payload: Uint8Array): Uint8Array {
  const length = payload.length;
  const headLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const out = new Uint8Array(headLength + length);
  out[0] = 0x80 | opcode;
  if (length < 126) {
    out[1] = length;
  } else if (length < 65_536) {
    out[1] = 126;
    out[2] = length >> 8;
    out[3] = length & 0xff;
  } else {
    out[1] = 127;
    const view = new DataView(out.buffer);
    view.setUint32(2, Math.floor(length / 2 ** 32));
    view.setUint32(6, length >>> 0);
  }
  out.set(payload, headLength);
  return out;
}
