/**
 * The accepting end of a peer link: authenticates the connecting node (`peer_link_frames.ts`), checks that it
 * is a live incarnation and that it meant this one, then hands each `DATA` frame's batch to the node, which
 * delivers it as a lossy batch read from the engine. Anything wrong (a bad secret, garbage, a frame over the
 * limit, a slow handshake, a sender declared dead) closes that socket with a log line and nothing else.
 *
 * @module
 */

import type { Logger } from "../broker/logger.ts";
import type { ForwardedMessage, Incarnation } from "./engine.ts";
import { decodeForwardBatch } from "./_redis_forward_codec.ts";
import {
  authValid,
  challengeBody,
  DATA_FRAME_MAX,
  decodeHello,
  encodeFrame,
  FRAME,
  FrameReader,
} from "./peer_link_frames.ts";
import { HANDSHAKE_MS, readFrame, writeAll } from "./peer_link_out.ts";

/** What the accepting end needs from its node. */
export interface InboundHost {
  /** This node's incarnation now (frames for an earlier one are refused). */
  readonly incarnation: Incarnation;
  readonly secret: string;
  readonly logger: Logger;
  /** Whether `node` is a live incarnation (not dead, not fenced). */
  isLive(node: Incarnation): Promise<boolean>;
  /** Delivers one batch from `from`; false when `from` may not send any more (the socket is closed). */
  deliver(from: Incarnation, messages: ForwardedMessage[]): boolean;
}

/** One accepted socket, registered under its sender once authenticated (so its death can close it). */
export interface Inbound {
  readonly conn: Deno.TcpConn;
  from: Incarnation | undefined;
}

/** Serves one accepted socket until it ends; never throws. */
export async function serveInbound(host: InboundHost, inbound: Inbound): Promise<void> {
  const conn = inbound.conn;
  const peer = `${(conn.remoteAddr as Deno.NetAddr).hostname}:${(conn.remoteAddr as Deno.NetAddr).port}`;
  const timer = setTimeout(() => close(conn), HANDSHAKE_MS);
  try {
    conn.setNoDelay(true);
    const reader = new FrameReader();
    const hello = decodeHello(await readFrame(conn, reader, FRAME.hello));
    const me = host.incarnation;
    if (hello.to !== me) throw new Error(`it asked for ${hello.to}, this node is ${me}`);
    const secret = host.secret;
    const challenge = challengeBody(secret, hello.body);
    await writeAll(conn, encodeFrame(FRAME.challenge, challenge));
    const auth = await readFrame(conn, reader, FRAME.auth);
    if (!authValid(secret, hello.body, challenge, auth)) throw new Error("wrong cluster secret");
    if (!await host.isLive(hello.from)) throw new Error(`${hello.from} is not a live node`);
    inbound.from = hello.from;
    await writeAll(conn, encodeFrame(FRAME.ready, new Uint8Array(0)));
    clearTimeout(timer);
    reader.limit = DATA_FRAME_MAX;
    await receive(host, conn, reader, hello.from, me);
  } catch (error) {
    if (inbound.from !== undefined && isClosed(error)) return; // closed by this node (its sender died)
    host.logger.warn(`peer link from ${peer} refused: ${error instanceof Error ? error.message : error}`);
  } finally {
    clearTimeout(timer);
    close(conn);
  }
}

async function receive(
  host: InboundHost,
  conn: Deno.TcpConn,
  reader: FrameReader,
  from: Incarnation,
  me: Incarnation,
): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) return;
    reader.push(buffer.subarray(0, n));
    for (let frame = reader.next(); frame !== undefined; frame = reader.next()) {
      if (frame.type !== FRAME.data) throw new Error(`unexpected frame type ${frame.type}`);
      // A node that rejoined as a new incarnation refuses what was meant for its old one.
      if (host.incarnation !== me) {
        throw new Error(`the link was for ${me}, this node is ${host.incarnation}`);
      }
      if (!host.deliver(from, decodeForwardBatch(frame.body))) {
        throw new Error(`${from} may not send any more`);
      }
    }
    // The deliveries' writes to their subscribers (queued as microtasks by their outputs) go out before the
    // next read is started: 10 µs off the subscriber's end of a hop at p50 (bench/results/2026-12-07-s4-p.md).
    await Promise.resolve();
  }
}

function isClosed(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted;
}

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
