/**
 * The Redis key names of the cluster (`../shared/CLUSTER.md` §3.3). A session's keys share the hash tag
 * `{clientId}`, so every multi-key step on one session stays in one Redis Cluster slot; the per-node keys do not
 * (the single-Redis deployment recommended in the README does not care).
 *
 * @module
 */

import type { Incarnation } from "./engine.ts";

/** The keys under one prefix (`mq:` by default). */
export class RedisKeys {
  /** Cluster uuid: its absence after a reconnect means Redis lost its data. */
  readonly cluster: string;
  /** Zset of registered incarnations (score: last renewal, Redis time ms). */
  readonly nodes: string;
  /** The control stream: route, retained, takeover, release and node events. */
  readonly ctl: string;
  /** Counter behind route versions. */
  readonly routeVersion: string;
  /** Hash topic → retained message. */
  readonly retained: string;
  /** The sweeper role, `SET NX PX`. */
  readonly sweeper: string;
  /** The peer links' shared secret, set once (`SET NX`). */
  readonly secret: string;
  /** Hash incarnation → its peer link address. */
  readonly peers: string;
  readonly #prefix: string;

  constructor(prefix = "mq:") {
    this.#prefix = prefix;
    this.cluster = `${prefix}cluster`;
    this.nodes = `${prefix}nodes`;
    this.ctl = `${prefix}ctl`;
    this.routeVersion = `${prefix}rv`;
    this.retained = `${prefix}ret`;
    this.sweeper = `${prefix}sweeper`;
    this.secret = `${prefix}secret`;
    this.peers = `${prefix}peers`;
  }

  /** The lease of `node`, `SET PX`. */
  lease(node: Incarnation): string {
    return `${this.#prefix}node:${node}`;
  }

  /** The tombstone the sweeper sets before anyone adopts `node`'s sessions. */
  dead(node: Incarnation): string {
    return `${this.#prefix}dead:${node}`;
  }

  /** Set of filters with a local subscriber on `node`. */
  routes(node: Incarnation): string {
    return `${this.#prefix}routes:${node}`;
  }

  /** The lossy (QoS 0) inbox stream of `node`. */
  lossyInbox(node: Incarnation): string {
    return `${this.#prefix}in0:${node}`;
  }

  /** The durable (QoS 1/2) inbox stream of `node`. */
  durableInbox(node: Incarnation): string {
    return `${this.#prefix}in1:${node}`;
  }

  /** The last durable inbox id whose effects `node` committed. */
  cursor(node: Incarnation): string {
    return `${this.#prefix}cur:${node}`;
  }

  /** Set of client ids `node` owns (the adoption list). */
  owned(node: Incarnation): string {
    return `${this.#prefix}owned:${node}`;
  }

  /** Hash of `node`'s `$SYS` counters, `PX`. */
  stats(node: Incarnation): string {
    return `${this.#prefix}stats:${node}`;
  }

  /** The keys of one session, in the order the session scripts take them. */
  session(clientId: string): SessionKeys {
    const tag = `{${clientId}}`;
    return [
      `${this.#prefix}s:${tag}`,
      `${this.#prefix}e:${tag}`,
      `${this.#prefix}o:${tag}`,
      `${this.#prefix}i:${tag}`,
      `${this.#prefix}w:${tag}`,
    ];
  }
}

/**
 * `[session hash (owner, session JSON), epoch counter, outgoing hash by seq, incoming QoS 2 id set, will]`.
 */
export type SessionKeys = readonly [string, string, string, string, string];
