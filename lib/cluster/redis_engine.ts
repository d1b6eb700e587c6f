/**
 * The {@linkcode ClusterEngine} on Redis (`../shared/CLUSTER.md` §3): leases and tombstones, a control stream for
 * route, retained, takeover and membership events, a lossy and a durable inbox stream per node, sessions in
 * hashes fenced by an epoch in Lua, and the cluster id that tells a reconnecting node whether Redis kept its data.
 *
 * Two connections: one for commands (pipelined; every command bounded by a timeout, failing at once while
 * disconnected) and one for the blocking `XREAD`. The lease is renewed every `leaseMs / 4`; Redis's clock decides
 * expiry. A node that has not renewed for `leaseMs * 0.75` by its own clock (paused, cut off) delivers nothing
 * until a renewal tells it whether it is still alive.
 *
 * One Redis (or a Sentinel-managed master with replicas), not Redis Cluster: scripts touch other nodes' keys by
 * name. What Redis acknowledged is as durable as its AOF policy makes it (`appendfsync everysec`: about the last
 * second, up to two when the disk is slow, can be lost in a Redis crash).
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { Message } from "../broker/storage/persistence.ts";
import { RedisClaims } from "./_redis_claims.ts";
import { openRedis, redactUrl, runScript, unavailable } from "./_redis_client.ts";
import { opsByClient, queueCommit, queueReseed, refusedClients, type Writer } from "./_redis_sessions.ts";
import { RedisKeys } from "./_redis_keys.ts";
import { type LeaseHolder, leaveLease, registerLease, renewLease, sweepLeases } from "./_redis_lease.ts";
import { StreamReader } from "./_redis_reader.ts";
import {
  changeRoutes,
  forgetNode,
  queueLossy,
  readDeadInbox,
  readRetained,
  readSnapshot,
  readStats,
  type Snapshot,
  writeRetained,
  writeStats,
} from "./_redis_shared.ts";
import {
  type Claim,
  type ClaimOptions,
  type ClusterEngine,
  type ClusterEvent,
  ClusterUnavailableError,
  type CommitBatch,
  type CommitOutcome,
  type ConnectionEvent,
  type ForwardBatch,
  type ForwardedMessage,
  type Incarnation,
  type JoinOptions,
  type Membership,
  type NodeStats,
  type ReseedState,
} from "./engine.ts";

const DEFAULT_LEASE_MS = 10_000;

/** 256 random bits, hex. */
function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Options for {@linkcode RedisClusterEngine}. */
export interface RedisClusterEngineOptions {
  /** `redis://HOST:PORT`, `rediss://…` or `unix:///path`. */
  readonly url: string;
  /** Key prefix. @default {"mq:"} */
  readonly prefix?: string;
  /**
   * Bound on every command, ms: a hung Redis is noticed after this. Shorter is not better on a loaded machine,
   * where a slow answer would be taken for an outage.
   *
   * @default {Math.max(1000, leaseMs / 2)}
   */
  readonly commandTimeoutMs?: number;
}

type RenewResult = "ok" | "down" | "reset" | "fenced";

/** See the module doc. */
export class RedisClusterEngine implements ClusterEngine {
  readonly name: string;
  readonly #url: string;
  readonly #keys: RedisKeys;
  readonly #prefix: string;
  readonly #commandTimeoutMs: number | undefined;
  readonly #claims: RedisClaims;
  #redis: Redis | undefined;
  #reader: StreamReader | undefined;
  #incarnation: Incarnation = "";
  #leaseMs = DEFAULT_LEASE_MS;
  #clusterId = "";
  /** The peer links' secret: kept across a Redis data loss, so the nodes write the same one back. */
  #secret = "";
  #address: string | undefined;
  #listener: ((event: ClusterEvent) => void) | undefined;
  #state: "new" | "up" | "down" | "fenced" | "closed" = "new";
  /** performance.now() of the last renewal Redis confirmed. */
  #renewedAt = 0;
  /** performance.now() since which the connection has been up without a break (the sweeper waits a lease). */
  #upSince = 0;
  #renewTimer: ReturnType<typeof setInterval> | undefined;
  #renewing: Promise<RenewResult> | undefined;
  #stopping: Promise<void> = Promise.resolve();
  #statsGapMs = 0;
  #statsAt = 0;

  constructor(options: RedisClusterEngineOptions) {
    this.#url = options.url;
    this.name = redactUrl(options.url);
    this.#prefix = options.prefix ?? "mq:";
    this.#commandTimeoutMs = options.commandTimeoutMs;
    this.#keys = new RedisKeys(this.#prefix);
    this.#claims = new RedisClaims({
      keys: this.#keys,
      prefix: this.#prefix,
      incarnation: () => this.#incarnation,
      call: (body) => this.#call(body),
      upConnection: () => this.#state === "up" ? this.#redis : undefined,
    });
  }

  /** This node's incarnation once joined. */
  get incarnation(): Incarnation {
    return this.#incarnation;
  }

  // -- membership

  async join(options: JoinOptions): Promise<Membership> {
    if (this.#state === "closed") throw new ClusterUnavailableError("the engine is closed");
    await this.#stopConnections();
    this.#leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.#listener = options.listener;
    this.#address = options.address;
    this.#incarnation = `${options.node}-${crypto.randomUUID().slice(0, 8)}`;
    const timeout = this.#commandTimeoutMs ?? Math.max(1000, Math.floor(this.#leaseMs / 2));
    const redis = await openRedis(this.#url, { commandTimeoutMs: timeout, name: this.#incarnation });
    this.#redis = redis;
    try {
      const result = await this.#register(redis);
      if (result !== "ok") throw new ClusterUnavailableError(`redis ${this.name}: could not register`);
      const readerRedis = await openRedis(this.#url, {
        commandTimeoutMs: timeout + this.#blockMs(),
        name: `${this.#incarnation}:reader`,
      });
      const reader: StreamReader = new StreamReader(readerRedis, {
        keys: this.#keys,
        incarnation: this.#incarnation,
        deliverable: () => this.#deliverable(),
        emit: (event) => this.#emit(event),
        released: (clientId, node) => this.#claims.released(clientId, node),
        steppingDown: (clientId, node) => this.#claims.steppedDown(clientId, node),
        resync: (): Promise<void> => this.#resync(reader, true),
      }, this.#blockMs());
      this.#reader = reader;
      this.#state = "up";
      this.#renewedAt = this.#upSince = performance.now();
      await this.#resync(reader, false);
      redis.on("close", () => this.#lost());
      redis.on("ready", () => void this.#renew());
      this.#renewTimer = setInterval(() => void this.#tick(), Math.max(5, Math.floor(this.#leaseMs / 4)));
      reader.start();
    } catch (e) {
      this.#state = "new";
      await this.#stopConnections();
      throw unavailable(this.#url, e);
    }
    return { incarnation: this.#incarnation, leaseMs: this.#leaseMs, secret: this.#secret };
  }

  async leave(): Promise<void> {
    if (this.#state !== "up" && this.#state !== "down") return;
    await this.#call((redis) => leaveLease(redis, this.#holder()));
  }

  async close(): Promise<void> {
    this.#state = "closed";
    this.#listener = undefined;
    await this.#stopConnections();
  }

  async liveNodes(): Promise<readonly Incarnation[]> {
    const nodes = await this.#call((redis) =>
      runScript(redis, "mqLiveNodes", [this.#keys.nodes], [this.#prefix])
    ) as string[];
    return nodes.sort();
  }

  async peerAddress(node: Incarnation): Promise<string | undefined> {
    return await this.#call((redis) => redis.hget(this.#keys.peers, node)) ?? undefined;
  }

  // -- routes

  addRoutes(filters: readonly string[]): Promise<number> {
    return this.#changeRoutes(filters, "add");
  }

  removeRoutes(filters: readonly string[]): Promise<number> {
    return this.#changeRoutes(filters, "remove");
  }

  #changeRoutes(filters: readonly string[], op: "add" | "remove"): Promise<number> {
    return this.#call((redis) => changeRoutes(redis, this.#writer(), filters, op));
  }

  async routes(): Promise<
    { readonly version: number; readonly nodes: ReadonlyMap<Incarnation, readonly string[]> }
  > {
    const { version, nodes } = await this.#snapshot();
    return { version, nodes };
  }

  #snapshot(): Promise<Snapshot> {
    return this.#call((redis) => readSnapshot(redis, this.#keys, this.#prefix));
  }

  // -- forwarding

  forwardLossy(batches: readonly ForwardBatch[]): void {
    const redis = this.#redis;
    if (redis === undefined || this.#state !== "up" || batches.length === 0) return;
    const pipeline = redis.pipeline();
    queueLossy(pipeline, this.#writer(), batches);
    pipeline.exec().catch(() => {
      // At most once: a lost QoS 0 forward is the caller's drop to count, not an error.
    });
  }

  // -- sessions

  claim(clientId: string, options: ClaimOptions = {}): Promise<Claim> {
    return this.#claims.claim(clientId, options);
  }

  steppingDown(clientId: string, by: Incarnation): void {
    this.#claims.steppingDown(clientId, by);
  }

  release(clientId: string, epoch: number): Promise<void> {
    return this.#claims.release(clientId, epoch);
  }

  decline(clientId: string, by: Incarnation): void {
    this.#claims.decline(clientId, by);
  }

  async commit(batch: CommitBatch): Promise<CommitOutcome> {
    const byClient = opsByClient(batch.ops);
    const clients = [...byClient.keys()];
    // A fenced node owns nothing any more: every write of it is stale.
    if (this.#state === "fenced") return { refused: clients };
    const replies = await this.#call((redis) => {
      const pipeline = redis.pipeline();
      queueCommit(pipeline, this.#writer(), byClient, batch);
      return pipeline.exec();
    });
    return { refused: refusedClients(replies ?? [], clients, (error) => unavailable(this.#url, error)) };
  }

  async owned(node: Incarnation): Promise<readonly string[]> {
    return await this.#call((redis) => redis.smembers(this.#keys.owned(node)));
  }

  adopt(clientId: string, node: Incarnation): Promise<Claim | undefined> {
    return this.#claims.adopt(clientId, node);
  }

  deadInbox(node: Incarnation): Promise<readonly ForwardedMessage[]> {
    return this.#call((redis) => readDeadInbox(redis, this.#keys, node));
  }

  forget(node: Incarnation): Promise<void> {
    return this.#call(async (redis) => {
      await forgetNode(redis, this.#keys, node);
      await redis.hdel(this.#keys.peers, node);
    });
  }

  // -- retained

  retain(message: Message): Promise<void> {
    return this.#call((redis) => writeRetained(redis, this.#keys, message));
  }

  loadRetained(): Promise<readonly Message[]> {
    return this.#call((redis) => readRetained(redis, this.#keys));
  }

  // -- recovery and stats

  async reseed(state: ReseedState): Promise<void> {
    if (state.routes.length > 0) await this.addRoutes(state.routes);
    await this.#call((redis) => {
      const pipeline = redis.pipeline();
      queueReseed(pipeline, this.#writer(), state);
      return pipeline.exec();
    });
  }

  async putStats(stats: NodeStats): Promise<void> {
    const now = performance.now();
    if (this.#statsAt > 0) this.#statsGapMs = now - this.#statsAt;
    this.#statsAt = now;
    const keep = Math.max(3 * this.#leaseMs, Math.ceil(3 * this.#statsGapMs));
    await this.#call((redis) => writeStats(redis, this.#writer(), stats, keep));
  }

  async stats(): Promise<readonly NodeStats[]> {
    const nodes = await this.liveNodes();
    return await this.#call((redis) => readStats(redis, this.#keys, nodes));
  }

  // -- internals

  #writer(): Writer {
    return { keys: this.#keys, prefix: this.#prefix, me: this.#incarnation };
  }

  #blockMs(): number {
    return Math.max(50, Math.min(1000, Math.floor(this.#leaseMs / 4)));
  }

  /** Runs `body` on the command connection; anything but a script's own error is "unavailable". */
  async #call<T>(body: (redis: Redis) => Promise<T>): Promise<T> {
    const redis = this.#redis;
    if (redis === undefined || this.#state !== "up") {
      throw new ClusterUnavailableError(
        `redis ${this.name}: ${this.#state === "down" ? "unreachable" : `engine ${this.#state}`}`,
      );
    }
    try {
      return await body(redis);
    } catch (e) {
      throw unavailable(this.#url, e);
    }
  }

  /** Registers the lease (join, or re-registration after Redis lost its data). */
  async #register(redis: Redis): Promise<"ok" | "fenced"> {
    const clusterId = await registerLease(redis, this.#holder());
    if (clusterId === undefined) return "fenced";
    this.#clusterId = clusterId;
    await this.#registerPeer(redis);
    return "ok";
  }

  /** Reads (or, first in the cluster, sets) the peer secret, and advertises this node's peer address. */
  async #registerPeer(redis: Redis): Promise<void> {
    const keys = this.#keys;
    const pipeline = redis.pipeline().set(keys.secret, this.#secret || randomSecret(), "NX").get(keys.secret);
    if (this.#address !== undefined) pipeline.hset(keys.peers, this.#incarnation, this.#address);
    const replies = await pipeline.exec();
    const secret = replies?.[1]?.[1];
    if (typeof secret !== "string") throw new Error("no peer secret in redis");
    this.#secret = secret;
  }

  #holder(): LeaseHolder {
    return { keys: this.#keys, prefix: this.#prefix, me: this.#incarnation, leaseMs: this.#leaseMs };
  }

  /**
   * Takes a consistent route table and reads the control stream from there. At join the node loads retained
   * messages itself; after a gap (`retained`) they are reported again, since their events may be gone.
   */
  async #resync(reader: StreamReader, retained: boolean): Promise<void> {
    const snapshot = await this.#snapshot();
    const current = await this.loadRetained();
    reader.reposition({ ...reader.positions, ctl: snapshot.lastId }, snapshot.seq);
    reader.applySnapshot(snapshot.version, snapshot.nodes);
    if (retained) reader.applyRetained(current);
    else for (const message of current) reader.retained.add(message.topic);
  }

  /** Whether the reader may hand events to the node now (renews first if the lease may have lapsed). */
  async #deliverable(): Promise<boolean> {
    if (this.#state !== "up") return false;
    if (performance.now() - this.#renewedAt > this.#leaseMs * 0.75) await this.#renew();
    return this.#state === "up";
  }

  async #tick(): Promise<void> {
    await this.#renew();
    if (this.#state === "up" && performance.now() - this.#upSince > this.#leaseMs * 1.25) await this.#sweep();
  }

  /** One renewal at a time; its outcome moves the state and tells the node. */
  #renew(): Promise<RenewResult> {
    this.#renewing ??= this.#renewOnce().finally(() => this.#renewing = undefined);
    return this.#renewing;
  }

  async #renewOnce(): Promise<RenewResult> {
    const redis = this.#redis;
    const reader = this.#reader;
    if (redis === undefined || reader === undefined) return "down";
    if (this.#state === "closed" || this.#state === "fenced") {
      return this.#state === "fenced" ? "fenced" : "down";
    }
    const renewal = await renewLease(redis, this.#holder(), this.#clusterId).catch(() => undefined);
    if (renewal === undefined) {
      this.#lost();
      return "down";
    }
    if (renewal.outcome === "fenced") {
      this.#fence();
      return "fenced";
    }
    if (renewal.outcome === "reset") {
      try {
        if (await this.#register(redis) !== "ok") {
          this.#fence();
          return "fenced";
        }
        reader.reposition({ ctl: "0-0", lossy: "0-0", durable: "0-0" }, 0);
      } catch {
        this.#lost();
        return "down";
      }
      this.#renewedAt = performance.now();
      this.#upSince = this.#renewedAt;
      this.#state = "up";
      this.#notify("reset");
      return "reset";
    }
    this.#renewedAt = performance.now();
    const wasDown = this.#state === "down";
    try {
      if (wasDown) {
        // Durable batches read but not committed come again (at least once; ids de-duplicate).
        const cursor = await redis.get(this.#keys.cursor(this.#incarnation)) ?? "0-0";
        reader.reposition({ ...reader.positions, durable: cursor }, reader.seq);
      }
    } catch {
      this.#lost();
      return "down";
    }
    if (wasDown) {
      this.#state = "up";
      this.#upSince = performance.now();
      this.#notify("up");
    }
    return "ok";
  }

  async #sweep(): Promise<void> {
    const redis = this.#redis;
    if (redis === undefined) return;
    try {
      await sweepLeases(redis, this.#holder());
    } catch {
      // The next tick tries again; a renewal failure reports the outage.
    }
  }

  /** The command connection broke or a renewal failed. */
  #lost(): void {
    if (this.#state !== "up") return;
    this.#state = "down";
    this.#notify("down");
  }

  #fence(): void {
    if (this.#state === "fenced" || this.#state === "closed") return;
    this.#state = "fenced";
    // Nothing more is read or renewed: a fenced node comes back only by joining as a new incarnation.
    void this.#stopConnections();
    this.#notify("fenced");
  }

  #notify(state: ConnectionEvent["state"]): void {
    this.#listener?.({ kind: "connection", state });
  }

  #emit(event: ClusterEvent): void {
    if (event.kind === "connection" && event.state === "fenced") return this.#fence();
    if (this.#state !== "up") return;
    this.#listener?.(event);
  }

  /** Stops the timer and both connections; resolves once every stop so far has finished. */
  #stopConnections(): Promise<void> {
    this.#stopping = Promise.all([this.#stopping, this.#stopOnce()]).then(() => {});
    return this.#stopping;
  }

  async #stopOnce(): Promise<void> {
    if (this.#renewTimer !== undefined) clearInterval(this.#renewTimer);
    this.#renewTimer = undefined;
    const reader = this.#reader;
    const redis = this.#redis;
    this.#reader = undefined;
    this.#redis = undefined;
    if (reader !== undefined) await reader.stop();
    if (redis !== undefined) {
      redis.removeAllListeners("close");
      redis.removeAllListeners("ready");
      redis.disconnect();
    }
    await this.#renewing;
  }
}
