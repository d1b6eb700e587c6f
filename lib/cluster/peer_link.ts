/**
 * Direct node-to-node links for lossy (QoS 0) forwards: the hop through the engine (Redis) costs about 230 µs
 * at p50 and several ms at p99 on the test machine (bench/results/2026-12-07-cluster.md, "(e)"), more than the
 * whole added-latency budget of one hop. Each node listens on a TCP port for its peers and advertises it in the
 * engine's membership (`JoinOptions.address`); a node connects to a destination on its first lossy
 * forward there, keeps one link per destination (`peer_link_out.ts`) and writes one frame per batch.
 * Accepted links (`peer_link_in.ts`) deliver the way a lossy batch read from the engine does.
 *
 * While a link is not up (connecting, failed, refused) its batches go through the engine: at most once, never
 * both ways. Durable (QoS 1/2) forwards always go through the engine, whose inbox makes them durable.
 *
 * @module
 */

import type { Logger } from "../broker/logger.ts";
import type { ForwardBatch, Incarnation } from "./engine.ts";
import type { ClusterNode } from "./node.ts";
import { encodeForwardBatch } from "./_redis_forward_codec.ts";
import { DATA_FRAME_MAX, FRAME, FRAME_HEADER, sealFrame } from "./peer_link_frames.ts";
import { type Inbound, type InboundHost, serveInbound } from "./peer_link_in.ts";
import { OutboundLink } from "./peer_link_out.ts";

/** Where a node's peer link listens. */
export interface PeerLinkOptions {
  /** Address to bind. @default {"127.0.0.1"} */
  readonly host?: string;
  /** Port to bind; 0 picks a free one. @default {0} */
  readonly port?: number;
  /** `HOST` or `HOST:PORT` other nodes connect to (the bound port when it names none). @default {host} */
  readonly advertise?: string;
}

/** What the links need from their node. */
export interface PeerLinkHost extends InboundHost {
  /** The peer address `node` advertised. */
  address(node: Incarnation): Promise<string | undefined>;
}

/** Sockets accepted but not yet authenticated, at most: more are closed at once (each waits up to 5 s). */
export const HANDSHAKES_MAX = 64;
/** How many dead incarnations are remembered (their links refused); older ones are long gone. */
const DEAD_MAX = 1024;

/** A node's listener and its links. See the module doc. */
export class PeerLinks {
  /** The `HOST:PORT` this node advertises. */
  readonly address: string;
  /** Lossy forwards dropped because a link's backlog was full. */
  dropped = 0;
  readonly #host: PeerLinkHost;
  readonly #listener: Deno.TcpListener;
  readonly #out = new Map<Incarnation, OutboundLink>();
  readonly #in = new Set<Inbound>();
  readonly #dead = new Set<Incarnation>();
  readonly #tasks = new Set<Promise<void>>();
  #closed = false;

  private constructor(host: PeerLinkHost, listener: Deno.TcpListener, advertise: string | undefined) {
    this.#host = host;
    this.#listener = listener;
    this.address = advertisedAddress(advertise, listener.addr);
    this.#track(this.#accept());
  }

  /** Binds the listener (throws when the address cannot be bound) and starts accepting. */
  static listen(host: PeerLinkHost, options: PeerLinkOptions = {}): PeerLinks {
    const hostname = options.host ?? "127.0.0.1";
    if (WILDCARD.has(hostname) && options.advertise === undefined) {
      throw new Error(`a peer link on "${hostname}" needs an advertised address other nodes can connect to`);
    }
    const listener = Deno.listen({ hostname, port: options.port ?? 0 });
    return new PeerLinks(host, listener, options.advertise);
  }

  /** The logger lines of this module go to. */
  get logger(): Logger {
    return this.#host.logger;
  }

  /**
   * Sends each batch over its destination's link when that link is up; answers the batches it did not send
   * (link not up yet, or a batch over the frame limit), for the caller to send through the engine. A link
   * that is not up starts connecting.
   */
  send(batches: readonly ForwardBatch[]): ForwardBatch[] {
    let rest: ForwardBatch[] | undefined;
    for (const batch of batches) {
      if (this.#closed || this.#dead.has(batch.to)) {
        (rest ??= []).push(batch);
        continue;
      }
      let link = this.#out.get(batch.to);
      if (link === undefined) this.#out.set(batch.to, link = new OutboundLink(this.#host, batch.to));
      if (!link.up) {
        link.ensure();
        (rest ??= []).push(batch);
        continue;
      }
      const frame = encodeForwardBatch(batch.messages, FRAME_HEADER); // the batch encoded once, in its frame
      if (frame.length - 4 > DATA_FRAME_MAX) {
        (rest ??= []).push(batch);
        continue;
      }
      if (!link.write(sealFrame(frame, FRAME.data))) this.dropped += batch.messages.length;
    }
    return rest ?? NONE;
  }

  /** The link to `node`, if one was made (for tests). */
  link(node: Incarnation): OutboundLink | undefined {
    return this.#out.get(node);
  }

  /** `node` is dead (or left): its links are closed both ways and it may not link again. */
  dropNode(node: Incarnation): void {
    if (this.#dead.size >= DEAD_MAX) this.#dead.delete(this.#dead.values().next().value!);
    this.#dead.add(node);
    const link = this.#out.get(node);
    if (link !== undefined) {
      this.#out.delete(node);
      this.#track(link.close());
    }
    for (const inbound of this.#in) if (inbound.from === node) closeConn(inbound.conn);
  }

  /** Whether `node` was declared dead here. */
  isDead(node: Incarnation): boolean {
    return this.#dead.has(node);
  }

  /** Closes every link, both ways (this node fenced itself: its incarnation is over). */
  reset(): void {
    for (const link of this.#out.values()) this.#track(link.close());
    this.#out.clear();
    for (const inbound of this.#in) closeConn(inbound.conn);
  }

  /** Stops listening and closes every link; resolves once nothing of it runs. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    this.reset();
    while (this.#tasks.size > 0) await Promise.all(this.#tasks);
  }

  async #accept(): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#closed) return;
        this.#host.logger.warn(`peer link listener: ${String(error)}`);
        await new Promise((resolve) => setTimeout(resolve, 100)); // out of descriptors: not in a tight loop
        continue;
      }
      if (this.#closed) {
        closeConn(conn);
        return;
      }
      if (this.handshakes >= HANDSHAKES_MAX) {
        this.#host.logger.warn(
          `peer link from ${describe(conn)} refused: ${HANDSHAKES_MAX} handshakes under way`,
        );
        closeConn(conn);
        continue;
      }
      const inbound: Inbound = { conn, from: undefined };
      this.#in.add(inbound);
      this.#track(serveInbound(this.#host, inbound).finally(() => this.#in.delete(inbound)));
    }
  }

  /** Sockets accepted and not yet authenticated. */
  get handshakes(): number {
    let count = 0;
    for (const inbound of this.#in) if (inbound.from === undefined) count++;
    return count;
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }
}

const NONE: ForwardBatch[] = [];
const WILDCARD = new Set(["0.0.0.0", "::", "[::]", ""]);

/** `HOST:PORT` to advertise: `advertise` as given, or with the bound port when it names none. */
export function advertisedAddress(advertise: string | undefined, bound: Deno.NetAddr): string {
  const host = advertise ?? bound.hostname;
  if (/^\[[^\]]+\]:\d+$/.test(host) || /^[^:]+:\d+$/.test(host)) return host;
  const bare = host.startsWith("[") ? host.slice(1, -1) : host;
  return `${bare.includes(":") ? `[${bare}]` : bare}:${bound.port}`;
}

function describe(conn: Deno.Conn): string {
  const addr = conn.remoteAddr as Deno.NetAddr;
  return `${addr.hostname}:${addr.port}`;
}

function closeConn(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** Starts `node`'s peer links (see {@linkcode ClusterNode.peers}). */
export function listenForPeers(node: ClusterNode, options: PeerLinkOptions = {}): PeerLinks {
  const links: PeerLinks = PeerLinks.listen({
    get incarnation(): Incarnation {
      return node.incarnation;
    },
    get secret(): string {
      return node.secret;
    },
    get logger(): Logger {
      return node.context.logger;
    },
    address: (peer) => node.engine.peerAddress(peer),
    isLive: async (peer) => !links.isDead(peer) && (await node.engine.liveNodes()).includes(peer),
    deliver: (from, messages) => !links.isDead(from) && node.receiveLossy(from, messages),
  }, options);
  return links;
}
