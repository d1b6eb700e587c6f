/**
 * An in-memory {@linkcode ClusterEngine}: one {@linkcode MemoryCluster} (`memory_cluster.ts`) holds what Redis
 * would, and each broker node in the same process gets its own engine from it. Faults are injected on the
 * cluster. Passes the same contract suite as the Redis engine (`tests/cluster/engine_contract.ts`).
 *
 * @module
 */

import type { Message } from "../broker/storage/persistence.ts";
import {
  type Claim,
  type ClaimOptions,
  type ClusterEngine,
  type ClusterEvent,
  ClusterUnavailableError,
  type CommitBatch,
  type CommitOutcome,
  type ForwardBatch,
  type ForwardedMessage,
  type Incarnation,
  type JoinOptions,
  type Membership,
  type NodeStats,
  type ReseedState,
  sessionOpClientId,
} from "./engine.ts";
import type { MemoryCluster, ReleaseWaiter } from "./memory_cluster.ts";

export { MemoryCluster, type MemoryFaults } from "./memory_cluster.ts";

/** One node's view of a {@linkcode MemoryCluster}. */
export class MemoryClusterEngine implements ClusterEngine {
  readonly name = "memory";
  readonly #cluster: MemoryCluster;
  leaseMs: number;
  incarnation: Incarnation = "";
  #listener: ((event: ClusterEvent) => void) | undefined;
  #state: "new" | "joined" | "closed" = "new";
  /** Events kept while this node is cut off: delivered in order when it is back (lossy inboxes dropped). */
  #held: ClusterEvent[] = [];
  #reachable = true;
  #address: string | undefined;
  #generation = 0;
  #renewTimer: ReturnType<typeof setInterval> | undefined;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();

  /** Made by {@linkcode MemoryCluster.engine}. */
  constructor(cluster: MemoryCluster, leaseMs: number) {
    this.#cluster = cluster;
    this.leaseMs = leaseMs;
  }

  async join(options: JoinOptions): Promise<Membership> {
    await this.#call();
    const cluster = this.#cluster;
    this.leaseMs = options.leaseMs ?? this.leaseMs;
    this.incarnation = `${options.node}-${crypto.randomUUID().slice(0, 8)}`;
    this.#listener = options.listener;
    this.#address = options.address;
    this.#state = "joined";
    this.#generation = cluster.generation;
    this.#held = [];
    this.#reachable = true;
    cluster.broadcast({ kind: "node", node: this.incarnation, state: "joined" });
    cluster.nodes.set(this.incarnation, {
      engine: this,
      expiresAt: Date.now() + this.leaseMs,
      state: "live",
      address: options.address,
    });
    for (const [node, filters] of cluster.routes) {
      if (!cluster.isLive(node)) continue;
      for (const filter of filters) {
        this.emit({ kind: "route", node, op: "add", filter, version: cluster.routeVersion });
      }
    }
    cluster.startSweeper(this.leaseMs);
    if (this.#renewTimer === undefined) {
      this.#renewTimer = setInterval(() => this.#renew(), Math.max(5, Math.floor(this.leaseMs / 4)));
    }
    return { incarnation: this.incarnation, leaseMs: this.leaseMs, secret: cluster.secret };
  }

  async leave(): Promise<void> {
    if (this.#state !== "joined") return;
    await this.#call();
    const record = this.#cluster.nodes.get(this.incarnation);
    if (record !== undefined && record.state === "live") {
      // Declared dead at once: the sweeper's path, so its sessions are adopted without waiting for the lease.
      record.state = "dead";
      this.#cluster.broadcast({ kind: "node", node: this.incarnation, state: "dead" });
    }
  }

  close(): Promise<void> {
    this.#state = "closed";
    this.#listener = undefined;
    if (this.#renewTimer !== undefined) clearInterval(this.#renewTimer);
    this.#renewTimer = undefined;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    return Promise.resolve();
  }

  async liveNodes(): Promise<readonly Incarnation[]> {
    await this.#call();
    return [...this.#cluster.nodes.keys()].filter((node) => this.#cluster.isLive(node)).sort();
  }

  async peerAddress(node: Incarnation): Promise<string | undefined> {
    await this.#call();
    return this.#cluster.nodes.get(node)?.address;
  }

  async addRoutes(filters: readonly string[]): Promise<number> {
    await this.#call();
    return this.#changeRoutes(filters, "add");
  }

  async removeRoutes(filters: readonly string[]): Promise<number> {
    await this.#call();
    return this.#changeRoutes(filters, "remove");
  }

  #changeRoutes(filters: readonly string[], op: "add" | "remove"): number {
    const cluster = this.#cluster;
    let set = cluster.routes.get(this.incarnation);
    if (set === undefined) cluster.routes.set(this.incarnation, set = new Set());
    for (const filter of filters) {
      if (op === "add" ? set.has(filter) : !set.has(filter)) continue;
      if (op === "add") set.add(filter);
      else set.delete(filter);
      const version = ++cluster.routeVersion;
      cluster.broadcast({ kind: "route", node: this.incarnation, op, filter, version });
    }
    return cluster.routeVersion;
  }

  async routes(): Promise<
    { readonly version: number; readonly nodes: ReadonlyMap<Incarnation, readonly string[]> }
  > {
    await this.#call();
    const nodes = new Map<Incarnation, readonly string[]>();
    for (const [node, filters] of this.#cluster.routes) {
      if (this.#cluster.isLive(node)) nodes.set(node, [...filters]);
    }
    return { version: this.#cluster.routeVersion, nodes };
  }

  forwardLossy(batches: readonly ForwardBatch[]): void {
    const cluster = this.#cluster;
    if (!cluster.reachable(this.incarnation) || cluster.faults.dropLossy) return;
    for (const batch of batches) {
      const record = cluster.nodes.get(batch.to);
      if (record === undefined || record.state !== "live") continue;
      record.engine.emit({
        kind: "inbox",
        batch: { from: this.incarnation, kind: "lossy", messages: batch.messages },
      });
    }
  }

  async claim(clientId: string, options: ClaimOptions = {}): Promise<Claim> {
    await this.#call();
    const cluster = this.#cluster;
    const record = cluster.client(clientId);
    const { owner, claimer } = record;
    const me = this.incarnation;
    // A claim under way on another live node is served first (it hands over once it has the id), else the owner.
    const holder = claimer !== undefined && claimer !== me && cluster.isLive(claimer)
      ? claimer
      : owner !== undefined && owner !== me && cluster.isLive(owner)
      ? owner
      : undefined;
    let previous: Claim["previous"];
    if (holder !== undefined) {
      record.claimer = me;
      const released = Promise.withResolvers<void>();
      const waiter: ReleaseWaiter = { from: holder, by: me, resolve: released.resolve, stepping: undefined };
      let waiters = cluster.releases.get(clientId);
      if (waiters === undefined) cluster.releases.set(clientId, waiters = new Set());
      waiters.add(waiter);
      cluster.nodes.get(holder)!.engine.emit({ kind: "takeover", clientId, by: me });
      const stored = record.session; // as when asked, like the Redis engine's answer
      waiter.stepping = options.waiting === undefined ? undefined : () => options.waiting!(stored);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), options.timeoutMs ?? 3000);
        this.#timers.add(timer!);
      });
      const outcome = await Promise.race([released.promise.then(() => "released" as const), timeout]);
      clearTimeout(timer);
      this.#timers.delete(timer!);
      waiters.delete(waiter);
      if (waiters.size === 0) cluster.releases.delete(clientId);
      await this.#call();
      previous = { node: holder, outcome };
    }
    const now = cluster.client(clientId); // the record may be new after a data loss
    if (now.claimer === me) now.claimer = undefined;
    const epoch = cluster.own(clientId, this.incarnation);
    const claim = cluster.loaded(clientId, epoch);
    if (options.will !== undefined) cluster.client(clientId).will = options.will;
    return previous === undefined ? claim : { ...claim, previous };
  }

  steppingDown(clientId: string, by: Incarnation): void {
    this.#tellWaiter(clientId, by, (waiter) => {
      const told = waiter.stepping;
      waiter.stepping = undefined;
      told?.();
    });
  }

  decline(clientId: string, by: Incarnation): void {
    this.#tellWaiter(clientId, by, (waiter) => waiter.resolve());
  }

  /**
   * Gives `tell` the claim of `by` that waits on this node for `clientId`, as an event would reach it: after the
   * delay, not while this node is cut off, and not once `by` is dead (best effort, like the Redis engine's notes).
   */
  #tellWaiter(clientId: string, by: Incarnation, tell: (waiter: ReleaseWaiter) => void): void {
    const cluster = this.#cluster;
    const me = this.incarnation;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!cluster.reachable(me) || !cluster.isLive(by)) return;
      for (const waiter of cluster.releases.get(clientId) ?? []) {
        if (waiter.from === me && waiter.by === by) tell(waiter);
      }
    }, cluster.faults.delayMs);
    this.#timers.add(timer);
  }

  async release(clientId: string, epoch: number): Promise<void> {
    await this.#call();
    const cluster = this.#cluster;
    const record = cluster.client(clientId);
    if (record.owner !== this.incarnation || cluster.epochs.get(clientId) !== epoch) return;
    cluster.owned.get(this.incarnation)?.delete(clientId);
    record.owner = undefined;
    for (const waiter of cluster.releases.get(clientId) ?? []) {
      if (waiter.from === this.incarnation) waiter.resolve();
    }
  }

  async commit(batch: CommitBatch): Promise<CommitOutcome> {
    await this.#call();
    const cluster = this.#cluster;
    if (!cluster.isLive(this.incarnation)) {
      // A node declared dead owns nothing any more: every write of it is stale.
      return { refused: [...new Set(batch.ops.map((fenced) => sessionOpClientId(fenced.op)))] };
    }
    const refused = new Set<string>();
    for (const { op, epoch } of batch.ops) {
      const clientId = sessionOpClientId(op);
      if (refused.has(clientId)) continue;
      const record = cluster.clients.get(clientId);
      if (record?.owner !== this.incarnation || cluster.epochs.get(clientId) !== epoch) refused.add(clientId);
    }
    for (const { op } of batch.ops) {
      const clientId = sessionOpClientId(op);
      if (refused.has(clientId)) continue;
      const record = cluster.client(clientId);
      switch (op.kind) {
        case "putSession":
          record.session = op.session;
          break;
        case "deleteSession":
          record.session = undefined;
          record.outgoing.clear();
          record.incoming.clear();
          record.will = undefined;
          cluster.owned.get(this.incarnation)?.delete(op.clientId);
          record.owner = undefined;
          break;
        case "putOutgoing":
          record.outgoing.set(op.entry.seq, op.entry);
          break;
        case "deleteOutgoing":
          record.outgoing.delete(op.seq);
          break;
        case "putIncoming":
          record.incoming.add(op.packetId);
          break;
        case "deleteIncoming":
          record.incoming.delete(op.packetId);
          break;
        case "putWill":
          record.will = op.will;
          break;
        case "deleteWill":
          record.will = undefined;
          break;
      }
    }
    for (const forward of batch.forwards) {
      const inbox = cluster.inbox(forward.to);
      const entry = { seq: ++cluster.inboxSeq, from: this.incarnation, messages: forward.messages };
      inbox.entries.push(entry);
      const record = cluster.nodes.get(forward.to);
      if (record !== undefined && record.state === "live") {
        record.engine.emit({
          kind: "inbox",
          batch: { from: entry.from, kind: "durable", messages: entry.messages, cursor: String(entry.seq) },
        });
      }
    }
    if (batch.cursor !== undefined) {
      const inbox = cluster.inbox(this.incarnation);
      const cursor = Number(batch.cursor);
      if (cursor > inbox.committed) inbox.committed = cursor;
      inbox.entries = inbox.entries.filter((entry) => entry.seq > inbox.committed);
    }
    return { refused: [...refused] };
  }

  async owned(node: Incarnation): Promise<readonly string[]> {
    await this.#call();
    return [...(this.#cluster.owned.get(node) ?? [])];
  }

  async adopt(clientId: string, node: Incarnation): Promise<Claim | undefined> {
    await this.#call();
    const cluster = this.#cluster;
    const record = cluster.clients.get(clientId);
    if (record === undefined || record.owner !== node || cluster.isLive(node)) return undefined;
    return cluster.loaded(clientId, cluster.own(clientId, this.incarnation));
  }

  async deadInbox(node: Incarnation): Promise<readonly ForwardedMessage[]> {
    await this.#call();
    const inbox = this.#cluster.inboxes.get(node);
    if (inbox === undefined) return [];
    return inbox.entries.filter((entry) => entry.seq > inbox.committed).flatMap((entry) => entry.messages);
  }

  async forget(node: Incarnation): Promise<void> {
    await this.#call();
    const cluster = this.#cluster;
    if (cluster.isLive(node)) return;
    cluster.inboxes.delete(node);
    const routes = cluster.routes.get(node);
    cluster.routes.delete(node);
    for (const filter of routes ?? []) {
      cluster.broadcast({ kind: "route", node, op: "remove", filter, version: ++cluster.routeVersion });
    }
    if ((cluster.owned.get(node)?.size ?? 0) === 0) cluster.owned.delete(node);
    cluster.stats.delete(node);
  }

  async retain(message: Message): Promise<void> {
    await this.#call();
    const cluster = this.#cluster;
    if (message.payload.length === 0) {
      cluster.retained.delete(message.topic);
      cluster.broadcast({ kind: "retained", topic: message.topic });
    } else {
      cluster.retained.set(message.topic, message);
      cluster.broadcast({ kind: "retained", topic: message.topic, message });
    }
  }

  async loadRetained(): Promise<readonly Message[]> {
    await this.#call();
    return [...this.#cluster.retained.values()];
  }

  async reseed(state: ReseedState): Promise<void> {
    await this.#call();
    const cluster = this.#cluster;
    this.#changeRoutes(state.routes, "add");
    for (const message of state.retained) {
      if (!cluster.retained.has(message.topic)) cluster.retained.set(message.topic, message);
    }
    for (const entry of state.sessions) {
      const record = cluster.client(entry.clientId);
      if (record.owner !== undefined && record.owner !== this.incarnation) continue;
      record.owner = this.incarnation;
      let set = cluster.owned.get(this.incarnation);
      if (set === undefined) cluster.owned.set(this.incarnation, set = new Set());
      set.add(entry.clientId);
      if ((cluster.epochs.get(entry.clientId) ?? 0) < entry.epoch) {
        cluster.epochs.set(entry.clientId, entry.epoch);
      }
      if (entry.session !== undefined) {
        const { outgoing, incoming, ...stored } = entry.session;
        record.session = stored;
        for (const message of outgoing) record.outgoing.set(message.seq, message);
        for (const id of incoming) record.incoming.add(id);
      }
      if (entry.will !== undefined) record.will = entry.will;
    }
  }

  async putStats(stats: NodeStats): Promise<void> {
    await this.#call();
    this.#cluster.stats.set(this.incarnation, stats);
  }

  async stats(): Promise<readonly NodeStats[]> {
    await this.#call();
    const cluster = this.#cluster;
    return [...cluster.stats.values()].filter((stats) => cluster.isLive(stats.node));
  }

  /** Queues `event` for this node's listener (held while it is cut off; lossy inboxes then dropped). */
  emit(event: ClusterEvent): void {
    if (this.#state !== "joined") return;
    if (!this.#reachable) {
      if (!(event.kind === "inbox" && event.batch.kind === "lossy")) this.#held.push(event);
      return;
    }
    const delay = this.#cluster.faults.delayMs;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#listener?.(event);
    }, delay);
    this.#timers.add(timer);
  }

  /** The cluster's outage or this node's partition began or ended. */
  reachabilityChanged(): void {
    if (this.#state !== "joined") return;
    const cluster = this.#cluster;
    const reachable = cluster.reachable(this.incarnation);
    if (reachable === this.#reachable) return;
    this.#reachable = reachable;
    if (!reachable) {
      this.#deliver({ kind: "connection", state: "down" });
      return;
    }
    if (cluster.generation !== this.#generation) {
      // The engine lost its data: what was held refers to it. Re-register (no tombstone survived) and re-seed.
      this.#generation = cluster.generation;
      this.#held = [];
      cluster.nodes.set(this.incarnation, {
        engine: this,
        expiresAt: Date.now() + this.leaseMs,
        state: "live",
        address: this.#address,
      });
      this.#deliver({ kind: "connection", state: "reset" });
      return;
    }
    const record = cluster.nodes.get(this.incarnation);
    if (record === undefined || record.state !== "live") {
      this.#held = [];
      this.#deliver({ kind: "connection", state: "fenced" });
      return;
    }
    record.expiresAt = Date.now() + this.leaseMs;
    this.#deliver({ kind: "connection", state: "up" });
    const held = this.#held;
    this.#held = [];
    for (const event of held) this.emit(event);
    // Durable batches delivered but not committed come again (at least once; ids de-duplicate).
    const inbox = cluster.inboxes.get(this.incarnation);
    for (const entry of inbox?.entries ?? []) {
      if (entry.seq <= inbox!.committed) continue;
      if (held.some((event) => event.kind === "inbox" && event.batch.cursor === String(entry.seq))) continue;
      this.emit({
        kind: "inbox",
        batch: { from: entry.from, kind: "durable", messages: entry.messages, cursor: String(entry.seq) },
      });
    }
  }

  #deliver(event: ClusterEvent): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#listener?.(event);
    }, this.#cluster.faults.delayMs);
    this.#timers.add(timer);
  }

  #renew(): void {
    if (this.#state !== "joined") return;
    const cluster = this.#cluster;
    if (!cluster.reachable(this.incarnation)) return;
    const record = cluster.nodes.get(this.incarnation);
    if (record === undefined || record.state !== "live") {
      if (this.#reachable) {
        this.#reachable = false; // nothing more reaches a fenced node
        this.#deliver({ kind: "connection", state: "fenced" });
      }
      return;
    }
    record.expiresAt = Date.now() + this.leaseMs;
  }

  async #call(): Promise<void> {
    const delay = this.#cluster.faults.delayMs;
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    if (this.#state === "closed") throw new ClusterUnavailableError("the engine is closed");
    if (!this.#cluster.reachable(this.incarnation || undefined)) {
      throw new ClusterUnavailableError(
        `memory cluster unreachable from ${this.incarnation || "a new node"}`,
      );
    }
  }
}
