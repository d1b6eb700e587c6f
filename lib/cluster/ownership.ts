/**
 * Client ids are unique cluster-wide (CLUSTER.md §3.8, §3.9). A CONNECT on this node claims its client id from
 * the engine (a new epoch); if another node holds it, that node gets a takeover request, disconnects its
 * connection (v5 0x8E), commits what it holds, keeps passing on what still reaches it for a while, and releases;
 * this node then resumes the session (Session Present 1). When a node dies, each live node adopts the sessions for
 * which it wins rendezvous hashing, publishes their wills (exactly once: adoption is a compare-and-set on the
 * owner) and delivers what was waiting in the dead node's inbox.
 *
 * @module
 */

import type { Connection } from "../broker/connection.ts";
import type { ConnectRefusal } from "../broker/handlers/connect_negotiation.ts";
import { printable } from "../broker/logger.ts";
import { REASON_CODE } from "../packet/reason_code.ts";
import { parseSharedFilter } from "../topic/topic.ts";
import {
  type Claim,
  type ClaimOptions,
  ClusterUnavailableError,
  type ForwardedMessage,
  type Incarnation,
} from "./engine.ts";
import { deliverForwarded, MOVED_PREFIX, replayForwarded } from "./forwarding.ts";
import { TopicRouter } from "../topic/router.ts";
import type { ClusterNode, NodeState } from "./node.ts";
import type { Session } from "../broker/session.ts";
import type { PendingWill, StoredSession } from "../broker/storage/persistence.ts";
import { messageFromWill, storedWill } from "../broker/wills.ts";

/** Why a CONNECT cannot claim its client id. */
export type ClaimRefusal = ConnectRefusal & { readonly kind: "refuse" };

const UNAVAILABLE: ClaimRefusal = {
  kind: "refuse",
  reasonCode: REASON_CODE.ServerUnavailable, // v3: 0x03 through the one v3<->v5 map
  reason: "the cluster engine is unreachable: client ids cannot be claimed",
};

/**
 * Answers a CONNECT (CONNACK) while its claim waits for another node to let go, given the session record stored
 * for the client id then (`ClaimOptions.waiting`): returns the Session Present it sent, or `undefined` when it
 * cannot answer yet (the CONNACK then waits for the claim). Its connection reads no further packet until the
 * claim is done.
 */
export type EarlyConnack = (stored: StoredSession | undefined) => boolean | undefined;

/** A CONNACK said Session Present 1, and the session was gone once the old owner let go. */
const SESSION_GONE: ClaimRefusal = {
  kind: "refuse",
  reasonCode: REASON_CODE.UnspecifiedError,
  reason: "the session ended on its previous node while it was taken over",
};

/**
 * Claims `clientId` for `connection`: resolves with `undefined` once this node owns it (its stored session, if
 * any, restored here), or with a refusal (v5 0x88, v3 0x03) while the engine is unreachable. With `early`, the
 * CONNACK may go before a live other owner has let go; if it said Session Present 1 and the session ended there
 * meanwhile, resolves with a refusal (the connection must close: it cannot resume what it was promised).
 */
export async function claimForConnect(
  node: ClusterNode,
  connection: Connection,
  clientId: string,
  early?: EarlyConnack,
): Promise<ClaimRefusal | undefined> {
  if (node.state !== "up") return UNAVAILABLE;
  let claim: Claim;
  // What the old node passes on for this client before the claim resolves waits here.
  const passedOn: ForwardedMessage[] = [];
  node.claiming.set(clientId, passedOn);
  // The will is stored with the claim, before the CONNACK: a node that dies right after it leaves the will to
  // its adopter. (So a CONNECT with a will is not answered early: its will is stored by the claim's last step.)
  const will = armedWill(connection, node.context.clock.now());
  const timeoutMs = node.options.takeoverTimeoutMs ?? 3000;
  /** A newer claim on another node that asked this node to step down while this claim waited. */
  let kickedBy: Incarnation | undefined;
  /** The Session Present of a CONNACK sent while the claim waited. */
  let answered: boolean | undefined;
  let options: ClaimOptions = { timeoutMs };
  if (will !== undefined) options = { timeoutMs, will };
  else if (early !== undefined) options = { timeoutMs, waiting: (stored) => answered = early(stored) };
  try {
    claim = await node.engine.claim(clientId, options);
  } catch (error) {
    if (error instanceof ClusterUnavailableError) return UNAVAILABLE;
    throw error;
  } finally {
    node.claiming.delete(clientId);
    kickedBy = node.kicked.get(clientId);
    node.kicked.delete(clientId);
  }
  const state = node.state as NodeState; // it may have changed while the claim waited
  if (state === "fenced" || state === "closed") return UNAVAILABLE;
  install(node, clientId, claim);
  // A newer claim elsewhere asked for it meanwhile: it goes there once this connection has it (and is told 0x8E).
  if (kickedBy !== undefined) node.later(0, () => onTakeover(node, clientId, kickedBy));
  if (passedOn.length > 0) {
    node.startMerge(clientId);
    const only = new Set([clientId]);
    for (const forwarded of passedOn) deliverForwarded(node, forwarded, only);
  }
  if (claim.previous !== undefined) {
    node.startMerge(clientId);
    node.context.logger.info(
      `client ${printable(clientId)} taken over from node ${claim.previous.node} (${claim.previous.outcome})`,
    );
  }
  // The engine went away after the claim: the id is this node's now, so its session is kept here as for a
  // connection that went, and the CONNECT is refused.
  const refused = state !== "up";
  if (connection.isClosed || refused) {
    // Gone while the claim waited: its session stays (offline) or, if it had none to keep, ownership is given up.
    if (claim.session === undefined) node.context.store?.add({ kind: "deleteSession", clientId });
    else if (will !== undefined && !node.context.wills.has(clientId)) {
      node.context.store?.add({ kind: "deleteWill", clientId }); // stored with the claim, but never armed
    }
    return refused ? UNAVAILABLE : undefined;
  }
  if (answered === true && node.context.sessions.get(clientId) === undefined) {
    // Ended on its old node (a v5 DISCONNECT with expiry 0, its expiry) between the CONNACK and the release:
    // the client was told its session is present, so it is not given an empty one [MQTT-3.2.2-2 (3.1.1)].
    // The id is given up as for a connection gone while its claim waited.
    if (claim.session === undefined) node.context.store?.add({ kind: "deleteSession", clientId });
    return SESSION_GONE;
  }
  return undefined;
}

/**
 * What a CONNECT for a session this node owns waits for before its CONNACK, or `undefined` when nothing: the
 * replay of the inbox of the dead node it was adopted from (lately), then its will stored. A message can reach
 * that inbox after the adopter's first replay (its publisher's node had not heard of the adopter's route yet,
 * and acknowledged it once the forward was stored); the client, back, may change its subscriptions at once,
 * which ends the replays to it, so the inbox is read while they are still as at the death: the session keeps
 * every acknowledged QoS 1/2 message that matched them [MQTT-3.1.2-5 (3.1.1)] (5.0 section 4.1).
 */
export function beforeResume(
  node: ClusterNode,
  connection: Connection,
): Promise<ClaimRefusal | undefined> | undefined {
  const clientId = connection.clientId;
  let inboxes: Adopted[] | undefined;
  for (const adopted of node.adoptions) {
    if (adopted.epochs.has(clientId)) (inboxes ??= []).push(adopted);
  }
  if (inboxes === undefined) return connection.will === undefined ? undefined : storeWill(node, connection);
  return replayThenStoreWill(node, connection, inboxes);
}

async function replayThenStoreWill(
  node: ClusterNode,
  connection: Connection,
  inboxes: readonly Adopted[],
): Promise<ClaimRefusal | undefined> {
  try {
    for (const adopted of inboxes) await replayInbox(node, adopted.dead, adopted);
  } catch (error) {
    if (error instanceof ClusterUnavailableError) return UNAVAILABLE;
    throw error;
  }
  return connection.will === undefined ? undefined : storeWill(node, connection);
}

/**
 * Stores the will of a CONNECT for `clientId`, which this node owns already, before its CONNACK (the claim path
 * stores it with the claim, {@linkcode claimForConnect}): a node that dies once the client has its CONNACK leaves the will
 * to the node that adopts the session, which publishes it exactly once. Through the commit queue, so it lands
 * after what this node recorded for the client before (a `deleteWill` of its last connection). Resolves with a
 * refusal (v5 0x88, v3 0x03) when the write cannot be made.
 */
export async function storeWill(
  node: ClusterNode,
  connection: Connection,
): Promise<ClaimRefusal | undefined> {
  const ctx = node.context;
  const clientId = connection.clientId;
  const will = armedWill(connection, ctx.clock.now());
  if (will === undefined || ctx.store === undefined) return undefined;
  ctx.store.add({ kind: "putWill", will });
  try {
    await ctx.store.settled();
  } catch {
    return UNAVAILABLE;
  }
  if (connection.isClosed) {
    // Gone before its CONNACK: its will was never armed. What the engine held before comes back (the armed will
    // of a connection still open here, else nothing; a will waiting out its delay here stays as it is written).
    const link = ctx.sessions.get(clientId)?.link as Connection | undefined;
    const before = link === undefined ? undefined : armedWill(link, ctx.clock.now());
    if (before !== undefined) ctx.store.add({ kind: "putWill", will: before });
    else if (!ctx.wills.has(clientId)) ctx.store.add({ kind: "deleteWill", clientId });
    return undefined;
  }
  // Taken over or fenced meanwhile: not ours to open.
  return node.owns(clientId) ? undefined : UNAVAILABLE;
}

/**
 * The will `connection`'s CONNECT carried, as stored while the connection is open: `sendAt` 0, or `-delayMs`
 * with a Will Delay (due that long after its node dies [MQTT-3.1.3-9 (5.0)]).
 */
function armedWill(connection: Connection, now: number): PendingWill | undefined {
  const will = connection.will;
  if (will === undefined) return undefined;
  const delay = connection.protocolVersion === 5 ? (will.properties?.willDelayInterval ?? 0) : 0;
  return storedWill(
    connection.identity,
    messageFromWill(will, connection.clientId, now),
    delay === 0 ? 0 : -delay * 1000,
  );
}

/** Makes `clientId` this node's with `claim`: its stored session restored offline, its will armed here. */
function install(node: ClusterNode, clientId: string, claim: Claim): void {
  const ctx = node.context;
  const now = ctx.clock.now();
  // Back on a node it left a moment ago: what reaches it here is delivered here, not passed on to its old node.
  const movedKey = MOVED_PREFIX + clientId;
  if (node.moved.delete(movedKey)) ctx.router.unsubscribeAll(movedKey);
  const stale = ctx.sessions.forget(clientId);
  if (stale !== undefined) ctx.wills.cancel(clientId);
  node.epochs.set(clientId, claim.epoch);
  if (claim.session !== undefined) ctx.sessions.restore([claim.session], now);
  if (claim.will !== undefined) {
    // Armed (sendAt 0, or -delay ms) means its connection died with its node: due after its Will Delay from
    // now. A resuming CONNECT cancels it [MQTT-3.1.3-9 (5.0)].
    const sendAt = claim.will.sendAt;
    ctx.wills.restore([sendAt <= 0 ? { ...claim.will, sendAt: now - sendAt } : claim.will], now);
  }
}

/**
 * Another node claims `clientId`: the connection here is told (v5 0x8E) and closed with its will handled as for
 * any takeover [MQTT-3.1.4-3 (5.0)], pending writes commit, the session leaves this node, and its non-shared
 * subscriptions stay here for a lease under a moved key, so what still reaches this node goes on to the new one.
 */
export async function onTakeover(node: ClusterNode, clientId: string, by: Incarnation): Promise<void> {
  const ctx = node.context;
  const epoch = node.epochs.get(clientId);
  if (epoch === undefined) {
    // Asked while this node's own claim waits: handed over once that claim has it (`claimForConnect`).
    if (node.claiming.has(clientId)) node.kicked.set(clientId, by);
    // Asked as a claim under way that failed (the engine went away after it asked): nothing to hand over.
    else node.engine.decline(clientId, by);
    return;
  }
  const session = ctx.sessions.get(clientId);
  const movedKey = MOVED_PREFIX + clientId;
  // From here a CONNECT for it on this node claims it back through the engine (`ClusterNode.beforeConnack`), so
  // the claimer may answer its CONNECT now.
  node.releasing.add(clientId);
  node.engine.steppingDown(clientId, by);
  try {
    await handOver(node, clientId, by, epoch, session, movedKey);
  } finally {
    node.releasing.delete(clientId);
  }
}

/** The steps of {@linkcode onTakeover} while the id is marked as releasing. */
async function handOver(
  node: ClusterNode,
  clientId: string,
  by: Incarnation,
  epoch: number,
  session: Session | undefined,
  movedKey: string,
): Promise<void> {
  const ctx = node.context;
  if (session !== undefined) {
    const connection = session.link as Connection | undefined;
    connection?.disconnect(REASON_CODE.SessionTakenOver, "session taken over by another node");
    // Adopted from a dead node a moment ago: what waits for it in that node's inbox is delivered before it
    // goes (its new owner does not replay that inbox), and so is in the session the new owner reads.
    for (const adopted of node.adoptions) {
      if (adopted.epochs.has(clientId)) await replayInbox(node, adopted.dead, adopted).catch(() => {});
    }
    if (ctx.sessions.get(clientId) !== undefined) {
      // The moved key subscribes before the session's own subscriptions go, so no route disappears in between;
      // from here on what arrives for the session goes on to its new node, never into the stored session.
      node.moved.set(movedKey, { clientId, to: by });
      for (const subscription of ctx.router.subscriptionsOf(clientId)) {
        if (parseSharedFilter(subscription.filter) === undefined) {
          ctx.router.subscribe(movedKey, subscription);
        }
      }
      // Written whole now: a write built when the batch is cut would find no subscriptions left.
      const left = ctx.sessions.get(clientId)!;
      if (left.persistent) {
        ctx.store?.add({ kind: "putSession", session: left.toStored(ctx.router.subscriptionsOf(clientId)) });
      }
      ctx.sessions.forget(clientId);
      node.later(node.leaseMs, () => {
        node.moved.delete(movedKey);
        ctx.router.unsubscribeAll(movedKey);
      });
    }
  }
  // What the session recorded so far commits under this node's epoch before the new owner reads it.
  await ctx.store?.settled().catch(() => {});
  if (node.epochs.get(clientId) !== epoch) return;
  node.epochs.delete(clientId);
  ctx.wills.cancel(clientId); // its write is not ours to make now: the new owner has the will
  await node.engine.release(clientId, epoch);
}

/**
 * A node died: adopts the client ids of `dead` for which this node wins rendezvous hashing over the live nodes,
 * then delivers what waited in the dead node's inbox to the sessions it adopted (again after half a lease, for
 * messages still routed there meanwhile). The winner for the dead node itself forgets its keys after a lease.
 */
export async function adoptFrom(node: ClusterNode, dead: Incarnation): Promise<void> {
  const engine = node.engine;
  const live = await engine.liveNodes();
  const adopted = new Adopted(dead);
  for (const clientId of await engine.owned(dead)) {
    if (rendezvous(clientId, live) !== node.incarnation) continue;
    await adoptOne(node, clientId, dead, adopted);
  }
  if (adopted.epochs.size > 0) {
    node.context.logger.info(`adopted session(s) of dead node ${dead}`);
    node.adoptions.add(adopted);
    node.later(2 * node.leaseMs, () => {
      node.adoptions.delete(adopted);
    });
    await node.summary.settled();
    await replayInbox(node, dead, adopted);
    node.later(Math.floor(node.leaseMs / 2), () => replayInbox(node, dead, adopted));
  }
  if (rendezvous(dead, live) === node.incarnation) {
    node.later(node.leaseMs, () => sweepUp(node, dead));
  }
}

/**
 * The last step for a dead node, by the node that wins it: sessions nobody adopted (the live nodes disagreed
 * on who was live, so each left an id to another) are adopted here, then the dead node's keys are forgotten.
 */
async function sweepUp(node: ClusterNode, dead: Incarnation): Promise<void> {
  const engine = node.engine;
  const adopted = new Adopted(dead);
  for (const clientId of await engine.owned(dead)) await adoptOne(node, clientId, dead, adopted);
  if (adopted.epochs.size > 0) {
    await node.summary.settled();
    await replayInbox(node, dead, adopted);
  }
  await engine.forget(dead);
  node.remote.drop(dead);
}

/**
 * Adopts one client id of `dead`, noting its subscriptions as they were at its death in `adopted` (the dead
 * node's inbox is matched against those, not against subscriptions its client makes later).
 */
async function adoptOne(
  node: ClusterNode,
  clientId: string,
  dead: Incarnation,
  adopted: Adopted,
): Promise<void> {
  const claim = await node.engine.adopt(clientId, dead);
  if (claim === undefined) return;
  install(node, clientId, claim);
  const ctx = node.context;
  if (claim.session === undefined) {
    // A session that ended with its connection is not kept: its will (installed above) goes out now.
    ctx.wills.publish(clientId);
    ctx.store?.add({ kind: "deleteSession", clientId });
    return;
  }
  // What reaches it both through the dead node's inbox and through this node's own routes arrives once.
  node.startMerge(clientId, 2 * node.leaseMs);
  adopted.epochs.set(clientId, claim.epoch);
  for (const subscription of claim.session.subscriptions) adopted.router.subscribe(clientId, subscription);
  // From here on a change of its subscriptions ends the replays to it: the replay could not tell which
  // subscriptions it had when a message was published.
  const watched = node.router.watched;
  watched.set(clientId, 0);
  adopted.changes.set(clientId, 0);
  node.later(2 * node.leaseMs, () => {
    if (watched.get(clientId) !== undefined) watched.delete(clientId);
  });
}

/** The sessions one node adopted from one dead node: their subscriptions and epochs at adoption. */
export class Adopted {
  /** The dead node they came from. */
  readonly dead: Incarnation;
  readonly router: TopicRouter = new TopicRouter();
  readonly epochs = new Map<string, number>();
  /** The subscription change count of each at adoption (`ObservedRouter.watched`). */
  readonly changes = new Map<string, number>();

  /** Sessions adopted from `dead`. */
  constructor(dead: Incarnation) {
    this.dead = dead;
  }
}

export async function replayInbox(node: ClusterNode, dead: Incarnation, adopted: Adopted): Promise<void> {
  for (const forwarded of await node.engine.deadInbox(dead)) {
    replayForwarded(node, forwarded, adopted);
  }
}

/** The live node that wins `key` by rendezvous (highest random weight) hashing. */
export function rendezvous(key: string, nodes: readonly Incarnation[]): Incarnation | undefined {
  let best: Incarnation | undefined;
  let bestWeight = -1;
  for (const node of nodes) {
    const weight = fnv1a(`${node}\u0000${key}`);
    if (weight > bestWeight) {
      bestWeight = weight;
      best = node;
    }
  }
  return best;
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
