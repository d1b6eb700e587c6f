/**
 * One network connection of the client: reads and frames bytes, decodes packets and hands each to one
 * dispatcher, and writes through a single {@linkcode WriteQueue}. It knows nothing of sessions; the
 * {@linkcode MqttClient} owns those across connections.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import { MqttError } from "../mqtt_error.ts";
import { Framer } from "../codec/framer.ts";
import { decodePacket } from "../packet/decode.ts";
import { encode } from "../packet/encode.ts";
import type { Packet } from "../packet/packet.ts";
import { PACKET_TYPE, type ProtocolVersion } from "../packet/packet_type.ts";
import type { ByteStream } from "../transport/transport.ts";
import { foreignPeerError } from "./foreign_peer.ts";
import { WriteQueue } from "./write_queue.ts";

/** Options for {@linkcode Connection}. */
export interface ConnectionOptions {
  /** The protocol version of this connection (the one CONNECT announces). */
  version: ProtocolVersion;
  /**
   * The largest packet accepted from the server (the Maximum Packet Size the client announced).
   * @default {268435460}
   */
  maxPacketSize?: number;
  /**
   * The server's address for errors, e.g. `"127.0.0.1:1883"`.
   * @default {"The server"}
   */
  peer?: string;
  /** Handles each decoded packet, in order; a throw ends the connection (a v5 MqttError with a DISCONNECT). */
  onPacket: (packet: Packet) => void;
  /** Hears every packet handed to {@linkcode Connection.send}, before it is encoded. */
  onSend?: (packet: Packet) => void;
}

const INITIAL_BUFFER = 4096;
const MAX_BUFFER = 65_536;

/** Why a connection ended: `undefined` for an orderly close by us or end of stream, else the error. */
export type ConnectionEnd = Error | undefined;

/**
 * A framed MQTT connection over a {@linkcode ByteStream}. Reading starts at construction; {@linkcode ended}
 * settles once the read loop stopped and the stream is closed.
 */
export class Connection {
  #stream: ByteStream;
  #options: ConnectionOptions;
  #writer: WriteQueue;
  #framer: Framer;
  #state: { kind: "open" } | { kind: "closing"; error: ConnectionEnd } | { kind: "closed" } = {
    kind: "open",
  };
  /** Resolves with why the connection ended; never rejects. */
  readonly ended: Promise<ConnectionEnd>;

  constructor(stream: ByteStream, options: ConnectionOptions) {
    this.#stream = stream;
    this.#options = options;
    this.#framer = new Framer(
      options.maxPacketSize === undefined ? {} : { maxPacketSize: options.maxPacketSize },
    );
    this.#writer = new WriteQueue(stream, (error) => this.fail(error));
    this.ended = this.#readLoop();
  }

  /** The protocol version. */
  get version(): ProtocolVersion {
    return this.#options.version;
  }

  /** Whether packets can still be sent. */
  get open(): boolean {
    return this.#state.kind === "open";
  }

  /** Encodes and queues `packet`. Ignored once the connection is closing. */
  send(packet: Packet): void {
    if (this.#state.kind !== "open") return;
    this.#options.onSend?.(packet);
    this.#writer.enqueue(encode(packet, this.#options.version));
  }

  /** Queues bytes already encoded for `packet` (which the observer sees). */
  sendEncoded(packet: Packet, bytes: Uint8Array): void {
    if (this.#state.kind !== "open") return;
    this.#options.onSend?.(packet);
    this.#writer.enqueue(bytes);
  }

  /** Resolves true once everything sent so far was written. */
  flushed(): Promise<boolean> {
    return this.#writer.flushed();
  }

  /**
   * Ends the connection because of `error`: for a v5 {@linkcode MqttError} a DISCONNECT with its reason code goes
   * out first. The one place a client-side error becomes a DISCONNECT.
   */
  fail(error: Error): void {
    if (this.#state.kind !== "open") return;
    if (error instanceof MqttError && this.#options.version === 5 && error.reasonCode >= 0x80) {
      this.send({ type: PACKET_TYPE.DISCONNECT, reasonCode: error.reasonCode });
      this.#state = { kind: "closing", error };
      this.#writer.flushed().finally(() => this.#closeStream());
      return;
    }
    this.#state = { kind: "closing", error };
    this.#writer.close();
    this.#closeStream();
  }

  /** Ends the connection at once because of `error`, sending nothing more (e.g. after the server's DISCONNECT). */
  abort(error: Error): void {
    if (this.#state.kind === "closed") return;
    if (this.#state.kind === "open") this.#state = { kind: "closing", error };
    this.#closeStream(); // also cuts short a close() or fail() still flushing
  }

  /** Flushes what was sent, closes the stream and waits for the read loop to end. */
  async close(): Promise<void> {
    if (this.#state.kind === "open") {
      this.#state = { kind: "closing", error: undefined };
      await this.#writer.flushed();
      this.#closeStream();
    }
    await this.ended;
  }

  /** Closes after the queued packets went out, or drops the connection if they cannot go out within `ms`. */
  async closeWithin(ms: number, clock: Clock): Promise<void> {
    let timer: TimerId | undefined;
    const late = new Promise<void>((resolve) => timer = clock.setTimeout(resolve, ms));
    await Promise.race([this.close(), late]);
    clock.clearTimeout(timer!);
    this.abort(new Deno.errors.TimedOut(`The DISCONNECT could not be written within ${ms} ms`));
    await this.ended;
  }

  #closeStream(): void {
    this.#writer.close();
    try {
      this.#stream.close();
    } catch {
      // already closed
    }
  }

  async #readLoop(): Promise<ConnectionEnd> {
    let buffer = new Uint8Array(INITIAL_BUFFER);
    let first = true;
    try {
      for (;;) {
        const n = await this.#stream.read(buffer);
        if (n === null || this.#state.kind !== "open") break;
        if (first && n > 0) {
          first = false;
          // A wrong port (TLS, HTTP) is told apart from a broken MQTT server before the decoder sees its bytes.
          const foreign = foreignPeerError(buffer.subarray(0, n), this.#options.peer ?? "The server");
          if (foreign !== undefined) throw foreign;
        }
        this.#framer.push(buffer.subarray(0, n));
        for (let frame = this.#framer.next(); frame !== undefined; frame = this.#framer.next()) {
          const type = frame.header >> 4;
          // Packets that keep binary fields (payload, authentication data) get their own copy: the read buffer
          // is reused.
          const keepsBytes = type === PACKET_TYPE.PUBLISH || type === PACKET_TYPE.CONNACK ||
            type === PACKET_TYPE.AUTH;
          const packet = decodePacket(
            frame.header,
            keepsBytes ? frame.body.slice() : frame.body,
            this.version,
          );
          this.#options.onPacket(packet);
          if (this.#state.kind !== "open") break;
        }
        if (this.#state.kind !== "open") break;
        if (n === buffer.length && buffer.length < MAX_BUFFER) buffer = new Uint8Array(buffer.length * 2);
      }
    } catch (error) {
      // After close() the pending read fails; that is not an error of the connection.
      if (this.#state.kind === "open") this.fail(error instanceof Error ? error : new Error(String(error)));
    }
    if (this.#state.kind === "open") this.#state = { kind: "closing", error: undefined };
    const end = this.#state.kind === "closing" ? this.#state.error : undefined;
    await this.#writer.flushed(); // lets a DISCONNECT queued by fail() go out
    this.#closeStream();
    this.#state = { kind: "closed" };
    return end;
  }
}
