/**
 * The `cluster` key of the config file and the `--cluster URL` flag: which Redis the node joins, its name and
 * its lease. Parsed here and called from `server/config_parse.ts` in one line; a bad value is a {@linkcode ConfigError}
 * naming the key, so the broker stops at start instead of running alone.
 *
 * @module
 */

import { type BrokerConfig, ConfigError } from "../broker/server/config_schema.ts";

/**
 * `cluster.peer`: where this node's peer link listens for the others' QoS 0 forwards (`peer_link.ts`), and the
 * `HOST[:PORT]` the others connect to (needed when `host` is a wildcard address such as `0.0.0.0`). `false`:
 * no link, every forward goes through Redis.
 */
export interface PeerConfig {
  /** @default {"127.0.0.1"} */
  host?: string;
  /** 0 picks a free port. @default {0} */
  port?: number;
  /** @default {`${host}:${bound port}`} */
  advertise?: string;
}

/**
 * `{ "cluster": { "redis": "redis://127.0.0.1:6379", "node": "a", "leaseMs": 10000,
 * "peer": { "host": "0.0.0.0", "port": 7883, "advertise": "10.0.0.5" } } }`
 */
export type ClusterConfig = NonNullable<BrokerConfig["cluster"]> & { peer?: PeerConfig | false };

const KEYS = ["redis", "node", "leaseMs", "peer"] as const satisfies readonly (keyof ClusterConfig)[];
const PEER_KEYS = ["host", "port", "advertise"] as const satisfies readonly (keyof PeerConfig)[];
const WILDCARD = new Set(["0.0.0.0", "::", "[::]", ""]);
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
  if (object.peer !== undefined) {
    const peer = parsePeerConfig(object.peer);
    if (typeof peer === "string") fail(peer);
    config.peer = peer as PeerConfig | false;
  }
  return config;
}

/** Checks `cluster.peer`; answers it, or a message naming what is wrong. */
function parsePeerConfig(value: unknown): PeerConfig | false | string {
  if (value === false) return false;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "cluster.peer must be an object ({ host, port, advertise }) or false";
  }
  const object = value as Record<string, unknown>;
  for (const key of Object.keys(object)) {
    if (!(PEER_KEYS as readonly string[]).includes(key)) {
      return `unknown key cluster.peer.${key} (known keys: ${PEER_KEYS.join(", ")})`;
    }
  }
  const peer: PeerConfig = {};
  const { host, port, advertise } = object;
  if (host !== undefined) {
    if (typeof host !== "string") return "cluster.peer.host must be a string (an address to bind)";
    peer.host = host;
  }
  if (port !== undefined) {
    if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535) {
      return "cluster.peer.port must be an integer from 0 to 65535";
    }
    peer.port = port;
  }
  if (advertise !== undefined) {
    if (typeof advertise !== "string" || advertise === "" || /\s/.test(advertise)) {
      return "cluster.peer.advertise must be HOST or HOST:PORT";
    }
    peer.advertise = advertise;
  }
  return peerProblem(peer) ?? peer;
}

/** Why a peer link set-up cannot work (other nodes could not reach it), or undefined. */
export function peerProblem(peer: PeerConfig): string | undefined {
  if (peer.host !== undefined && WILDCARD.has(peer.host) && peer.advertise === undefined) {
    return `cluster.peer.advertise is needed when cluster.peer.host is "${peer.host}" (the address other nodes connect to)`;
  }
  return undefined;
}

/**
 * The `--cluster-peer HOST:PORT` flag: bind there and advertise it (`[V6]:PORT` for IPv6). Answers the
 * {@linkcode PeerConfig}, or a message naming what is wrong.
 */
export function parsePeerFlag(text: string): PeerConfig | string {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || port > 65535) return `"${text}" must be HOST:PORT (or [IPV6]:PORT)`;
  const host = match[1] ?? match[2]!;
  if (WILDCARD.has(host)) return `"${text}" binds every address: other nodes need one to connect to`;
  return { host, port };
}
