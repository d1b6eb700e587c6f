/**
 * The Redis engine's reads and writes of cluster-wide state, as functions of a connection: route summaries and
 * the consistent cut a reader starts from, lossy forwards, retained messages, a dead node's leftovers and the
 * `$SYS` counters. The engine wraps each in its reachability check.
 *
 * @module
 */

import type { ChainableCommander, Redis } from "ioredis";
import type { Message } from "../broker/storage/persistence.ts";
import { decodeMessage, encodeMessage, statsFields, statsFromHash } from "./_redis_codec.ts";
import { runScript } from "./_redis_client.ts";
import { forwardBatchArg, forwardBatchFromReply } from "./_redis_forward_codec.ts";
import type { RedisKeys } from "./_redis_keys.ts";
import { CTL_MAXLEN } from "./_redis_lease.ts";
import type { Writer } from "./_redis_sessions.ts";
import type { ForwardBatch, ForwardedMessage, Incarnation, NodeStats } from "./engine.ts";

/** `MAXLEN ~` of a lossy inbox: QoS 0 beyond it is dropped for a lagging node. */
const LOSSY_MAXLEN = 10_000;

/** Adds or removes filters of the writer's route summary; answers the route version. */
export async function changeRoutes(
  redis: Redis,
  writer: Writer,
  filters: readonly string[],
  op: "add" | "remove",
): Promise<number> {
  const { keys, me } = writer;
  return await runScript(redis, "mqRoutes", [keys.routes(me), keys.routeVersion, keys.ctl], [
    me,
    op,
    CTL_MAXLEN,
    ...filters,
  ]) as number;
}

/** One consistent cut: the last control entry, the route version, the control sequence number, live routes. */
export interface Snapshot {
  readonly lastId: string;
  readonly version: number;
  readonly seq: number;
  readonly nodes: Map<Incarnation, readonly string[]>;
}

/** Reads a {@linkcode Snapshot}. */
export async function readSnapshot(redis: Redis, keys: RedisKeys, prefix: string): Promise<Snapshot> {
  const reply = await runScript(redis, "mqSnapshot", [keys.nodes, keys.routeVersion, keys.ctl], [prefix]) as [
    string,
    number,
    number,
    ...(string | string[])[],
  ];
  const [lastId, version, seq, ...rest] = reply;
  const nodes = new Map<Incarnation, readonly string[]>();
  for (let i = 0; i + 1 < rest.length; i += 2) nodes.set(rest[i] as string, rest[i + 1] as string[]);
  return { lastId, version, seq, nodes };
}

/** Queues one XADD per destination's lossy inbox. */
export function queueLossy(
  pipeline: ChainableCommander,
  writer: Writer,
  batches: readonly ForwardBatch[],
): void {
  for (const batch of batches) {
    pipeline.xadd(
      writer.keys.lossyInbox(batch.to),
      "MAXLEN",
      "~",
      LOSSY_MAXLEN,
      "*",
      "f",
      writer.me,
      "d",
      forwardBatchArg(batch.messages),
    );
  }
}

/** Sets (or, with an empty payload, deletes) a retained message and appends its control event, atomically. */
export async function writeRetained(redis: Redis, keys: RedisKeys, message: Message): Promise<void> {
  const data = message.payload.length === 0 ? "" : encodeMessage(message);
  await runScript(redis, "mqRetain", [keys.retained, keys.ctl], [message.topic, data, CTL_MAXLEN]);
}

/** Every retained message. */
export async function readRetained(redis: Redis, keys: RedisKeys): Promise<Message[]> {
  return Object.values(await redis.hgetall(keys.retained)).map(decodeMessage);
}

/** What `node`'s durable inbox holds past its committed cursor. */
export async function readDeadInbox(
  redis: Redis,
  keys: RedisKeys,
  node: Incarnation,
): Promise<ForwardedMessage[]> {
  const cursor = await redis.get(keys.cursor(node));
  const entries = await redis.xrangeBuffer(
    keys.durableInbox(node),
    cursor === null ? "-" : `(${cursor}`,
    "+",
  );
  // Inbox entries are always `f <from> d <batch>`: the batch is the last field.
  return entries.flatMap(([, fields]) => forwardBatchFromReply(fields[fields.length - 1]!));
}

/** Deletes a node's keys unless it is live; its routes go with a control event each. */
export async function forgetNode(redis: Redis, keys: RedisKeys, node: Incarnation): Promise<void> {
  await runScript(redis, "mqForget", [
    keys.lease(node),
    keys.lossyInbox(node),
    keys.durableInbox(node),
    keys.cursor(node),
    keys.routes(node),
    keys.owned(node),
    keys.stats(node),
    keys.routeVersion,
    keys.ctl,
  ], [node, CTL_MAXLEN]);
}

/** Writes a node's counters, kept `keepMs`. */
export async function writeStats(
  redis: Redis,
  writer: Writer,
  stats: NodeStats,
  keepMs: number,
): Promise<void> {
  const key = writer.keys.stats(writer.me);
  await redis.multi().hset(key, ...statsFields(stats)).pexpire(key, keepMs).exec();
}

/** The counters of `nodes` that have any. */
export async function readStats(
  redis: Redis,
  keys: RedisKeys,
  nodes: readonly Incarnation[],
): Promise<NodeStats[]> {
  const pipeline = redis.pipeline();
  for (const node of nodes) pipeline.hgetall(keys.stats(node));
  const replies = await pipeline.exec();
  return nodes.flatMap((node, i) => {
    const [error, hash] = replies?.[i] ?? [null, {}];
    const fields = hash as Record<string, string>;
    return error === null && Object.keys(fields).length > 0 ? [statsFromHash(node, fields)] : [];
  });
}
