/**
 * The cluster seam: what a broker node needs from the shared engine that makes several broker processes one
 * broker (`../shared/CLUSTER.md`). Implementations: `MemoryClusterEngine` (`memory_engine.ts`: several brokers in
 * one process, with injectable faults) and `RedisClusterEngine` (`redis_engine.ts`). Both pass the one contract
 * suite in `tests/cluster/engine_contract.ts`.
 *
 * Vocabulary:
 * - **node**: a broker process, named by its **incarnation** `<nodeName>-<random>`, new at every
 *   {@linkcode ClusterEngine.join}, so a restarted node never inherits the lease (or the sessions) of its past.
 * - **lease**: a node is alive while its lease is renewed (every `leaseMs / 4`, by the engine itself). The
 *   engine's clock alone decides expiry; a lapsed node is declared dead once, by one node (the sweeper role),
 *   and every live node hears it as a {@linkcode NodeEvent} with state `"dead"`.
 * - **epoch**: a counter per client id, incremented by every change of owner
 *   ({@linkcode ClusterEngine.claim}, {@linkcode ClusterEngine.adopt}). Every session write carries the epoch its
 *   writer owns; a write whose epoch is not the current one is refused (fencing).
 *
 * Every method may reject with {@linkcode ClusterUnavailableError} while the engine is unreachable; nothing
 * rejected was applied, except where a member says otherwise. Events arrive through the listener given to
 * {@linkcode ClusterEngine.join}, one at a time, in the order stated per event kind.
 *
 * @module
 */

import type {
  LoadedSession,
  Message,
  PendingWill,
  PersistenceOp,
  StoredSession,
} from "../broker/storage/persistence.ts";

/** A node's incarnation, `<nodeName>-<random>`: unique for the life of one process's membership. */
export type Incarnation = string;

/** Thrown (as a rejection) by engine calls while the engine cannot be reached. */
export class ClusterUnavailableError extends Error {
  /** `message` says what could not be reached. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ClusterUnavailableError";
  }
}

/** Options for {@linkcode ClusterEngine.join}. */
export interface JoinOptions {
  /** The operator's name for this node (the part before the random suffix of the incarnation). */
  readonly node: string;
  /**
   * Lease time, ms: a node that has not renewed for this long is dead, and a node that cannot renew for
   * `leaseMs * 0.75` by its own clock must fence itself (the broker does, on {@linkcode ConnectionEvent}).
   *
   * @default {10000}
   */
  readonly leaseMs?: number;
  /** Receives every {@linkcode ClusterEvent} for this node, one at a time. It must not throw. */
  readonly listener: (event: ClusterEvent) => void;
  /** `HOST:PORT` of this node's peer link (`peer_link.ts`), for {@linkcode ClusterEngine.peerAddress}. */
  readonly address?: string;
}

/** What {@linkcode ClusterEngine.join} answers. */
export interface Membership {
  /** This node's incarnation. */
  readonly incarnation: Incarnation;
  /** The lease time in force, ms. */
  readonly leaseMs: number;
  /**
   * The cluster's shared secret, made at random once per cluster and kept by the engine: what peer links
   * authenticate with (whoever can reach the engine is trusted already).
   */
  readonly secret: string;
}

// ---- forwarding -------------------------------------------------------------------------------------------

/**
 * A message forwarded to a node: the destination matches it against its local subscriptions only, never stores
 * it as retained and never forwards it again (one hop).
 */
export interface ForwardedMessage {
  /**
   * Cluster-wide id `<originIncarnation>:<seq>`: a destination that sees the same id twice (a redelivery after a
   * reconnect, or a dead node's inbox read by its adopter) delivers it once.
   */
  readonly id: string;
  /** The message as published (`origin` kept, for No Local [MQTT-3.8.3-3 (5.0)]; `expiresAt` absolute). */
  readonly message: Message;
  /** Whether the destination delivers it to its non-shared subscriptions. */
  readonly direct: boolean;
  /**
   * The `$share/<group>/<filter>` filters this destination was picked for (one node per group cluster-wide);
   * the destination delivers to one of its members of each, and to no other group.
   */
  readonly shared?: readonly string[];
  /**
   * Sessions the destination delivers it to as well, by client id, whatever its routes say: a message that
   * reached a session's old node during a takeover goes on to its new node (each session gets it once).
   */
  readonly clients?: readonly string[];
}

/** All messages one node forwards to one destination in one event-loop turn. */
export interface ForwardBatch {
  /** The destination node. */
  readonly to: Incarnation;
  /** In publish order; the destination sees them in this order, after every earlier batch from this node. */
  readonly messages: readonly ForwardedMessage[];
}

/** What arrived in this node's inbox, in the order it was appended. */
export interface InboxBatch {
  /** The node that forwarded it. */
  readonly from: Incarnation;
  /**
   * `"lossy"` (QoS 0: at most once, may be dropped when the destination lags or the engine is unreachable) or
   * `"durable"` (QoS 1/2: at least once, redelivered after {@linkcode InboxBatch.cursor} until it is committed).
   */
  readonly kind: "lossy" | "durable";
  readonly messages: readonly ForwardedMessage[];
  /**
   * For a durable batch: the cursor to commit (in {@linkcode CommitBatch.cursor}) once its effects are durable.
   * Cursors of one inbox increase; committing one commits every batch before it.
   */
  readonly cursor?: string;
}

// ---- sessions ---------------------------------------------------------------------------------------------

/**
 * The ops of {@linkcode PersistenceOp} that belong to one session (everything but the retained ones).
 * `deleteSession` also gives up ownership: the client id is unowned afterwards (and leaves the owned set).
 */
export type SessionOp = Exclude<PersistenceOp, { kind: "putRetained" } | { kind: "deleteRetained" }>;

/** A session op with the ownership epoch its writer holds for that client id. */
export interface FencedOp {
  readonly op: SessionOp;
  /** The epoch this node got from {@linkcode ClusterEngine.claim} / {@linkcode ClusterEngine.adopt}. */
  readonly epoch: number;
}

/** One group commit of a node: session writes, durable forwards and the inbox cursor, applied together. */
export interface CommitBatch {
  /** In order. Per client id, all or none: a stale epoch refuses every op of that client in the batch. */
  readonly ops: readonly FencedOp[];
  /** Durable (QoS 1/2) forwards; appended to the destinations' durable inboxes when the commit resolves. */
  readonly forwards: readonly ForwardBatch[];
  /** This node's durable inbox cursor, committed with the ops (the effects of the batches up to it). */
  readonly cursor?: string;
}

/** What {@linkcode ClusterEngine.commit} answers. */
export interface CommitOutcome {
  /**
   * Client ids whose ops were refused because another node owns them now (a newer epoch): this node must drop
   * those sessions at once, without publishing their wills (the new owner has them).
   */
  readonly refused: readonly string[];
}

/** What a node gets when it takes a client id. */
export interface Claim {
  /** The epoch this node now owns the client id with; every later write for it carries this epoch. */
  readonly epoch: number;
  /** The stored session, if one outlived its connection (absent: start a new one). */
  readonly session?: LoadedSession;
  /**
   * The client's will, still to be published: waiting for its delay (`sendAt` > 0), or armed at CONNECT while
   * its connection is open (`sendAt` 0, or `-delayMs` with a Will Delay). Engines store `sendAt` as given.
   */
  readonly will?: PendingWill;
  /**
   * The node that owned it before: `released` when it stepped down ({@linkcode ClusterEngine.release}) in time,
   * `"timeout"` when it did not answer (its late writes are refused by the epoch), absent when nobody owned it
   * or its owner was this node.
   */
  readonly previous?: { readonly node: Incarnation; readonly outcome: "released" | "timeout" };
}

/** Options for {@linkcode ClusterEngine.claim}. */
export interface ClaimOptions {
  /** How long to wait for a live owner to release it, ms. @default {3000} */
  readonly timeoutMs?: number;
  /**
   * The will of the CONNECT that claims, stored with the ownership change (after the stored one was read into
   * the {@linkcode Claim}): armed before the CONNACK at no extra round trip.
   */
  readonly will?: PendingWill;
  /**
   * Called at most once while the claim waits for a live other node to release the id, when that node has said
   * it is stepping down ({@linkcode ClusterEngine.steppingDown}), with the session record stored for the id
   * when the claim asked (without its queues), or `undefined` when none was stored. A session's record is written
   * before any of its queued messages, so `undefined` means no acknowledged message waited for it. Not called
   * when nobody else holds the id, nor when the holder does not say so before the claim goes on. It must not
   * throw.
   *
   * What it tells lets a CONNECT be answered before the old owner has let go (`ownership.ts`); the
   * {@linkcode Claim} that resolves later is still the authority (the record may go meanwhile).
   */
  readonly waiting?: (stored: StoredSession | undefined) => void;
}

// ---- stats ------------------------------------------------------------------------------------------------

/** One node's counters, published for `$SYS/cluster/...`. */
export interface NodeStats {
  readonly node: Incarnation;
  readonly clientsConnected: number;
  readonly messagesReceived: number;
  readonly messagesSent: number;
  readonly subscriptions: number;
}

// ---- events -----------------------------------------------------------------------------------------------

/**
 * One node's route summary changed. Versions are numbers the engine assigns, strictly increasing across all
 * route changes of the cluster; events reach each node in version order.
 */
export interface RouteEvent {
  readonly kind: "route";
  readonly node: Incarnation;
  readonly op: "add" | "remove";
  /** A topic filter, `$share/<group>/<filter>` included. */
  readonly filter: string;
  readonly version: number;
}

/** A node joined, left (graceful) or was declared dead (lease lapsed; its sessions wait for adoption). */
export interface NodeEvent {
  readonly kind: "node";
  readonly node: Incarnation;
  readonly state: "joined" | "left" | "dead";
}

/** A retained message was set (`message`) or deleted (no `message`), in the engine's order of retained writes. */
export interface RetainedEvent {
  readonly kind: "retained";
  readonly topic: string;
  readonly message?: Message;
}

/**
 * Another node wants a client id this node owns: disconnect its connection (v5 0x8E), commit what is pending for
 * it, drop it from memory, then call {@linkcode ClusterEngine.release}.
 */
export interface TakeoverEvent {
  readonly kind: "takeover";
  readonly clientId: string;
  readonly by: Incarnation;
}

/** Forwarded messages for this node. Per sending node, batches arrive in the order they were sent. */
export interface InboxEvent {
  readonly kind: "inbox";
  readonly batch: InboxBatch;
}

/**
 * The engine's reachability changed. `"down"`: unreachable (calls reject). `"up"`: reachable again with its
 * data. `"reset"`: reachable again but its data is gone (restart without persistence): the node must re-seed
 * everything it holds ({@linkcode ClusterEngine.reseed}). `"fenced"`: this node's lease lapsed or was taken
 * (declared dead): it must disconnect every client and stop delivering; it may {@linkcode ClusterEngine.join}
 * again as a new incarnation.
 */
export interface ConnectionEvent {
  readonly kind: "connection";
  readonly state: "down" | "up" | "reset" | "fenced";
}

/** Everything the engine tells a node. */
export type ClusterEvent =
  | RouteEvent
  | NodeEvent
  | RetainedEvent
  | TakeoverEvent
  | InboxEvent
  | ConnectionEvent;

/** What a node writes again after the engine lost its data. */
export interface ReseedState {
  /** Every filter with a local subscriber. */
  readonly routes: readonly string[];
  /** The whole retained store (every node holds all of it; last writer wins). */
  readonly retained: readonly Message[];
  /**
   * Every client id this node owns, with the epoch it holds (kept: the node's later writes carry it), the
   * session with its queues when it is persistent, and its will if one is armed or waiting.
   */
  readonly sessions: readonly ReseedSession[];
}

/** One owned client id in a {@linkcode ReseedState}. */
export interface ReseedSession {
  readonly clientId: string;
  readonly epoch: number;
  readonly session?: LoadedSession;
  readonly will?: PendingWill;
}

/** What the cluster shares, as one broker node sees it. */
export interface ClusterEngine {
  /** A short description for logs, e.g. `redis://127.0.0.1:6379` or `memory`. */
  readonly name: string;

  // -- membership

  /**
   * Joins as a new incarnation with a lease, and starts delivering events to `options.listener`: first the full
   * route table (one {@linkcode RouteEvent} per live node's filter), then changes. The engine renews the lease by
   * itself; when renewal fails it emits `connection: "down"`, and `"fenced"` once the lease is lost.
   */
  join(options: JoinOptions): Promise<Membership>;
  /** Leaves gracefully: drops the lease so the sweeper adopts this node's sessions at once. Idempotent. */
  leave(): Promise<void>;
  /** Stops every timer and connection; no event after it resolves. Does not leave. */
  close(): Promise<void>;
  /** Live incarnations (this one included), sorted. Used for rendezvous hashing of adoption. */
  liveNodes(): Promise<readonly Incarnation[]>;
  /** The peer link address `node` joined with ({@linkcode JoinOptions.address}), if it gave one. */
  peerAddress(node: Incarnation): Promise<string | undefined>;

  // -- routes

  /**
   * Adds filters to this node's route summary. Resolves once stored, with the version of the change: every node
   * whose applied route version is at least that routes matching messages here. Idempotent per filter.
   */
  addRoutes(filters: readonly string[]): Promise<number>;
  /** Removes filters from this node's summary; resolves with the change's version. Idempotent per filter. */
  removeRoutes(filters: readonly string[]): Promise<number>;
  /** The full route table (live node → its filters) with the version it is current to: for a resync. */
  routes(): Promise<
    { readonly version: number; readonly nodes: ReadonlyMap<Incarnation, readonly string[]> }
  >;

  // -- forwarding

  /**
   * Sends QoS 0 batches to the destinations' lossy inboxes: at most once, not awaited by the caller's acks; while
   * the engine is unreachable they are dropped (and counted by the caller). Per (sender, destination), order is
   * kept for what arrives.
   */
  forwardLossy(batches: readonly ForwardBatch[]): void;

  // -- sessions, wills, durable forwards

  /**
   * Takes ownership of `clientId` for this node with a new epoch. If a live other node owns it, that node gets a
   * {@linkcode TakeoverEvent} and this waits for its {@linkcode ClusterEngine.release} (or `timeoutMs`) before
   * claiming, so the session read reflects everything the old owner committed. A claim under way on another live
   * node is served first: that node is asked instead, and steps down once its own claim has the id (the newest
   * claim is served last). The will comes back with the
   * session and stays stored (a resuming connection deletes it with `deleteWill`).
   */
  claim(clientId: string, options?: ClaimOptions): Promise<Claim>;
  /**
   * Says, after a {@linkcode TakeoverEvent} from `by`, that this node has begun stepping down from `clientId`:
   * from now on a CONNECT for it here claims it through the engine (after `by`'s claim) instead of resuming it,
   * so `by` may answer its own CONNECT before the release ({@linkcode ClaimOptions.waiting}). Best effort: when
   * it is lost, `by` waits for the release.
   */
  steppingDown(clientId: string, by: Incarnation): void;
  /** Steps down from `clientId` after a {@linkcode TakeoverEvent}: lets the claimer go on. Fenced by `epoch`. */
  release(clientId: string, epoch: number): Promise<void>;
  /**
   * Answers a {@linkcode TakeoverEvent} from `by` for a client id this node neither owns nor is claiming (its
   * own claim failed after asking, so the engine still names it as the claim under way): there is nothing to
   * hand over, and `by`'s claim goes on at once instead of waiting for its timeout. Best effort.
   */
  decline(clientId: string, by: Incarnation): void;
  /**
   * Applies one group commit: per client id all or none, fenced by epoch; the forwards are appended to the
   * destinations' durable inboxes; the cursor is committed. Resolves once all of it is durable (as durable as
   * the engine's storage is): a QoS 1/2 acknowledgement waits for it.
   */
  commit(batch: CommitBatch): Promise<CommitOutcome>;
  /**
   * The client ids a (dead) node owned when it died: the adoption list. Each live node adopts the ids for which
   * it wins rendezvous hashing over {@linkcode ClusterEngine.liveNodes}.
   */
  owned(node: Incarnation): Promise<readonly string[]>;
  /**
   * Takes `clientId` from the dead `node` (compare-and-set on the owner): resolves with the claim, or
   * `undefined` when someone else adopted or claimed it first. At most one node adopts a given session.
   */
  adopt(clientId: string, node: Incarnation): Promise<Claim | undefined>;
  /**
   * What the dead `node` had in its durable inbox past its committed cursor: messages forwarded to it that no
   * session of it has yet. An adopter delivers them to the sessions it adopted from that node (de-duplicated by
   * id). Empty once the dead node's keys are forgotten.
   */
  deadInbox(node: Incarnation): Promise<readonly ForwardedMessage[]>;
  /** Forgets a dead node's keys (its inbox, routes, owned set) once adoption is done. Idempotent. */
  forget(node: Incarnation): Promise<void>;

  // -- retained

  /**
   * Sets (`message` with a payload) or deletes (empty payload) the retained message of `message.topic`, and
   * tells every node with a {@linkcode RetainedEvent}, in the engine's order of retained writes (last writer
   * wins, the same on every node).
   */
  retain(message: Message): Promise<void>;
  /** Every retained message: the full load at start and after a reset. */
  loadRetained(): Promise<readonly Message[]>;

  // -- recovery and stats

  /** Writes back what this node holds after the engine lost its data (`connection: "reset"`). */
  reseed(state: ReseedState): Promise<void>;
  /** Publishes this node's counters (kept about three `$SYS` intervals). */
  putStats(stats: NodeStats): Promise<void>;
  /** Every live node's latest counters. */
  stats(): Promise<readonly NodeStats[]>;
}

/** The client id a session op is for. */
export function sessionOpClientId(op: SessionOp): string {
  switch (op.kind) {
    case "putSession":
      return op.session.clientId;
    case "putWill":
      return op.will.clientId;
    default:
      return op.clientId;
  }
}

/** The session a stored one describes, without queues: a helper for engines. */
export function emptyLoaded(session: StoredSession): LoadedSession {
  return { ...session, outgoing: [], incoming: [] };
}
