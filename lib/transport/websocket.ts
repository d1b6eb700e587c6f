/**
 * MQTT over WebSocket (MQTT 5.0 section 6): a {@linkcode ByteStream} over a WebSocket. Binary messages are a
 * byte stream, so one MQTT packet may span several messages and one message may carry several packets
 * [MQTT-6.0.0-2 (5.0)]; a text message closes the connection [MQTT-6.0.0-1 (5.0)]. The broker's listeners frame
 * WebSocket themselves (`websocket_frames.ts`); this adapter serves the client and embedders.
 *
 * @module
 */

import type { ByteStream } from "./transport.ts";

/** The WebSocket subprotocols a broker accepts, preferred first: `mqtt`, and `mqttv3.1` for MQTT 3.1 clients. */
export const MQTT_SUBPROTOCOLS = ["mqtt", "mqttv3.1"] as const;

/** A WebSocket subprotocol for MQTT. */
export type MqttSubprotocol = (typeof MQTT_SUBPROTOCOLS)[number];

/** WebSocket close codes we send (RFC 6455 section 7.4.1). */
export const WS_CLOSE = {
  Normal: 1000,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  MessageTooBig: 1009,
} as const;

/** Options for {@linkcode WebSocketByteStream}. */
export interface WebSocketByteStreamOptions {
  /**
   * Received bytes not yet read past which the connection is closed with 1009: the browser WebSocket API has
   * no way to pause a sender, so this bounds what a peer can make us hold.
   *
   * @default {4194304}
   */
  maxUnreadBytes?: number;
  /**
   * Bytes the socket may hold unsent before `write()` waits for it to drain, so a slow consumer shows up as
   * pending output (and QoS 0 drops) in the broker rather than as memory here.
   *
   * @default {1048576}
   */
  highWaterMark?: number;
}

/** How often `write()` looks at `bufferedAmount` while waiting for the socket to drain (there is no event). */
const DRAIN_POLL_MS = 5;

type StreamState = "connecting" | "open" | "closed";

/**
 * A byte stream over one WebSocket, in either role (a socket from `Deno.upgradeWebSocket`, or a client
 * `new WebSocket(url, "mqtt")`). Create it before the socket opens: reads wait for data, writes for the open.
 *
 * @example
 * ```ts ignore
 * import { WebSocketByteStream } from "./websocket.ts";
 * Deno.serve((request) => {
 *   const { socket, response } = Deno.upgradeWebSocket(request, { protocol: "mqtt" });
 *   const stream = new WebSocketByteStream(socket);
 *   // broker.handle(stream, { remoteAddress: "…", allowAnonymous: true });
 *   return response;
 * });
 * ```
 */
export class WebSocketByteStream implements ByteStream {
  readonly #socket: WebSocket;
  readonly #maxUnread: number;
  readonly #highWaterMark: number;
  #state: StreamState;
  #chunks: Uint8Array[] = [];
  #unread = 0;
  #reader: { resolve: (n: number | null) => void; buffer: Uint8Array } | undefined;
  #opened = Promise.withResolvers<void>();

  /** Wraps `socket`, which must not be read by anyone else (this sets its `binaryType`). */
  constructor(socket: WebSocket, options: WebSocketByteStreamOptions = {}) {
    this.#socket = socket;
    this.#maxUnread = options.maxUnreadBytes ?? 4 * 1024 * 1024;
    this.#highWaterMark = options.highWaterMark ?? 1024 * 1024;
    socket.binaryType = "arraybuffer";
    this.#state = socket.readyState === WebSocket.OPEN
      ? "open"
      : socket.readyState === WebSocket.CONNECTING
      ? "connecting"
      : "closed";
    if (this.#state === "open") this.#opened.resolve();
    // A write waiting for the open must not be left hanging (nor reject unobserved) when it never comes.
    this.#opened.promise.catch(() => {});
    socket.addEventListener("open", () => {
      if (this.#state !== "connecting") return;
      this.#state = "open";
      this.#opened.resolve();
    });
    socket.addEventListener("message", (event) => this.#receive(event.data));
    socket.addEventListener("close", () => this.#end());
    socket.addEventListener("error", () => this.#end());
  }

  /** The subprotocol the socket agreed on ("" before it opened). */
  get protocol(): string {
    return this.#socket.protocol;
  }

  read(buffer: Uint8Array): Promise<number | null> {
    if (this.#chunks.length > 0) return Promise.resolve(this.#take(buffer));
    if (this.#state === "closed") return Promise.resolve(null);
    if (this.#reader !== undefined) {
      return Promise.reject(new Error("WebSocketByteStream: concurrent read()"));
    }
    return new Promise((resolve) => this.#reader = { resolve, buffer });
  }

  async write(data: Uint8Array): Promise<number> {
    if (this.#state === "connecting") await this.#opened.promise;
    if (this.#state === "closed") throw new Deno.errors.BrokenPipe("WebSocket closed");
    this.#socket.send(data);
    while (this.#socket.bufferedAmount > this.#highWaterMark && this.#state === "open") {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
    return data.length;
  }

  close(): void {
    this.#closeWith(WS_CLOSE.Normal, "");
  }

  /** We close: what the peer sent and we did not read yet is dropped. */
  #closeWith(code: number, reason: string): void {
    this.#chunks = [];
    this.#unread = 0;
    if (this.#state !== "closed") {
      try {
        this.#socket.close(code, reason);
      } catch {
        // the socket is already closing
      }
    }
    this.#end();
  }

  #receive(data: unknown): void {
    if (this.#state === "closed") return;
    if (!(data instanceof ArrayBuffer)) {
      this.#closeWith(WS_CLOSE.UnsupportedData, "MQTT needs binary messages [MQTT-6.0.0-1 (5.0)]");
      return;
    }
    if (data.byteLength === 0) return;
    if (this.#unread + data.byteLength > this.#maxUnread) {
      this.#closeWith(WS_CLOSE.MessageTooBig, "too much unread data");
      return;
    }
    const chunk = new Uint8Array(data);
    const reader = this.#reader;
    if (reader !== undefined) {
      this.#reader = undefined;
      const n = Math.min(chunk.length, reader.buffer.length);
      reader.buffer.set(chunk.subarray(0, n));
      if (n < chunk.length) this.#queue(chunk.subarray(n));
      reader.resolve(n);
    } else {
      this.#queue(chunk);
    }
  }

  #queue(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#unread += chunk.length;
  }

  #take(buffer: Uint8Array): number {
    let n = 0;
    while (this.#chunks.length > 0 && n < buffer.length) {
      const chunk = this.#chunks[0]!;
      const count = Math.min(chunk.length, buffer.length - n);
      buffer.set(chunk.subarray(0, count), n);
      n += count;
      if (count === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(count);
    }
    this.#unread -= n;
    return n;
  }

  /** The peer or we closed: pending and later reads see the end of the stream once queued data is read. */
  #end(): void {
    if (this.#state === "closed") return;
    const wasConnecting = this.#state === "connecting";
    this.#state = "closed";
    if (wasConnecting) this.#opened.reject(new Deno.errors.BrokenPipe("WebSocket closed before it opened"));
    const reader = this.#reader;
    this.#reader = undefined;
    reader?.resolve(null);
  }
}
