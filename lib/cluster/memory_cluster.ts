/**
 * The shared state of an in-memory cluster ({@linkcode MemoryCluster}): what Redis holds for the Redis engine,
 * with the faults a test injects (engine down with or without its data, one node cut off, lossy forwards
 * dropped, a delay). Each broker node talks to it through its own `MemoryClusterEngine` (`memory_engine.ts`).
 *
 * @module
 */

import type {
  LoadedSession,
  Message,
  OutgoingMessage,
  PendingWill,
  StoredSession,
} from "../broker/storage/persistence.ts";
import type { Claim, ClusterEvent, ForwardedMessage, Incarnation, NodeStats } from "./engine.ts";
import { MemoryClusterEngine } from "./memory_engine.ts";

const DEFAULT_LEASE_MS = 10_000;

/** Faults a test can set at any time on a {@linkcode MemoryCluster}. */
export interface MemoryFaults {
  /** Drop every lossy (QoS 0) forward. @default {false} */
  dropLossy: boolean;
  /** Delay every call and event by this many ms (order per node is kept while it does not change). @default {0} */
  delayMs: number;
}

/** A node as the shared state knows it. */
export interface NodeRecord {
  readonly engine: MemoryClusterEngine;
  expiresAt: number;
  state: "live" | "left" | "dead";
  /** Its peer link address, if it gave one. */
  readonly address: string | undefined;
}

/** What is kept per client id. */
export interface ClientRecord {
  owner: Incarnation | undefined;
  /** The node whose claim waits for the holder to step down (the newest such claim), as `claimer` in Redis. */
  claimer?: Incarnation | undefined;
  session: StoredSession | undefined;
  readonly outgoing: Map<number, OutgoingMessage>;
  readonly incoming: Set<number>;
  will: PendingWill | undefined;
}

/** A claim waiting for `from` to step down. */
export interface ReleaseWaiter {
  /** The node it asked. */
  readonly from: Incarnation;
  /** The node that claims. */
  readonly by: Incarnation;
  /** Called by `from`'s release. */
  readonly resolve: () => void;
  /** Called once by `from`'s `steppingDown` (`ClaimOptions.waiting`), then cleared. */
  stepping: (() => void) | undefined;
}

/** One durable batch in a node's inbox. */
export interface InboxEntry {
  readonly seq: number;
  readonly from: Incarnation;
  readonly messages: readonly ForwardedMessage[];
}

/** A node's durable inbox and its committed cursor. */
export interface Inbox {
  entries: InboxEntry[];
  committed: number;
}

/** The shared state of a cluster in one process: what Redis holds, with fault injection. */
export class MemoryCluster {
  /** Faults in force; change them at any time. */
  readonly faults: MemoryFaults = { dropLossy: false, delayMs: 0 };
  readonly nodes = new Map<Incarnation, NodeRecord>();
  readonly routes = new Map<Incarnation, Set<string>>();
  readonly retained = new Map<string, Message>();
  readonly clients = new Map<string, ClientRecord>();
  /** Outlive the sessions, as `mq:e:{cid}` does. */
  readonly epochs = new Map<string, number>();
  readonly owned = new Map<Incarnation, Set<string>>();
  readonly inboxes = new Map<Incarnation, Inbox>();
  readonly stats = new Map<Incarnation, NodeStats>();
  /** The claims waiting for a release, per client id. */
  readonly releases = new Map<string, Set<ReleaseWaiter>>();
  routeVersion = 0;
  inboxSeq = 0;
  /** The peer links' shared secret (survives a data loss: the nodes hold it). */
  readonly secret: string = crypto.randomUUID();
  /** Changes when the data is lost: an engine that sees a new one reports `reset`. */
  generation = 0;
  #down = false;
  readonly #partitioned = new Set<Incarnation>();
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  readonly #leaseMs: number;

  /** `leaseMs` is the default lease for nodes that do not ask for one. */
  constructor(options: { readonly leaseMs?: number } = {}) {
    this.#leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  }

  /** A new engine for one broker node. */
  engine(): MemoryClusterEngine {
    return new MemoryClusterEngine(this, this.#leaseMs);
  }

  /** Whether `node` can reach the engine now. */
  reachable(node: Incarnation | undefined): boolean {
    return !this.#down && (node === undefined || !this.#partitioned.has(node));
  }

  /** Makes the whole engine unreachable (as a killed Redis). */
  down(): void {
    this.#down = true;
    for (const record of this.nodes.values()) record.engine.reachabilityChanged();
  }

  /** Brings the engine back, with its data (AOF) or without (`keepData: false`). */
  up(options: { readonly keepData: boolean } = { keepData: true }): void {
    if (!options.keepData) this.#wipe();
    this.#down = false;
    // No node is declared dead for having been cut off by the engine's own outage: every lease starts again.
    const now = Date.now();
    for (const record of this.nodes.values()) record.expiresAt = now + record.engine.leaseMs;
    for (const record of [...this.nodes.values()]) record.engine.reachabilityChanged();
  }

  /** Cuts one node off the engine (`isolated: true`) or lets it back. */
  partition(node: Incarnation, isolated: boolean): void {
    if (isolated) this.#partitioned.add(node);
    else this.#partitioned.delete(node);
    this.nodes.get(node)?.engine.reachabilityChanged();
  }

  /** Stops the sweeper; every engine should be closed first. */
  close(): void {
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
  }

  /** Sends `event` to every live node (the ones cut off get it when they return, as from a stream). */
  broadcast(event: ClusterEvent): void {
    for (const record of this.nodes.values()) {
      if (record.state === "live") record.engine.emit(event);
    }
  }

  /** Whether `node` is alive: a lease not yet lapsed and not declared dead. */
  isLive(node: Incarnation): boolean {
    const record = this.nodes.get(node);
    return record !== undefined && record.state === "live" && record.expiresAt > Date.now();
  }

  /** The record of `clientId`, made empty on first use. */
  client(clientId: string): ClientRecord {
    let record = this.clients.get(clientId);
    if (record === undefined) {
      record = {
        owner: undefined,
        session: undefined,
        outgoing: new Map(),
        incoming: new Set(),
        will: undefined,
      };
      this.clients.set(clientId, record);
    }
    return record;
  }

  /** Gives `clientId` to `node` with the next epoch. */
  own(clientId: string, node: Incarnation): number {
    const record = this.client(clientId);
    if (record.owner !== undefined) this.owned.get(record.owner)?.delete(clientId);
    record.owner = node;
    let set = this.owned.get(node);
    if (set === undefined) this.owned.set(node, set = new Set());
    set.add(clientId);
    const epoch = (this.epochs.get(clientId) ?? 0) + 1;
    this.epochs.set(clientId, epoch);
    return epoch;
  }

  /** What a claim returns for `clientId` now. */
  loaded(clientId: string, epoch: number): Claim {
    const record = this.client(clientId);
    const claim: { -readonly [K in keyof Claim]: Claim[K] } = { epoch };
    if (record.session !== undefined) {
      const session: LoadedSession = {
        ...record.session,
        outgoing: [...record.outgoing.values()].sort((a, b) => a.seq - b.seq),
        incoming: [...record.incoming],
      };
      claim.session = session;
    }
    if (record.will !== undefined) claim.will = record.will;
    return claim;
  }

  inbox(node: Incarnation): Inbox {
    let inbox = this.inboxes.get(node);
    if (inbox === undefined) this.inboxes.set(node, inbox = { entries: [], committed: 0 });
    return inbox;
  }

  /** Starts the sweeper (the role one node holds in Redis; here the shared state plays it). */
  startSweeper(leaseMs: number): void {
    if (this.#sweepTimer !== undefined) return;
    this.#sweepTimer = setInterval(() => this.#sweep(), Math.max(10, Math.floor(leaseMs / 5)));
  }

  #sweep(): void {
    if (this.#down) return;
    const now = Date.now();
    for (const [node, record] of this.nodes) {
      if (record.state !== "live" || record.expiresAt > now) continue;
      record.state = "dead";
      this.broadcast({ kind: "node", node, state: "dead" });
      // The dead node's routes stay until its adopters are done (`forget`), so its sessions' messages keep
      // landing in its inbox.
    }
    let anyLive = false;
    for (const record of this.nodes.values()) if (record.state === "live") anyLive = true;
    if (!anyLive) this.close();
  }

  #wipe(): void {
    this.routes.clear();
    this.retained.clear();
    this.clients.clear();
    this.epochs.clear();
    this.owned.clear();
    this.inboxes.clear();
    this.stats.clear();
    this.generation++;
    for (const record of this.nodes.values()) {
      if (record.state !== "live") this.nodes.delete(record.engine.incarnation);
    }
  }
}
