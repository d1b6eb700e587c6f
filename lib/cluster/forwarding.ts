/**
 * Cross-node PUBLISH (CLUSTER.md §3.5): one forward per interested node, batched per destination. QoS 0 goes
 * out once the packets being handled now are done (a microtask: the PUBLISHes of one read form one batch), over
 * the peer link (`peer_link.ts`) or else to the destination's lossy inbox, and is never waited for; QoS 1/2 rides
 * in the node's next group commit, so the PUBACK / PUBREC that waits for that commit goes out only once the
 * forward is durable. A destination matches a forwarded message against its local subscriptions only
 * ({@linkcode deliverForwarded}), never stores it as retained and never forwards it again, except to a session's
 * new node during a takeover (the "moved" entries, with the same id).
 *
 * @module
 */

import type { Delivery, TopicRouter } from "../topic/router.ts";
import type { Message } from "../broker/storage/persistence.ts";
import { EncodeCache } from "../broker/encode_cache.ts";
import type { ForwardBatch, ForwardedMessage, Incarnation } from "./engine.ts";
import type { ClusterNode } from "./node.ts";
import { bounceShared } from "./shared_bounce.ts";

/** The router key of a session's subscriptions kept on its old node while a takeover settles. */
export const MOVED_PREFIX = "\u0000moved:";

/** Where a moved session went, and until when its old node passes messages on. */
export interface Moved {
  readonly clientId: string;
  readonly to: Incarnation;
}

/** One destination's part of a message being forwarded. */
interface Part {
  direct: boolean;
  shared: string[] | undefined;
  clients: string[] | undefined;
}

/** Per-turn forward buffers of one node. */
export class Forwarder {
  readonly #node: ClusterNode;
  #lossy = new Map<Incarnation, ForwardedMessage[]>();
  #durable = new Map<Incarnation, ForwardedMessage[]>();
  #scheduled = false;
  /** The sequence of this node's forwarded message ids (`<incarnation>:<seq>`). */
  seq = 0;
  /** Lossy forwards dropped because the engine was unreachable. */
  dropped = 0;

  /** Buffers for `node`. */
  constructor(node: ClusterNode) {
    this.#node = node;
  }

  /**
   * Buffers `message` for `to`: durable ones wait for the next commit, lossy ones for a microtask (not
   * `setImmediate`: about 35 µs less at p50 one hop at 5,000 msgs/s, and more cross-node fan-in, in
   * bench/results/2026-12-07-h2.md).
   */
  add(to: Incarnation, message: ForwardedMessage, durable: boolean): void {
    const buffers = durable ? this.#durable : this.#lossy;
    let list = buffers.get(to);
    if (list === undefined) buffers.set(to, list = []);
    list.push(message);
    if (durable) this.#node.markCommit();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#flushLossy());
    }
  }

  /** The durable forwards buffered so far, for the commit being cut. */
  takeDurable(): ForwardBatch[] {
    if (this.#durable.size === 0) return [];
    const batches: ForwardBatch[] = [];
    for (const [to, messages] of this.#durable) batches.push({ to, messages });
    this.#durable = new Map();
    return batches;
  }

  #flushLossy(): void {
    this.#scheduled = false;
    const lossy = this.#lossy;
    this.#lossy = new Map();
    if (this.#node.state !== "up") {
      for (const list of lossy.values()) this.dropped += list.length;
      return;
    }
    const batches: ForwardBatch[] = [];
    for (const [to, messages] of lossy) batches.push({ to, messages });
    // Over the direct peer links where they are up; the rest through the engine (never both: at most once).
    const peers = this.#node.peers;
    const rest = peers === undefined ? batches : peers.send(batches);
    if (rest.length > 0) this.#node.engine.forwardLossy(rest);
  }
}

/**
 * Forwards a message published on this node to every other node with a matching route: one forward per node
 * (the remote router merges a node's filters), one node per `$share` group cluster-wide unless a local member of
 * that group took it (prefer local), and the moved sessions among `local`. Returns the number of nodes.
 */
export function forward(node: ClusterNode, message: Message, local: readonly Delivery[]): number {
  if (node.state === "fenced" || node.state === "closed") return 0;
  const topic = message.topic;
  if (topic.charCodeAt(0) === 0x24 && topic.startsWith("$SYS")) return 0; // never forwarded (§3.11)
  const remote = node.remote.router.size === 0 ? NONE : node.remote.router.match(topic);
  const moved = node.moved.size === 0 ? false : local.some((d) => d.clientId.startsWith(MOVED_PREFIX));
  if (remote.length === 0 && !moved) return 0;
  const parts = new Map<Incarnation, Part>();
  for (const delivery of remote) {
    const filter = delivery.filter;
    if (filter !== undefined && local.some((d) => d.filter === filter)) continue; // a local member took it
    const part = partOf(parts, delivery.clientId);
    if (filter === undefined) part.direct = true;
    else (part.shared ??= []).push(filter);
  }
  if (moved) addMoved(node, parts, local);
  return send(node, parts, `${node.incarnation}:${++node.forwarder.seq}`, message);
}

const NONE: Delivery[] = [];

function partOf(parts: Map<Incarnation, Part>, to: Incarnation): Part {
  let part = parts.get(to);
  if (part === undefined) parts.set(to, part = { direct: false, shared: undefined, clients: undefined });
  return part;
}

function addMoved(node: ClusterNode, parts: Map<Incarnation, Part>, local: readonly Delivery[]): void {
  for (const delivery of local) {
    if (!delivery.clientId.startsWith(MOVED_PREFIX)) continue;
    const moved = node.moved.get(delivery.clientId);
    if (moved !== undefined) (partOf(parts, moved.to).clients ??= []).push(moved.clientId);
  }
}

function send(node: ClusterNode, parts: Map<Incarnation, Part>, id: string, message: Message): number {
  const durable = message.qos > 0;
  for (const [to, part] of parts) {
    const forwarded: { -readonly [K in keyof ForwardedMessage]: ForwardedMessage[K] } = {
      id,
      message,
      direct: part.direct,
    };
    if (part.shared !== undefined) forwarded.shared = part.shared;
    if (part.clients !== undefined) forwarded.clients = part.clients;
    node.forwarder.add(to, forwarded, durable);
  }
  return parts.size;
}

/**
 * Delivers a message another node forwarded to the local sessions its scope names (non-shared subscribers when
 * `direct`, one member of each named group, the named moved-in sessions), never to the publisher when No Local
 * says so [MQTT-3.8.3-3 (5.0)], and not when it expired on the way (5.0 section 3.3.2.3.3). `only`: deliver to
 * these sessions alone (an adopter replaying a dead node's inbox). Returns how many sessions got it.
 */
export function deliverForwarded(
  node: ClusterNode,
  forwarded: ForwardedMessage,
  only?: ReadonlySet<string>,
): number {
  const ctx = node.context;
  const clients = forwarded.clients;
  if (clients !== undefined && node.claiming.size > 0 && only === undefined) {
    for (const clientId of clients) node.claiming.get(clientId)?.push(forwarded);
  }
  const message = forwarded.message;
  const now = ctx.clock.now();
  if (message.expiresAt !== undefined && message.expiresAt <= now) return 0;
  const sessions = ctx.sessions;
  const checkReceive = sessions.checksReceive;
  const deliveries = ctx.router.match(
    message.topic,
    message.origin === undefined
      ? (checkReceive ? sessions.matchAnyReader : sessions.matchAny)
      : checkReceive
      ? { publisherId: message.origin, isAvailable: sessions.isAvailable, canReceive: sessions.canReceive }
      : { publisherId: message.origin, isAvailable: sessions.isAvailable },
  );
  // A group with no member here any more goes on to a node that has one (`shared_bounce.ts`).
  if (forwarded.shared !== undefined && only === undefined) bounceShared(node, forwarded, deliveries);
  if (deliveries.length === 0) return 0;
  const cache = new EncodeCache(now);
  let receivers = 0;
  let passOn: Map<Incarnation, Part> | undefined;
  for (const delivery of deliveries) {
    const clientId = delivery.clientId;
    if (only !== undefined && !only.has(clientId)) continue;
    if (!inScope(forwarded, delivery)) continue;
    if (clientId.startsWith(MOVED_PREFIX)) {
      // Reached the session's old node: passed on to its new one, same id (the new node delivers it once).
      const moved = node.moved.get(clientId);
      if (moved !== undefined) (partOf(passOn ??= new Map(), moved.to).clients ??= []).push(moved.clientId);
      continue;
    }
    if (!node.firstDelivery(clientId, forwarded.id)) continue;
    if (ctx.deliverTo(message, delivery, cache)) receivers++;
  }
  if (passOn !== undefined) send(node, passOn, forwarded.id, message);
  return receivers;
}

/** Whether a local delivery is one the forward was sent for (its direct part, its groups, its named sessions). */
function inScope(forwarded: ForwardedMessage, delivery: Delivery): boolean {
  return delivery.filter === undefined
    ? forwarded.direct || (forwarded.clients?.includes(delivery.clientId) ?? false)
    : forwarded.shared?.includes(delivery.filter) ?? false;
}

/** The sessions one node adopted from one dead node, as {@linkcode replayForwarded} needs them. */
export interface AdoptedSessions {
  /** Their subscriptions at adoption. */
  readonly router: TopicRouter;
  /** The epoch of each adoption. */
  readonly epochs: ReadonlyMap<string, number>;
  /** The subscription change count of each at adoption. */
  readonly changes: ReadonlyMap<string, number>;
}

/**
 * Delivers a message from a dead node's inbox to the sessions this node adopted from it, by their
 * subscriptions as they were when it died, and only while each is as its adoption left it: the same epoch (once
 * it moved, and maybe came back, its owner's own routes serve it) and the same subscriptions (a replay cannot
 * tell which subscriptions it had when the message was published). Each forwarded id reaches a session once,
 * whether it also came by this node's own routes or by an earlier replay.
 */
export function replayForwarded(
  node: ClusterNode,
  forwarded: ForwardedMessage,
  adopted: AdoptedSessions,
): void {
  const ctx = node.context;
  const message = forwarded.message;
  const now = ctx.clock.now();
  if (message.expiresAt !== undefined && message.expiresAt <= now) return;
  const options = message.origin === undefined ? undefined : { publisherId: message.origin };
  const deliveries = adopted.router.match(message.topic, options);
  if (deliveries.length === 0) return;
  const cache = new EncodeCache(now);
  const watched = node.router.watched;
  for (const delivery of deliveries) {
    const clientId = delivery.clientId;
    if (node.epochs.get(clientId) !== adopted.epochs.get(clientId)) continue;
    if (watched.get(clientId) !== adopted.changes.get(clientId)) continue;
    if (!inScope(forwarded, delivery) || !node.firstDelivery(clientId, forwarded.id)) continue;
    ctx.deliverTo(message, delivery, cache);
  }
}
