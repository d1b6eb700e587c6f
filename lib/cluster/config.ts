/**
 * The `cluster` key of the config file and the `--cluster URL` flag: which Redis the node joins, its name and
 * its lease. Parsed here and called from `server/config.ts` in one line; a bad value is a {@linkcode ConfigError}
 * naming the key, so the broker stops at start instead of running alone.
 *
 * @module
 */

import { type BrokerConfig, ConfigError } from "../broker/server/config.ts";

/** `{ "cluster": { "redis": "redis://127.0.0.1:6379", "node": "a", "leaseMs": 10000 } }` */
export type ClusterConfig = NonNullable<BrokerConfig["cluster"]>;

const KEYS = ["redis", "node", "leaseMs"] as const satisfies readonly (keyof ClusterConfig)[];
/** Shortest and longest lease: below 300 ms a busy event loop would lose its lease; above 10 min, wills wait. */
const LEASE_MIN = 300;
const LEASE_MAX = 600_000;

/** Checks a Redis URL; returns a message naming what is wrong, or undefined when it is usable. */
export function redisUrlProblem(url: string): string | undefined {
  if (url.startsWith("redis-sentinel:")) {
    // The Sentinels to ask and the master's name; the engine follows the master they name (failover).
    return /^redis-sentinel:\/\/(?::[^@/]*@)?[^/@,]+(?:,[^/@,]+)*\/[^/?#]+$/.test(url)
      ? undefined
      : `"${url}" must be redis-sentinel://HOST:PORT[,HOST:PORT...]/MASTER`;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${url}" is not a URL (redis://HOST:PORT, redis-sentinel://HOST:PORT/MASTER or unix:///path/to/redis.sock)`;
  }
  if (parsed.protocol === "unix:") {
    return parsed.pathname === "" || parsed.pathname === "/" ? `"${url}" names no socket path` : undefined;
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    return `"${url}" must start with redis://, rediss://, redis-sentinel:// or unix://`;
  }
  return parsed.hostname === "" ? `"${url}" names no host` : undefined;
}

/** Validates the `cluster` value of the config file `source`. */
export function parseClusterConfig(value: unknown, source: string): ClusterConfig {
  const fail = (message: string): never => {
    throw new ConfigError(`${source}: ${message}`);
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail("cluster must be an object");
  const object = value as Record<string, unknown>;
  for (const key of Object.keys(object)) {
    if (!(KEYS as readonly string[]).includes(key)) {
      fail(`unknown key cluster.${key} (known keys: ${KEYS.join(", ")})`);
    }
  }
  const redis = object.redis;
  if (typeof redis !== "string" || redis === "") {
    fail("cluster.redis must be a non-empty string (a Redis URL)");
  }
  const problem = redisUrlProblem(redis as string);
  if (problem !== undefined) fail(`cluster.redis: ${problem}`);
  const config: ClusterConfig = { redis: redis as string };
  if (object.node !== undefined) {
    if (typeof object.node !== "string" || !/^[A-Za-z0-9_.-]{1,64}$/.test(object.node)) {
      fail("cluster.node must be 1 to 64 letters, digits, '_', '.' or '-'");
    }
    config.node = object.node as string;
  }
  if (object.leaseMs !== undefined) {
    const lease = object.leaseMs;
    if (typeof lease !== "number" || !Number.isInteger(lease) || lease < LEASE_MIN || lease > LEASE_MAX) {
      fail(`cluster.leaseMs must be an integer from ${LEASE_MIN} to ${LEASE_MAX}`);
    }
    config.leaseMs = lease as number;
  }
  return config;
}
