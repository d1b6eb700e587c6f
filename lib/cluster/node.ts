/**
 * The broker's cluster node: joins the engine, keeps the remote route table and this node's route summary,
 * forwards and receives messages (`forwarding.ts`), replicates retained messages, owns client ids with an epoch
 * (`ownership.ts`: claims, takeovers, adoption of a dead node's sessions and wills), fences itself when its lease
 * lapses or the engine stays away for `leaseMs * 0.75`, and recovers when the engine returns. A broker without a
 * cluster never builds one.
 *
 * It is also the broker's {@linkcode Persistence} in a cluster ({@linkcode ClusterNode.store}): every session
 * write goes to the engine fenced by the epoch this node holds, in the same group commit as the durable forwards
 * and the inbox cursor.
 *
 * @module
 */

import type { Connection } from "../broker/connection.ts";
import type { BrokerContext } from "../broker/context.ts";
import type { Message, PersistedState, Persistence } from "../broker/storage/persistence.ts";
import { REASON_CODE } from "../packet/reason_code.ts";
import {
  type ClusterEngine,
  type ClusterEvent,
  ClusterUnavailableError,
  type ForwardedMessage,
  type InboxBatch,
  type Incarnation,
} from "./engine.ts";
import { deliverForwarded, Forwarder, type Moved } from "./forwarding.ts";
import {
  type Adopted,
  adoptFrom,
  beforeResume,
  claimForConnect,
  type ClaimRefusal,
  type EarlyConnack,
  onTakeover,
} from "./ownership.ts";
import { ObservedRouter, RemoteRoutes, RouteSummary } from "./routes.ts";
import { commitToEngine, markCommit } from "./cluster_store.ts";
import { SeenIds } from "./seen_ids.ts";
import { ClusterSys } from "./cluster_sys.ts";
import type { PeerLinkOptions, PeerLinks } from "./peer_link.ts";

/** How a broker joins a cluster. */
export interface ClusterOptions {
  /** The shared engine (`RedisClusterEngine`, or `MemoryClusterEngine` in tests). */
  readonly engine: ClusterEngine;
  /** This node's name (its incarnation is `<node>-<random>`). @default {"node"} */
  readonly node?: string;
  /** Lease time, ms (see `JoinOptions.leaseMs`). @default {10000} */
  readonly leaseMs?: number;
  /** How long a CONNECT waits for another node to release its client id, ms. @default {3000} */
  readonly takeoverTimeoutMs?: number;
  /**
   * Where this node's peer link listens for lossy forwards from other nodes (`peer_link.ts`); `false`: none,
   * every forward goes through the engine. @default {{ host: "127.0.0.1", port: 0 }}
   */
  readonly peer?: PeerLinkOptions | false;
}

/** Where the node is: `up` with the engine, `down` while it is unreachable, `fenced` after its lease lapsed. */
export type NodeState = "new" | "up" | "down" | "fenced" | "closed";

/** One broker's membership in a cluster. */
export class ClusterNode {
  readonly engine: ClusterEngine;
  readonly options: ClusterOptions;
  readonly leaseMs: number;
  readonly summary: RouteSummary;
  readonly remote: RemoteRoutes = new RemoteRoutes();
  readonly router: ObservedRouter;
  readonly forwarder: Forwarder = new Forwarder(this);
  readonly sys: ClusterSys = new ClusterSys(this);
  /** The epoch this node holds for each client id it owns: session writes carry it. */
  readonly epochs = new Map<string, number>();
  /** Sessions that moved to another node, by their `MOVED_PREFIX` router key. */
  readonly moved = new Map<string, Moved>();
  /** Sessions adopted from dead nodes lately (for two leases), whose inboxes are replayed to them. */
  readonly adoptions = new Set<Adopted>();
  /** Client ids another node is taking over, until this node has released them. */
  readonly releasing = new Set<string>();
  /** Client ids whose claim is under way, with what was passed on for them meanwhile. */
  readonly claiming = new Map<string, ForwardedMessage[]>();
  /**
   * Client ids whose claim is under way here while a newer claim on another node asked this node to step down
   * (by that node): this node hands the session over as soon as its own claim has it.
   */
  readonly kicked = new Map<string, Incarnation>();
  /** The CONNECT claims under way here, per client id: a second CONNECT for the id waits for the first. */
  readonly #claims = new Map<string, Promise<unknown>>();
  /** Sessions taken over from another node, with the forwarded ids already given to them (until `until`). */
  readonly #merging = new Map<
    string,
    { readonly ids: Set<string>; readonly originSeq: number; until: number }
  >();
  readonly #seen = new SeenIds();
  readonly store: Persistence;
  state: NodeState = "new";
  incarnation: Incarnation = "";
  /** The direct links to other nodes for lossy forwards, unless `peer: false`. */
  peers: PeerLinks | undefined;
  /** The cluster's shared secret (the peer links authenticate with it). */
  secret = "";
  /** The version of this node's last stored route change. */
  storedVersion = 0;
  #context: BrokerContext | undefined;
  /** The inbox cursor to commit with the next batch (the effects of the batches up to it are in it). */
  cursor: string | undefined;
  #fenceTimer: ReturnType<typeof setTimeout> | undefined;
  #rejoinTimer: ReturnType<typeof setTimeout> | undefined;
  #waiters: (() => void)[] = [];
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  /** Pauses under way ({@linkcode ClusterNode.pause}), each with what ends it early. */
  readonly #pauses = new Map<ReturnType<typeof setTimeout>, () => void>();
  /** Work started by cluster events (adoptions, takeovers, resyncs), which the close waits for. */
  readonly #tasks = new Set<Promise<void>>();

  /** Built with the broker's context; {@linkcode ClusterNode.attach} gives it the rest. */
  constructor(options: ClusterOptions) {
    this.engine = options.engine;
    this.options = options;
    this.leaseMs = options.leaseMs ?? 10_000;
    this.summary = new RouteSummary(
      (version) => {
        if (version > this.storedVersion) this.storedVersion = version;
        this.sys.routesChanged();
      },
      (error) => this.#engineError("route update", error),
    );
    this.router = new ObservedRouter(this.summary);
    this.store = {
      name: `cluster:${this.engine.name}`,
      load: () => this.#start(),
      commit: (ops) => commitToEngine(this, ops),
      close: () => this.#stop(),
    };
  }

  /** The broker this node belongs to. */
  get context(): BrokerContext {
    return this.#context!;
  }

  /** Called once by the broker's context after it is built. */
  attach(context: BrokerContext): void {
    this.#context = context;
  }

  /** Makes the commit queue cut a batch soon (durable forwards or an inbox cursor wait in it). */
  markCommit(): void {
    markCommit(this.context);
  }

  /** Routes a local PUBLISH to other nodes; see `forwarding.ts`. */
  readonly deliverForwarded = deliverForwarded;

  /** Whether this node holds `clientId` now (its session can be opened without asking the engine). */
  owns(clientId: string): boolean {
    return this.state === "up" && this.epochs.has(clientId) &&
      this.context.sessions.get(clientId) !== undefined;
  }

  /**
   * What a CONNECT waits for before its CONNACK, or `undefined` when nothing: the claim of its client id unless
   * this node holds it (else the inbox of the dead node it was adopted from replayed to it), and its will stored
   * in the engine (so that it is published exactly once, by the adopter, if this node dies while the client is
   * connected). Resolves with a refusal when the client cannot connect. While a claim waits for another node to
   * let go, `early` may answer the CONNECT before it ({@linkcode EarlyConnack}).
   */
  beforeConnack(
    connection: Connection,
    early?: EarlyConnack,
  ): Promise<ClaimRefusal | undefined> | undefined {
    const clientId = connection.clientId;
    const before = this.#claims.get(clientId);
    if (before !== undefined) {
      // Claimed here for an earlier connection (which may have had its CONNACK already): that claim ends first,
      // then this one takes the session over from it, here or wherever it went.
      return before.then(() => connection.isClosed ? undefined : this.beforeConnack(connection, early));
    }
    // Being released to another node: claimed back through the engine, after the claim under way there.
    if (!this.owns(clientId) || this.releasing.has(clientId)) {
      const claimed = claimForConnect(this, connection, clientId, early);
      this.#claims.set(clientId, claimed);
      const done = (): void => {
        if (this.#claims.get(clientId) === claimed) this.#claims.delete(clientId);
      };
      claimed.then(done, done);
      return claimed;
    }
    return beforeResume(this, connection);
  }

  /**
   * What a SUBACK waits for, or `undefined` when nothing: this node's route changes made so far stored in the
   * engine, so every node that has applied the route version stored by then routes matching messages here.
   * The SUBACK still answers every SUBSCRIBE [MQTT-3.8.4-1 (5.0)], and matching messages may reach the client
   * before it (3.1.1 and 5.0 section 3.8.4). A write that fails (engine away) ends the wait too: the summary is
   * written whole when the engine is back.
   */
  routesStored(): Promise<void> | undefined {
    return this.summary.pending ? this.summary.settled() : undefined;
  }

  /** Starts a merge window for a session taken over from another node: each forwarded id reaches it once. */
  startMerge(clientId: string, ms: number = this.leaseMs): void {
    this.#merging.set(clientId, {
      ids: new Set(),
      originSeq: this.forwarder.seq,
      until: Date.now() + ms,
    });
  }

  /** Whether forwarded message `id` may go to `clientId` (false: it already has it, by another path). */
  firstDelivery(clientId: string, id: string): boolean {
    if (this.#merging.size === 0) return true;
    const window = this.#merging.get(clientId);
    if (window === undefined) return true;
    if (Date.now() > window.until) {
      this.#merging.delete(clientId);
      return true;
    }
    const mine = `${this.incarnation}:`;
    // Published here after the session arrived: it was delivered here directly.
    if (id.startsWith(mine) && Number(id.slice(mine.length)) > window.originSeq) return false;
    if (window.ids.has(id)) return false;
    window.ids.add(id);
    return true;
  }

  /**
   * Runs `fn` after `ms` unless the node stops first. Work it starts (the promise it returns) is tracked like
   * work started by cluster events: the close waits for it.
   */
  later(ms: number, fn: () => void | Promise<void>): void {
    if (this.state === "closed") return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.state === "closed") return;
      const task = fn();
      if (task !== undefined) this.#track("delayed work", task);
    }, ms);
    this.#timers.add(timer);
  }

  /** Resolves after `ms`, or at once when the node closes: a close leaves no pause's timer running. */
  pause(ms: number): Promise<void> {
    if (this.state === "closed") return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pauses.delete(timer);
        resolve();
      }, ms);
      this.#pauses.set(timer, resolve);
    });
  }

  /** Resolves when the engine is reachable again (or the node fenced or closed). */
  whenReachable(): Promise<void> {
    if (this.state === "up" || this.state === "closed" || this.state === "fenced") return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  // ---- life cycle ---------------------------------------------------------------------------------------------

  async #start(): Promise<PersistedState> {
    await this.#join();
    const retained = await this.engine.loadRetained();
    this.sys.start();
    return { retained, sessions: [], wills: [] };
  }

  async #join(): Promise<void> {
    const peer = this.options.peer;
    if (peer !== false && this.peers === undefined) {
      // Loaded on joining, not with the broker: the links' HMAC (node:crypto) costs a broker that never joins a
      // cluster about 2 MiB at start.
      const { listenForPeers } = await import("./peer_link.ts");
      this.peers ??= listenForPeers(this, peer);
    }
    const membership = await this.engine.join({
      node: this.options.node ?? "node",
      leaseMs: this.leaseMs,
      listener: (event) => this.#onEvent(event),
      ...(this.peers === undefined ? {} : { address: this.peers.address }),
    });
    this.incarnation = membership.incarnation;
    this.secret = membership.secret;
    this.state = "up";
    this.summary.connect(this.engine);
    this.#wake();
    this.context.logger.info(`joined cluster ${this.engine.name} as ${this.incarnation}`);
  }

  async #stop(): Promise<void> {
    if (this.state === "closed") return;
    const wasUp = this.state === "up";
    this.sys.stop();
    try {
      // Adoptions and takeovers under way finish first: what they installed is then handed on by the leave.
      await this.#tasksDone();
      await this.summary.settled();
      if (wasUp) await this.engine.leave();
    } catch {
      // unreachable: the lease lapses and the sweeper adopts
    }
    this.state = "closed"; // no event starts work from here on
    await this.#tasksDone();
    this.#clearTimers();
    // Sessions and wills that work installed after the broker closed them arm no timer (their close() says so).
    this.#wake();
    await this.peers?.close();
    await this.engine.close();
  }

  /** Keeps `task` (started by a cluster event) until it ends, so the close can wait for it. */
  #track(what: string, task: Promise<void>): void {
    const tracked: Promise<void> = task
      .catch((error) => this.#engineError(what, error))
      .finally(() => this.#tasks.delete(tracked));
    this.#tasks.add(tracked);
  }

  async #tasksDone(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.all(this.#tasks);
  }

  #clearTimers(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const [timer, resolve] of this.#pauses) {
      clearTimeout(timer);
      resolve();
    }
    this.#pauses.clear();
    if (this.#fenceTimer !== undefined) clearTimeout(this.#fenceTimer);
    if (this.#rejoinTimer !== undefined) clearTimeout(this.#rejoinTimer);
    this.#fenceTimer = undefined;
    this.#rejoinTimer = undefined;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  // ---- events -------------------------------------------------------------------------------------------------

  #onEvent(event: ClusterEvent): void {
    if (this.state === "closed") return;
    switch (event.kind) {
      case "route":
        if (event.node !== this.incarnation) this.remote.apply(event);
        this.sys.routesChanged();
        return;
      case "node":
        if (event.state !== "joined" && event.node !== this.incarnation) this.peers?.dropNode(event.node);
        if (event.state === "dead" && event.node !== this.incarnation && this.state === "up") {
          this.#track("adoption", adoptFrom(this, event.node));
        }
        return;
      case "retained":
        this.#applyRetained(event.topic, event.message);
        return;
      case "takeover":
        this.#track("takeover", onTakeover(this, event.clientId, event.by));
        return;
      case "inbox":
        this.#onInbox(event.batch);
        return;
      case "connection":
        this.#onConnection(event.state);
        return;
    }
  }

  #applyRetained(topic: string, message: Message | undefined): void {
    if (this.state === "fenced") return;
    const retained = this.context.retained;
    // Straight into the store: not the broker's #retain, which would write it back to the engine.
    if (message === undefined) retained.delete(topic);
    else if (message.expiresAt === undefined || message.expiresAt > this.context.clock.now()) {
      retained.set(message);
    }
  }

  #onInbox(batch: InboxBatch): void {
    if (this.state === "fenced") return; // a fenced node delivers nothing [never twice]
    for (const forwarded of batch.messages) {
      if (batch.kind === "durable" && !this.remember(forwarded.id)) continue;
      deliverForwarded(this, forwarded);
    }
    if (batch.cursor !== undefined) {
      this.cursor = batch.cursor;
      this.markCommit();
    }
  }

  /** Delivers a lossy batch that came over a peer link, as one read from the engine; false once fenced. */
  receiveLossy(from: Incarnation, messages: readonly ForwardedMessage[]): boolean {
    if (this.state === "fenced" || this.state === "closed") return false;
    this.#onInbox({ from, kind: "lossy", messages });
    return true;
  }

  /** Notes a forwarded id; false when it was seen already (a redelivery). */
  remember(id: string): boolean {
    return this.#seen.remember(id);
  }

  #onConnection(state: "down" | "up" | "reset" | "fenced"): void {
    const logger = this.context.logger;
    switch (state) {
      case "down":
        if (this.state !== "up") return;
        this.state = "down";
        logger.warn(`cluster engine ${this.engine.name} unreachable: new connections refused`);
        // A node that cannot renew its lease may be declared dead: it stops before others adopt its sessions.
        this.#fenceTimer = setTimeout(() => {
          this.#fenceTimer = undefined;
          if (this.state === "down") this.fence("cluster engine unreachable");
        }, Math.floor(this.leaseMs * 0.75));
        return;
      case "up":
        if (this.state === "fenced") return this.#scheduleRejoin();
        if (this.#fenceTimer !== undefined) clearTimeout(this.#fenceTimer);
        this.#fenceTimer = undefined;
        this.state = "up";
        logger.info(`cluster engine ${this.engine.name} reachable again`);
        this.#track("resync", this.#resync());
        this.#wake();
        return;
      case "reset":
        if (this.state === "fenced") return this.#scheduleRejoin();
        if (this.#fenceTimer !== undefined) clearTimeout(this.#fenceTimer);
        this.#fenceTimer = undefined;
        this.state = "up";
        logger.warn(`cluster engine ${this.engine.name} lost its data: writing back what this node holds`);
        this.#track("reseed", this.#reseed());
        this.#wake();
        return;
      case "fenced":
        this.fence("lease lost");
        this.#scheduleRejoin();
        return;
    }
  }

  async #resync(): Promise<void> {
    const { version, nodes } = await this.engine.routes();
    this.remote.reset(nodes, version, this.incarnation);
    // The table read holds this node's routes as written back: others route by them from this version on.
    if (version > this.storedVersion) this.storedVersion = version;
    await this.summary.resync(nodes.get(this.incarnation) ?? []);
    this.sys.routesChanged();
  }

  async #reseed(): Promise<void> {
    const ctx = this.context;
    const sessions = [];
    for (const [clientId, epoch] of this.epochs) {
      const session = ctx.sessions.get(clientId);
      if (session === undefined) continue;
      sessions.push(
        session.persistent
          ? {
            clientId,
            epoch,
            // Queues are not written back: messages queued for offline sessions during a data loss are lost.
            session: {
              ...session.toStored(ctx.router.subscriptionsOf(clientId)),
              outgoing: [],
              incoming: [],
            },
          }
          : { clientId, epoch },
      );
    }
    await this.engine.reseed({
      routes: this.summary.filters(),
      retained: [...ctx.retained.match("#")],
      sessions,
    });
    await this.#resync();
  }

  /**
   * Stops serving: every client is disconnected (v5 0x8B) without its will (the node that adopts its session
   * publishes it), every session is dropped from memory, nothing is delivered any more. Another node may own
   * these sessions now; delivering from here could deliver twice.
   */
  fence(reason: string): void {
    if (this.state === "fenced" || this.state === "closed") return;
    this.state = "fenced";
    const ctx = this.context;
    ctx.logger.warn(
      `cluster node ${this.incarnation} fenced itself: ${reason}; every client is disconnected`,
    );
    this.epochs.clear(); // from now on no session write leaves this node
    this.peers?.reset(); // its links speak for this incarnation, which is over
    for (const session of [...ctx.sessions.values()]) {
      const connection = session.link as Connection | undefined;
      if (connection !== undefined) {
        connection.will = undefined;
        connection.disconnect(REASON_CODE.ServerShuttingDown, "cluster node fenced");
      }
      ctx.sessions.forget(session.clientId);
      ctx.wills.cancel(session.clientId);
    }
    for (const node of this.remote.nodes()) this.remote.drop(node);
    this.#wake();
  }

  /** After a fence: joins again as a new incarnation once the engine answers, and adopts the old one's sessions. */
  #scheduleRejoin(): void {
    if (this.#rejoinTimer !== undefined || this.state === "closed") return;
    this.#rejoinTimer = setTimeout(async () => {
      this.#rejoinTimer = undefined;
      if (this.state !== "fenced") return;
      const old = this.incarnation;
      try {
        await this.engine.leave();
        await this.#join();
        const { version, nodes } = await this.engine.routes();
        this.remote.reset(nodes, version, this.incarnation);
        for (const message of await this.engine.loadRetained()) this.#applyRetained(message.topic, message);
        await adoptFrom(this, old);
      } catch (error) {
        if ((this.state as NodeState) === "up") this.#engineError("rejoin", error);
        else this.#scheduleRejoin();
      }
    }, Math.max(10, Math.floor(this.leaseMs / 4)));
  }

  #engineError(what: string, error: unknown): void {
    if (error instanceof ClusterUnavailableError) {
      this.context.logger.warn(`cluster ${what} postponed: ${error.message}`);
    } else {
      this.context.logger.error(`cluster ${what} failed: ${String(error)}`);
    }
  }
}
