/**
 * One node's link to one other node, for its lossy (QoS 0) forwards: connected on first use, authenticated
 * (`peer_link_frames.ts`), then one `DATA` frame per forward batch. While it is not up the caller sends
 * through the engine instead; a failed link waits a growing delay before the next try, made by the next send.
 * A frame is written to the link or not at all, never also through the engine: nothing is delivered twice.
 *
 * @module
 */

import type { Logger } from "../broker/logger.ts";
import type { Incarnation } from "./engine.ts";
import {
  answerChallenge,
  encodeFrame,
  FRAME,
  FrameReader,
  type FrameType,
  HANDSHAKE_FRAME_MAX,
  helloBody,
} from "./peer_link_frames.ts";

/** What an outbound link needs from its node. */
export interface OutboundHost {
  /** This node's incarnation now. */
  readonly incarnation: Incarnation;
  readonly secret: string;
  readonly logger: Logger;
  /** The peer address `node` advertised. */
  address(node: Incarnation): Promise<string | undefined>;
}

/** How long a handshake may take, ms. */
export const HANDSHAKE_MS = 5000;
const RETRY_MIN_MS = 100;
/** See {@linkcode OutboundLink.up}. */
const SETTLE_MS = 20;
const RETRY_MAX_MS = 5000;
/** Bytes waiting for the socket beyond which new frames are dropped (a stalled peer; QoS 0 is at most once). */
const BACKLOG_MAX = 8 * 1024 * 1024;

type State =
  | { readonly kind: "idle"; readonly retryAt: number }
  | { readonly kind: "connecting" }
  | { readonly kind: "up"; readonly conn: Deno.TcpConn; usableAt: number }
  | { readonly kind: "closed" };

/** See the module doc. */
export class OutboundLink {
  readonly to: Incarnation;
  readonly #host: OutboundHost;
  #state: State = { kind: "idle", retryAt: 0 };
  #retryMs = RETRY_MIN_MS;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #writing = false;
  #conn: Deno.TcpConn | undefined;
  #abort: AbortController | undefined;
  readonly #tasks = new Set<Promise<void>>();
  /** Frames written (for tests and stats). */
  frames = 0;

  constructor(host: OutboundHost, to: Incarnation) {
    this.#host = host;
    this.to = to;
  }

  /** Whether frames go over the link now. */
  get up(): boolean {
    const state = this.#state;
    return state.kind === "up" && (state.usableAt === 0 || this.#settled(state));
  }

  /**
   * A link just up waits {@linkcode SETTLE_MS} before it carries frames, so that what was sent through the
   * engine before it has arrived first: QoS 0 stays in publish order per topic [MQTT-4.6.0-6 (3.1.1)] (the
   * engine's hop is well under a millisecond unless a node stalls; a stall longer than this may reorder).
   */
  #settled(state: { usableAt: number }): boolean {
    if (performance.now() < state.usableAt) return false;
    state.usableAt = 0;
    return true;
  }

  /** Starts connecting unless it is up, connecting, closed, or waiting before a retry. */
  ensure(): void {
    const state = this.#state;
    if (state.kind !== "idle" || performance.now() < state.retryAt) return;
    this.#state = { kind: "connecting" };
    this.#track(this.#open());
  }

  /** Queues one frame (the link is up); false when the backlog is full and the frame was dropped. */
  write(frame: Uint8Array): boolean {
    if (this.#queued + frame.length > BACKLOG_MAX) return false;
    this.#queue.push(frame);
    this.#queued += frame.length;
    this.frames++;
    if (!this.#writing) this.#track(this.#drain());
    return true;
  }

  /** Closes the link for good and waits for its tasks. */
  async close(): Promise<void> {
    this.#state = { kind: "closed" };
    this.#abort?.abort();
    this.#closeConn();
    while (this.#tasks.size > 0) await Promise.all(this.#tasks);
  }

  /** Drops the connection (a failure, or its peer is gone); the next send may connect again after a delay. */
  fail(reason: string): void {
    if (this.#state.kind === "closed") return;
    if (this.#state.kind === "up") this.#host.logger.warn(`peer link to ${this.to} lost: ${reason}`);
    else this.#host.logger.debug(`peer link to ${this.to} not up: ${reason}`);
    this.#closeConn();
    this.#state = { kind: "idle", retryAt: performance.now() + this.#retryMs };
    this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2);
  }

  #closeConn(): void {
    const conn = this.#conn;
    this.#conn = undefined;
    this.#queue = [];
    this.#queued = 0;
    try {
      conn?.close();
    } catch {
      // already closed
    }
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  async #open(): Promise<void> {
    // One deadline for the address, the connect (a firewall may drop it silently) and the handshake.
    const abort = new AbortController();
    this.#abort = abort;
    let timer: ReturnType<typeof setTimeout> | undefined = setTimeout(() => {
      abort.abort();
      this.#closeConn();
    }, HANDSHAKE_MS);
    try {
      const address = await this.#host.address(this.to);
      if (address === undefined) throw new Error("no peer address advertised");
      const { hostname, port } = parseAddress(address);
      const conn = await Deno.connect({ hostname, port, signal: abort.signal });
      if (this.#state.kind !== "connecting" || abort.signal.aborted) {
        conn.close();
        throw new Error("closed while connecting");
      }
      this.#conn = conn;
      conn.setNoDelay(true);
      const reader = new FrameReader();
      const secret = this.#host.secret;
      const hello = helloBody(this.#host.incarnation, this.to);
      await writeAll(conn, encodeFrame(FRAME.hello, hello));
      const challenge = await readFrame(conn, reader, FRAME.challenge);
      const auth = answerChallenge(secret, hello, challenge);
      if (auth === undefined) throw new Error("the peer does not know the cluster secret");
      await writeAll(conn, encodeFrame(FRAME.auth, auth));
      await readFrame(conn, reader, FRAME.ready);
      clearTimeout(timer);
      timer = undefined;
      if (this.#state.kind !== "connecting" || this.#conn !== conn) {
        throw new Error("closed while connecting");
      }
      this.#state = { kind: "up", conn, usableAt: performance.now() + SETTLE_MS };
      this.#retryMs = RETRY_MIN_MS;
      this.#host.logger.debug(`peer link to ${this.to} up (${address})`);
      this.#track(this.#watch(conn));
    } catch (error) {
      if (this.#state.kind === "connecting") this.fail(String(error));
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      if (this.#abort === abort) this.#abort = undefined;
    }
  }

  /** The peer never speaks after `READY`: a read that ends is the link's end. */
  async #watch(conn: Deno.TcpConn): Promise<void> {
    const buffer = new Uint8Array(16);
    let reason = "closed by the peer";
    try {
      if (await conn.read(buffer) !== null) reason = "the peer sent data after READY";
    } catch (error) {
      reason = String(error);
    }
    if (this.#conn === conn) this.fail(reason);
  }

  async #drain(): Promise<void> {
    const conn = this.#conn;
    if (conn === undefined) return;
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && this.#conn === conn) {
        const chunk = this.#queue.length === 1 ? this.#queue[0]! : concat(this.#queue, this.#queued);
        this.#queue = [];
        this.#queued = 0;
        await writeAll(conn, chunk);
      }
    } catch (error) {
      if (this.#conn === conn) this.fail(String(error));
    } finally {
      this.#writing = false;
    }
  }
}

/** `HOST:PORT` or `[V6]:PORT`. */
export function parseAddress(address: string): { readonly hostname: string; readonly port: number } {
  const colon = address.lastIndexOf(":");
  const port = Number(address.slice(colon + 1));
  let hostname = address.slice(0, colon);
  if (hostname.startsWith("[") && hostname.endsWith("]")) hostname = hostname.slice(1, -1);
  if (colon <= 0 || hostname === "" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`bad peer address "${address}"`);
  }
  return { hostname, port };
}

/** Writes all of `bytes` (a socket write may take part of it). */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

/** Reads until the next frame; it must be of `type` (its body is copied). */
export async function readFrame(conn: Deno.Conn, reader: FrameReader, type: FrameType): Promise<Uint8Array> {
  const buffer = new Uint8Array(HANDSHAKE_FRAME_MAX);
  while (true) {
    const frame = reader.next();
    if (frame !== undefined) {
      if (frame.type !== type) throw new Error(`peer sent frame type ${frame.type}, expected ${type}`);
      return frame.body.slice();
    }
    const n = await conn.read(buffer);
    if (n === null) throw new Error("the peer closed the connection");
    reader.push(buffer.subarray(0, n));
  }
}

function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
