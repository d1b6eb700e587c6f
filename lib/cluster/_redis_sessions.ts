/**
 * The session side of the Redis engine as pipeline steps: a group commit (one fenced script per client id, the
 * durable forwards, the inbox cursor) and a reseed, plus reading a claim's reply. Kept apart from the engine's
 * connection and lease handling.
 *
 * @module
 */

import type { ChainableCommander } from "ioredis";
import type { LoadedSession, StoredSession } from "../broker/storage/persistence.ts";
import {
  decodeOutgoing,
  decodeSession,
  decodeWill,
  encodeMessage,
  encodeOutgoing,
  encodeSession,
  encodeWill,
} from "./_redis_codec.ts";
import { type Arg, runScript } from "./_redis_client.ts";
import { forwardBatchArg } from "./_redis_forward_codec.ts";
import type { RedisKeys } from "./_redis_keys.ts";
import {
  type Claim,
  type CommitBatch,
  type FencedOp,
  type Incarnation,
  type ReseedState,
  sessionOpClientId,
} from "./engine.ts";

/** Who writes: the keys, their prefix (scripts build other nodes' keys from it) and this node. */
export interface Writer {
  readonly keys: RedisKeys;
  readonly prefix: string;
  readonly me: Incarnation;
}

/** The claim script's reply: `{epoch, session, outgoing (newline-separated), incoming[], will}` or nil. */
export type ClaimReply = [number, string, string, string[], string] | null;

/** The claim script's reply in mode `ask` when a live other node owns the id: `{owner, session record or ''}`. */
export type AskReply = [string, string];

/** Whether the claim script answered an `ask` with the live owner to wait for (its name comes first). */
export function isAskReply(reply: ClaimReply | AskReply): reply is AskReply {
  return reply !== null && typeof reply[0] === "string";
}

/** The session record an `ask` reply carries, without its queues. */
export function storedFromAsk(reply: AskReply): StoredSession | undefined {
  return reply[1] === "" ? undefined : decodeSession(reply[1]);
}

/** A claim from the claim script's reply (undefined when an adoption lost). */
export function claimFromReply(reply: ClaimReply): Claim | undefined {
  if (reply === null) return undefined;
  const [epoch, session, outgoing, incoming, will] = reply;
  const claim: { -readonly [K in keyof Claim]: Claim[K] } = { epoch };
  if (session !== "") {
    claim.session = {
      ...decodeSession(session),
      outgoing: outgoing === "" ? [] : outgoing.split("\n").map(decodeOutgoing).sort((a, b) => a.seq - b.seq),
      incoming: incoming.map(Number).sort((a, b) => a - b),
    };
  }
  if (will !== "") claim.will = decodeWill(will);
  return claim;
}

/** The ops of a batch per client id, in order. */
export function opsByClient(ops: readonly FencedOp[]): Map<string, FencedOp[]> {
  const byClient = new Map<string, FencedOp[]>();
  for (const fenced of ops) {
    const clientId = sessionOpClientId(fenced.op);
    let list = byClient.get(clientId);
    if (list === undefined) byClient.set(clientId, list = []);
    list.push(fenced);
  }
  return byClient;
}

/**
 * Queues one group commit: first one script for the session writes of every client id of `byClient` (its reply,
 * read by {@linkcode refusedClients}, says 1 applied / 0 refused per client in that order), then the durable
 * forwards and the cursor.
 */
export function queueCommit(
  pipeline: ChainableCommander,
  writer: Writer,
  byClient: ReadonlyMap<string, readonly FencedOp[]>,
  batch: CommitBatch,
): void {
  const { keys, prefix, me } = writer;
  if (byClient.size > 0) {
    const args: Arg[] = [me, prefix];
    for (const [clientId, ops] of byClient) {
      // Checked against the oldest epoch given for the client: one stale op refuses all of them.
      let epoch = Infinity;
      for (const fenced of ops) if (fenced.epoch < epoch) epoch = fenced.epoch;
      args.push(epoch, clientId, ops.length);
      for (const fenced of ops) args.push(...opArgs(fenced));
    }
    runScript(pipeline, "mqApplyAll", [], args);
  }
  for (const forward of batch.forwards) {
    pipeline.xadd(keys.durableInbox(forward.to), "*", "f", me, "d", forwardBatchArg(forward.messages));
  }
  if (batch.cursor !== undefined) {
    pipeline.set(keys.cursor(me), batch.cursor);
    pipeline.xtrim(keys.durableInbox(me), "MINID", batch.cursor);
  }
}

/**
 * The client ids of `clients` (the keys of the batch's `byClient`, in order) whose writes were refused, from the
 * replies of a pipeline {@linkcode queueCommit} filled; throws the first error reply.
 */
export function refusedClients(
  replies: readonly [Error | null, unknown][],
  clients: readonly string[],
  fail: (error: Error) => Error,
): string[] {
  for (const [error] of replies) if (error !== null) throw fail(error);
  if (clients.length === 0) return [];
  const applied = replies[0]?.[1] as readonly number[] | undefined;
  return clients.filter((_, i) => applied?.[i] !== 1);
}

/** Queues the retained messages (kept where another node wrote first) and the owned sessions of a reseed. */
export function queueReseed(pipeline: ChainableCommander, writer: Writer, state: ReseedState): void {
  const { keys, prefix, me } = writer;
  for (const message of state.retained) pipeline.hsetnx(keys.retained, message.topic, encodeMessage(message));
  for (const entry of state.sessions) {
    const outgoing = entry.session?.outgoing ?? [];
    const args: Arg[] = [
      me,
      entry.epoch,
      prefix,
      entry.clientId,
      entry.session === undefined ? "" : encodeSession(stripQueues(entry.session)),
      entry.will === undefined ? "" : encodeWill(entry.will),
      outgoing.length,
    ];
    for (const message of outgoing) args.push(message.seq, encodeOutgoing(message));
    for (const id of entry.session?.incoming ?? []) args.push(id);
    runScript(pipeline, "mqReseedSession", keys.session(entry.clientId), args);
  }
}

/** The args of one op for the apply script: `(kind, a, b)`. */
function opArgs({ op }: FencedOp): Arg[] {
  switch (op.kind) {
    case "putSession":
      return ["ps", encodeSession(op.session), ""];
    case "deleteSession":
      return ["ds", "", ""];
    case "putOutgoing":
      return ["po", op.entry.seq, encodeOutgoing(op.entry)];
    case "deleteOutgoing":
      return ["do", op.seq, ""];
    case "putIncoming":
      return ["pi", op.packetId, ""];
    case "deleteIncoming":
      return ["di", op.packetId, ""];
    case "putWill":
      return ["pw", encodeWill(op.will), ""];
    case "deleteWill":
      return ["dw", "", ""];
  }
}

function stripQueues(session: LoadedSession): StoredSession {
  const { outgoing: _outgoing, incoming: _incoming, ...stored } = session;
  return stored;
}
