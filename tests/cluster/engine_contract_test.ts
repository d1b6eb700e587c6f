/** The cluster engine contract on the in-memory engine and on a real Redis. */

import { MemoryCluster } from "../../lib/cluster/memory_engine.ts";
import { RedisClusterEngine } from "../../lib/cluster/redis_engine.ts";
import { RedisServer, redisUnavailable } from "../_redis.ts";
import { CONTRACT_LEASE_MS, type ContractCluster, engineContract } from "./engine_contract.ts";

engineContract({
  name: "memory",
  unavailable: () => undefined,
  open(): Promise<ContractCluster> {
    const memory = new MemoryCluster({ leaseMs: CONTRACT_LEASE_MS });
    return Promise.resolve({
      engine: () => memory.engine(),
      down: () => Promise.resolve(memory.down()),
      up: (keepData) => Promise.resolve(memory.up({ keepData })),
      close: () => Promise.resolve(memory.close()),
    });
  },
});

engineContract({
  name: "redis",
  unavailable: redisUnavailable,
  async open(): Promise<ContractCluster> {
    // Outages here check what survives a SIGKILL: see RedisServerOptions.appendfsync.
    const redis = await RedisServer.start({ appendfsync: "always" });
    return {
      engine: () => new RedisClusterEngine({ url: redis.url }),
      down: () => redis.kill(),
      up: (keepData) => redis.restart({ empty: !keepData }),
      close: () => redis.stop(),
    };
  },
});
