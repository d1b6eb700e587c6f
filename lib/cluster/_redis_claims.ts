/**
 * Claims of client ids on Redis (CLUSTER.md §3.8): the claim script's `ask` / `take` / `adopt` steps, the
 * release, and the "stepping down" note, plus the waiting in between for what the old holder says on the control
 * stream. Kept apart from the engine's connection, lease and stream handling; the engine hands it its command
 * connection through {@linkcode ClaimsContext}.
 *
 * @module
 */

import type { Redis } from "ioredis";
import { TurnBatch } from "./_redis_batch.ts";
import { runScript } from "./_redis_client.ts";
import { encodeWill } from "./_redis_codec.ts";
import {
  type AskReply,
  claimFromReply,
  type ClaimReply,
  isAskReply,
  storedFromAsk,
} from "./_redis_sessions.ts";
import type { RedisKeys } from "./_redis_keys.ts";
import { CTL_MAXLEN } from "./_redis_lease.ts";
import type { Claim, ClaimOptions, Incarnation } from "./engine.ts";

/** What the claims need of their engine. */
export interface ClaimsContext {
  readonly keys: RedisKeys;
  readonly prefix: string;
  /** This node's incarnation (set at join). */
  incarnation(): Incarnation;
  /** Runs `body` on the command connection; throws `ClusterUnavailableError` when it cannot. */
  call<T>(body: (redis: Redis) => Promise<T>): Promise<T>;
  /** The command connection while the engine is up, for a best-effort write; else `undefined`. */
  upConnection(): Redis | undefined;
}

/** The claims of one `RedisClusterEngine` (`redis_engine.ts`). */
export class RedisClaims {
  readonly #ctx: ClaimsContext;
  /** The claims of one turn (CONNECTs read together) share one pipeline: one write and one read. */
  readonly #batch = new TurnBatch();
  readonly #releases = new Map<string, (node: Incarnation) => void>();
  readonly #stepping = new Map<string, (node: Incarnation) => void>();

  constructor(ctx: ClaimsContext) {
    this.#ctx = ctx;
  }

  /** The control stream said `node` released `clientId`. */
  released(clientId: string, node: Incarnation): void {
    this.#releases.get(clientId)?.(node);
  }

  /** The control stream said `node` is stepping down from `clientId`. */
  steppedDown(clientId: string, node: Incarnation): void {
    this.#stepping.get(clientId)?.(node);
  }

  /** `ClusterEngine.claim`. */
  async claim(clientId: string, options: ClaimOptions): Promise<Claim> {
    // What the control stream said for this id, noted from before the ask's answer (read on another connection).
    const steppingDown = new Set<Incarnation>();
    const releasedBy = new Set<Incarnation>();
    let heard = (): void => {};
    this.#releases.set(clientId, (node) => {
      releasedBy.add(node);
      heard();
    });
    this.#stepping.set(clientId, (node) => {
      steppingDown.add(node);
      heard();
    });
    try {
      // One round trip when nobody else holds it; else the holder is asked to step down first.
      const will = options.will === undefined ? "" : encodeWill(options.will);
      const reply = await this.#script(clientId, "ask", "", will);
      if (!isAskReply(reply)) return claimFromReply(reply)!;
      // Only the node asked (the owner, or the claim under way before this one) lets this claim go on.
      const holder = reply[0];
      const stored = storedFromAsk(reply);
      const released = Promise.withResolvers<void>();
      let waiting = options.waiting;
      heard = () => {
        if (waiting !== undefined && steppingDown.has(holder)) {
          const told = waiting;
          waiting = undefined;
          told(stored);
        }
        if (releasedBy.has(holder)) released.resolve();
      };
      heard();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), options.timeoutMs ?? 3000);
      });
      const outcome = await Promise.race([released.promise.then(() => "released" as const), timeout]);
      clearTimeout(timer);
      const claim = claimFromReply(await this.#script(clientId, "take", "", will) as ClaimReply)!;
      return { ...claim, previous: { node: holder, outcome } };
    } finally {
      this.#releases.delete(clientId);
      this.#stepping.delete(clientId);
    }
  }

  /** `ClusterEngine.adopt`. */
  async adopt(clientId: string, node: Incarnation): Promise<Claim | undefined> {
    return claimFromReply(await this.#script(clientId, "adopt", node) as ClaimReply);
  }

  /** `ClusterEngine.steppingDown`: best effort (the claimer otherwise waits for the release). */
  steppingDown(clientId: string, by: Incarnation): void {
    this.#note("ack", clientId, by);
  }

  /** `ClusterEngine.decline`: a release event that changes nothing (best effort: else the claimer times out). */
  decline(clientId: string, by: Incarnation): void {
    this.#note("rel", clientId, by);
  }

  /** A control-stream note from this node to the claim of `by` for `clientId`; lost while the engine is down. */
  #note(kind: "ack" | "rel", clientId: string, by: Incarnation): void {
    const redis = this.#ctx.upConnection();
    if (redis === undefined) return;
    const { keys, incarnation } = this.#ctx;
    runScript(redis, "mqClaimNote", [keys.ctl], [CTL_MAXLEN, clientId, by, incarnation(), kind]).catch(() => {
      // Best effort: the claimer then waits (for the release, or its timeout).
    });
  }

  /** `ClusterEngine.release`. */
  async release(clientId: string, epoch: number): Promise<void> {
    const { keys, prefix, incarnation } = this.#ctx;
    const [sessionKey, epochKey] = keys.session(clientId);
    await this.#ctx.call((redis) =>
      runScript(redis, "mqRelease", [sessionKey, epochKey, keys.ctl], [
        incarnation(),
        epoch,
        clientId,
        prefix,
        CTL_MAXLEN,
      ])
    );
  }

  /** Runs the claim script; its modes are described in `_redis_scripts.ts`. */
  async #script(
    clientId: string,
    mode: "ask" | "take" | "adopt",
    deadOwner: string,
    will = "",
  ): Promise<ClaimReply | AskReply> {
    const { keys, prefix, incarnation } = this.#ctx;
    return await this.#ctx.call((redis) =>
      this.#batch.run(
        redis,
        (pipeline) =>
          runScript(pipeline, "mqClaim", [...keys.session(clientId), keys.ctl], [
            incarnation(),
            prefix,
            mode,
            clientId,
            deadOwner,
            CTL_MAXLEN,
            will,
          ]),
      )
    ) as ClaimReply | AskReply;
  }
}
