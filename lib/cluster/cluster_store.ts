/**
 * The group commit of a clustered broker: the broker's {@linkcode Persistence} ops of one event-loop turn go to
 * the engine as one batch, each session op fenced by the epoch this node holds for its client id, together with
 * the durable (QoS 1/2) forwards and the inbox cursor, so a PUBACK / PUBREC that waits for the commit waits for
 * the forwards too. While the engine is unreachable the commit waits (acknowledgements are held, never failed).
 *
 * @module
 */

import type { Connection } from "../broker/connection.ts";
import type { BrokerContext } from "../broker/context.ts";
import { printable } from "../broker/logger.ts";
import type { Message, PersistenceOp } from "../broker/storage/persistence.ts";
import { REASON_CODE } from "../packet/reason_code.ts";
import { ClusterUnavailableError, type FencedOp, type SessionOp, sessionOpClientId } from "./engine.ts";
import type { ClusterNode } from "./node.ts";

/** No-op op that makes the commit queue cut a batch (for durable forwards and inbox cursors that have no op). */
const MARK: PersistenceOp = { kind: "deleteWill", clientId: "" };
const MARK_KEY = {};

/** Pause before a commit the engine refused is tried again, ms. */
const RETRY_MS = 20;

/**
 * An armed will (`sendAt` 0: its connection is open) is stored with its Will Delay as `-delayMs`, so the node
 * that adopts it after this node dies sends it that long after, unless the client is back first
 * [MQTT-3.1.3-9 (5.0)]. Other ops pass unchanged.
 */
function armedWithDelay(op: SessionOp, context: BrokerContext): SessionOp {
  if (op.kind !== "putWill" || op.will.sendAt !== 0) return op;
  const connection = context.sessions.get(op.will.clientId)?.link as Connection | undefined;
  const delay = connection?.will?.properties?.willDelayInterval ?? 0;
  return delay === 0 ? op : { kind: "putWill", will: { ...op.will, sendAt: -delay * 1000 } };
}

/** Makes the commit queue cut a batch soon (durable forwards or an inbox cursor wait in it). */
export function markCommit(context: BrokerContext): void {
  context.store?.addLatest(MARK_KEY, () => MARK);
}

/** Commits one batch of `ops` (with the forwards and the cursor waiting in `node`) to the engine. */
export async function commitToEngine(node: ClusterNode, ops: readonly PersistenceOp[]): Promise<void> {
  const fenced: FencedOp[] = [];
  const retained: Message[] = [];
  for (const op of ops) {
    if (op === MARK) continue;
    if (op.kind === "putRetained") retained.push(op.message);
    else if (op.kind === "deleteRetained") {
      retained.push({ topic: op.topic, payload: new Uint8Array(0), qos: 0, retain: true });
    } else {
      const clientId = sessionOpClientId(op);
      const epoch = node.epochs.get(clientId);
      // Not owned (any more): the session moved or the node fenced; the write is not ours to make.
      if (epoch === undefined) continue;
      // A session that ended while another node takes it over: its data goes, but the id stays owned here
      // until the release, which is what lets the claimer go on (a deleteSession would give it up silently).
      const kept = op.kind === "deleteSession" && node.releasing.has(clientId);
      fenced.push({
        op: kept ? { kind: "deleteWill", clientId } : armedWithDelay(op, node.context),
        epoch,
      });
    }
  }
  const forwards = node.forwarder.takeDurable();
  const cursor = node.cursor;
  node.cursor = undefined;
  if (fenced.length === 0 && forwards.length === 0 && retained.length === 0 && cursor === undefined) return;
  for (;;) {
    if (node.state === "fenced" || node.state === "closed") {
      throw new ClusterUnavailableError(`cluster node ${node.incarnation} is ${node.state}`);
    }
    try {
      for (const message of retained) await node.engine.retain(message);
      retained.length = 0;
      const batch = cursor === undefined ? { ops: fenced, forwards } : { ops: fenced, forwards, cursor };
      const outcome = await node.engine.commit(batch);
      if (outcome.refused.length > 0) dropRefused(node, outcome.refused);
      await afterDeletes(node, fenced, outcome.refused);
      return;
    } catch (error) {
      if (!(error instanceof ClusterUnavailableError)) throw error;
      // Held, not failed: a QoS 1/2 acknowledgement waits for the engine (CLUSTER.md §3.10). A pause first:
      // the news that the engine is away may not have reached this node yet, and retrying at once would spin.
      await node.pause(RETRY_MS);
      await node.whenReachable();
    }
  }
}

/**
 * A committed `deleteSession` gives up the client id. Mostly the session is gone here too, and so is this
 * node's epoch for it; but when a session still lives here (a clean start, or a persistent session resumed as
 * a non-persistent one, recorded in the same batch), the id is claimed again at once, so it stays unique and
 * later writes are not refused.
 */
async function afterDeletes(
  node: ClusterNode,
  ops: readonly FencedOp[],
  refused: readonly string[],
): Promise<void> {
  for (const { op } of ops) {
    if (op.kind !== "deleteSession" || refused.includes(op.clientId)) continue;
    const clientId = op.clientId;
    if (node.context.sessions.get(clientId) === undefined) {
      node.epochs.delete(clientId);
    } else if (node.epochs.has(clientId)) {
      node.epochs.set(clientId, (await node.engine.claim(clientId, { timeoutMs: 0 })).epoch);
    }
  }
}

/** Another node owns these client ids now: their sessions leave this node without a will or a write. */
function dropRefused(node: ClusterNode, clientIds: readonly string[]): void {
  const ctx = node.context;
  for (const clientId of clientIds) {
    node.epochs.delete(clientId);
    const session = ctx.sessions.get(clientId);
    const connection = session?.link as Connection | undefined;
    if (connection !== undefined) {
      connection.will = undefined;
      connection.disconnect(REASON_CODE.SessionTakenOver, "session owned by another node");
    }
    ctx.sessions.forget(clientId);
    ctx.wills.cancel(clientId);
    ctx.logger.info(`session ${printable(clientId)} dropped: another node owns it now`);
  }
}
