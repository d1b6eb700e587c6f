/**
 * `$SYS/cluster/...` (CLUSTER.md §3.11): cluster-wide totals beside each node's own `$SYS/broker/...`, published
 * locally on every node (never forwarded). Each node puts its counters in the engine every `$SYS` interval and
 * sums every live node's. `$SYS/cluster/routes/version` is the highest route version this node has applied or
 * stored, published as soon as it changes: tests wait for it instead of sleeping.
 *
 * @module
 */

import { utf8Encode } from "../codec/utf8.ts";
import type { NodeStats } from "./engine.ts";
import type { ClusterNode } from "./node.ts";

/** Publishes `$SYS/cluster/...` for one node. */
export class ClusterSys {
  readonly #node: ClusterNode;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #routesScheduled = false;
  #stopped = false;

  /** Idle until {@linkcode ClusterSys.start}. */
  constructor(node: ClusterNode) {
    this.#node = node;
  }

  /** The highest route version known here (applied from others or stored by this node). */
  get routesVersion(): number {
    return Math.max(this.#node.remote.version, this.#node.storedVersion);
  }

  /** Starts the totals on the broker's `$SYS` interval (none when it is 0). */
  start(): void {
    this.#stopped = false;
    const interval = this.#node.context.options.sysInterval;
    if (interval <= 0) return;
    const tick = () => {
      this.publishTotals().catch(() => {}); // unreachable engine: the next tick tries again
      this.#timer = setTimeout(tick, interval * 1000);
    };
    tick();
  }

  /** Stops the timer. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** This node's counters now. */
  own(): NodeStats {
    const ctx = this.#node.context;
    let connected = 0;
    for (const session of ctx.sessions.values()) if (session.link !== undefined) connected++;
    return {
      node: this.#node.incarnation,
      clientsConnected: connected,
      messagesReceived: ctx.stats.messagesReceived,
      messagesSent: ctx.stats.messagesSent,
      subscriptions: ctx.router.size,
    };
  }

  /** Stores this node's counters and publishes the sums over every live node. */
  async publishTotals(): Promise<void> {
    const node = this.#node;
    if (node.state !== "up") return;
    await node.engine.putStats(this.own());
    const all = await node.engine.stats();
    if (this.#stopped) return;
    const sum = (key: Exclude<keyof NodeStats, "node">) => all.reduce((n, stats) => n + stats[key], 0);
    this.#publish("nodes", all.length);
    this.#publish("clients/connected", sum("clientsConnected"));
    this.#publish("messages/received", sum("messagesReceived"));
    this.#publish("messages/sent", sum("messagesSent"));
    this.#publish("subscriptions/count", sum("subscriptions"));
    this.#publish("routes/version", this.routesVersion);
  }

  /** A route changed: `$SYS/cluster/routes/version` goes out at the end of the turn. */
  routesChanged(): void {
    if (this.#routesScheduled) return;
    this.#routesScheduled = true;
    setImmediate(() => {
      this.#routesScheduled = false;
      if (!this.#stopped && this.#node.state === "up") this.#publish("routes/version", this.routesVersion);
    });
  }

  #publish(name: string, value: number): void {
    this.#node.context.publish({
      topic: `$SYS/cluster/${name}`,
      payload: utf8Encode(String(value)),
      qos: 0,
      retain: true,
    });
  }
}
