/**
 * The Redis engine's lease steps: register (join, or again after Redis lost its data), renew, sweep (the role one
 * node holds at a time: declare lapsed nodes dead with a tombstone) and leave. Redis's clock decides expiry.
 *
 * @module
 */

import type { Redis } from "ioredis";
import { runScript } from "./_redis_client.ts";
import type { RedisKeys } from "./_redis_keys.ts";
import type { Incarnation } from "./engine.ts";

/** `MAXLEN ~` of the control stream: a node further behind than this resyncs from a snapshot. */
export const CTL_MAXLEN = 100_000;
/** How long a tombstone keeps a dead incarnation from renewing (it never comes back: incarnations are new). */
const TOMBSTONE_MS = 24 * 3600_000;

/** Whose lease. */
export interface LeaseHolder {
  readonly keys: RedisKeys;
  readonly prefix: string;
  readonly me: Incarnation;
  readonly leaseMs: number;
}

/** A renewal's answer: alive, data lost, or declared dead. */
export type Renewal =
  | { readonly outcome: "ok" }
  | { readonly outcome: "reset" }
  | { readonly outcome: "fenced" };

function leaseKeys(holder: LeaseHolder): string[] {
  const { keys, me } = holder;
  return [keys.cluster, keys.nodes, keys.lease(me), keys.dead(me), keys.ctl];
}

/** Takes the lease; answers the cluster id, or undefined when this incarnation was declared dead. */
export async function registerLease(redis: Redis, holder: LeaseHolder): Promise<string | undefined> {
  const reply = await runScript(redis, "mqJoin", leaseKeys(holder), [
    holder.me,
    holder.leaseMs,
    crypto.randomUUID(),
    CTL_MAXLEN,
  ]) as [string, string?];
  return reply[0] === "ok" ? reply[1] ?? "" : undefined;
}

/** Renews the lease if Redis still has `clusterId` and no tombstone for this node. */
export async function renewLease(redis: Redis, holder: LeaseHolder, clusterId: string): Promise<Renewal> {
  const [outcome] = await runScript(redis, "mqRenew", leaseKeys(holder), [
    holder.me,
    holder.leaseMs,
    clusterId,
  ]) as [string];
  if (outcome === "ok") return { outcome };
  return outcome === "reset" ? { outcome } : { outcome: "fenced" };
}

/** If no other node holds the sweeper role, takes it and declares every lapsed node dead. */
export async function sweepLeases(redis: Redis, holder: LeaseHolder): Promise<void> {
  const { keys } = holder;
  await runScript(redis, "mqSweep", [keys.sweeper, keys.nodes, keys.ctl], [
    holder.me,
    holder.leaseMs,
    holder.prefix,
    CTL_MAXLEN,
    TOMBSTONE_MS,
  ]);
}

/** Drops the lease and declares this node dead at once, so its sessions are adopted without waiting. */
export async function leaveLease(redis: Redis, holder: LeaseHolder): Promise<void> {
  const { keys, me } = holder;
  await runScript(redis, "mqLeave", [keys.lease(me), keys.dead(me), keys.nodes, keys.ctl], [
    me,
    CTL_MAXLEN,
    TOMBSTONE_MS,
  ]);
}
