/**
 * The Redis engine as an {@linkcode EngineKind} of the in-process cluster tests (`_cluster.ts`): each test gets
 * its own `redis-server` (see `../_redis.ts`), stopped after it.
 *
 * @module
 */

import { RedisClusterEngine } from "../../lib/cluster/redis_engine.ts";
import { RedisServer, redisUnavailable } from "../_redis.ts";
import type { EngineKind, EngineSet } from "./_cluster.ts";

/** Real Redis, one server per test. */
export const REDIS: EngineKind = {
  name: "redis",
  unavailable: () => Promise.resolve(redisUnavailable()),
  async open(): Promise<EngineSet> {
    const redis = await RedisServer.start();
    return {
      engine: () => new RedisClusterEngine({ url: redis.url }),
      close: () => redis.stop(),
    };
  },
};
