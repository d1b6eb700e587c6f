/**
 * Opening ioredis connections for the Redis engine. ioredis is imported on first use, so a broker without
 * `--cluster` never loads it.
 *
 * The options make every command fail fast or bounded while Redis is unreachable: no offline queue (a command
 * sent while disconnected rejects at once), no retry of a sent command, and a bound on the wait for a reply (a
 * hung Redis, {@linkcode ReplyWatchdog}). The client reconnects by itself.
 *
 * @module
 */

import process from "node:process";
import type { ChainableCommander, Redis } from "ioredis";
import type { CommandItem } from "ioredis/built/types.js";
import { ClusterUnavailableError } from "./engine.ts";
import { type ScriptName, SCRIPTS } from "./_redis_scripts.ts";

/** A command argument. */
export type Arg = string | number;

/** Options for {@linkcode openRedis}. */
export interface OpenRedisOptions {
  /**
   * Bound on every command, ms (a blocking read adds its own block time): a command still without its reply
   * after about this (at most half more) rejects.
   */
  readonly commandTimeoutMs: number;
  /** Connection name shown by `CLIENT LIST`. */
  readonly name: string;
}

/** Where a cluster URL points. */
export type RedisTarget =
  | { readonly kind: "socket"; readonly path: string }
  | { readonly kind: "url"; readonly url: string }
  | {
    readonly kind: "sentinel";
    readonly sentinels: readonly { readonly host: string; readonly port: number }[];
    readonly name: string;
    readonly password?: string;
  };

/**
 * Where `url` points: `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS), `unix:///path/to/socket`, or
 * `redis-sentinel://[:pass@]host:port[,host:port…]/MASTER` (the master Redis Sentinel names now, followed
 * through failovers; the password is the master's).
 */
export function redisTarget(url: string): RedisTarget {
  if (url.startsWith("unix://")) {
    const path = url.slice("unix://".length);
    if (!path.startsWith("/")) {
      throw new TypeError(`Cluster URL ${url}: a unix:// URL needs an absolute path`);
    }
    return { kind: "socket", path };
  }
  if (url.startsWith("redis://") || url.startsWith("rediss://")) return { kind: "url", url };
  const sentinel = url.match(/^redis-sentinel:\/\/(?::([^@/]*)@)?([^/@]+)\/([^/?#]+)$/);
  if (sentinel !== null) {
    const sentinels = sentinel[2]!.split(",").map((hostPort) => {
      const at = hostPort.lastIndexOf(":");
      const port = at < 0 ? 26379 : Number(hostPort.slice(at + 1));
      const host = at < 0 ? hostPort : hostPort.slice(0, at);
      if (host === "" || !Number.isInteger(port) || port < 1 || port > 65535) {
        throw new TypeError(`Cluster URL ${redactUrl(url)}: "${hostPort}" is not HOST:PORT`);
      }
      return { host, port };
    });
    const name = decodeURIComponent(sentinel[3]!);
    return sentinel[1] === undefined || sentinel[1] === ""
      ? { kind: "sentinel", sentinels, name }
      : { kind: "sentinel", sentinels, name, password: decodeURIComponent(sentinel[1]) };
  }
  throw new TypeError(
    `Cluster URL ${redactUrl(url)}: expected redis://HOST:PORT, rediss://HOST:PORT, unix:///PATH or ` +
      "redis-sentinel://HOST:PORT[,HOST:PORT...]/MASTER",
  );
}

/** `url` without its password, for logs and errors. */
export function redactUrl(url: string): string {
  return url.replace(/^((?:rediss?|redis-sentinel):\/\/[^:@/]*:)[^@/]*@/, "$1***@");
}

let loading: Promise<typeof Redis> | undefined;

/**
 * ioredis, loaded once. Its `debug` dependency enumerates `process.env` when it loads (looking for `DEBUG_*`
 * options), which under Deno needs `--allow-env` for every variable; it reads the environment nowhere else. Unless
 * the whole environment is allowed anyway, it loads with an empty `process.env` in place, so a cluster broker
 * keeps the task's narrow env permission (and ioredis's debug output stays off).
 */
function loadIoredis(): Promise<typeof Redis> {
  loading ??= (async () => {
    const original = Object.getOwnPropertyDescriptor(process, "env");
    if (original === undefined || Deno.permissions.querySync({ name: "env" }).state === "granted") {
      return (await import("ioredis")).Redis;
    }
    Object.defineProperty(process, "env", {
      value: {},
      configurable: true,
      writable: true,
      enumerable: true,
    });
    try {
      return (await import("ioredis")).Redis;
    } finally {
      Object.defineProperty(process, "env", original);
    }
  })();
  return loading!;
}

/** Opens a connection (connected when this resolves) with every script of {@linkcode SCRIPTS} defined. */
export async function openRedis(url: string, options: OpenRedisOptions): Promise<Redis> {
  const target = redisTarget(url);
  const RedisClass = await loadIoredis();
  const redisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: Math.max(1000, options.commandTimeoutMs),
    connectionName: options.name,
    retryStrategy: (times: number) => Math.min(25 * times, 250),
  };
  const client = target.kind === "socket"
    ? new RedisClass({ ...redisOptions, path: target.path })
    : target.kind === "url"
    ? new RedisClass(target.url, redisOptions)
    : new RedisClass({
      ...redisOptions,
      sentinels: target.sentinels.map((s) => ({ host: s.host, port: s.port })),
      name: target.name,
      ...(target.password === undefined ? {} : { password: target.password }),
    });
  client.on("error", () => {
    // Reported through rejected commands and the engine's connection events.
  });
  watchReplies(client, options.commandTimeoutMs);
  for (const [name, script] of Object.entries(SCRIPTS)) {
    client.defineCommand(name, { numberOfKeys: script.keys, lua: script.lua });
  }
  try {
    await client.connect();
  } catch (e) {
    client.disconnect();
    throw unavailable(url, e);
  }
  return client;
}

/**
 * Bounds the wait for replies with one timer per connection, in place of ioredis's `commandTimeout`, which arms
 * and clears a timer for every command (about 4.5% of a node's CPU on connects: bench/results/2026-12-07-h3.md).
 * While commands wait, the timer looks every quarter bound at the oldest one (Redis answers in order): one that
 * has waited at its head a whole bound means Redis is hung, and every waiting command rejects with "Command
 * timed out", as ioredis's own timeout would, about one bound after it was sent (at most 1.5). A late reply
 * then settles nothing, as with ioredis's timeout.
 */
class ReplyWatchdog {
  readonly #client: Redis;
  readonly #boundMs: number;
  readonly #periodMs: number;
  readonly #tick = (): void => this.#check();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The command at the head of the queue at the last look, and since when (performance.now()). */
  #head: CommandItem["command"] | undefined;
  #since = 0;

  constructor(client: Redis, boundMs: number) {
    this.#client = client;
    this.#boundMs = boundMs;
    this.#periodMs = Math.max(1, Math.floor(boundMs / 4));
  }

  /** A command was sent: watch, unless already watching (a branch per command, no timer). */
  arm(): void {
    if (this.#timer === undefined) this.#timer = setTimeout(this.#tick, this.#periodMs);
  }

  /** The connection closed (ioredis rejected what was waiting): nothing to watch. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#head = undefined;
  }

  #check(): void {
    this.#timer = undefined;
    const queue = this.#client.commandQueue;
    const first = queue.peekFront();
    if (first === undefined) {
      this.#head = undefined;
      return;
    }
    const now = performance.now();
    if (first.command !== this.#head) {
      this.#head = first.command;
      this.#since = now;
    } else if (now - this.#since + this.#periodMs / 2 >= this.#boundMs) {
      // Four looks at the same head (half a period of slack for a timer that fires a little early).
      this.#head = undefined;
      for (const item of queue.toArray()) item.command.reject(new Error("Command timed out"));
    }
    this.#timer = setTimeout(this.#tick, this.#periodMs);
  }
}

/** Puts a {@linkcode ReplyWatchdog} on every command `client` sends. */
function watchReplies(client: Redis, boundMs: number): void {
  const watchdog = new ReplyWatchdog(client, boundMs);
  const send = client.sendCommand;
  client.sendCommand = function (this: Redis, command, stream) {
    watchdog.arm();
    return send.call(this, command, stream);
  };
  client.on("close", () => watchdog.stop());
  client.on("end", () => watchdog.stop());
}

/** Runs a script of {@linkcode SCRIPTS} on a connection or queues it on a pipeline. */
export function runScript(
  target: Redis,
  name: ScriptName,
  keys: readonly string[],
  args: readonly Arg[],
): Promise<unknown>;
export function runScript(
  target: ChainableCommander,
  name: ScriptName,
  keys: readonly string[],
  args: readonly Arg[],
): ChainableCommander;
export function runScript(
  target: Redis | ChainableCommander,
  name: ScriptName,
  keys: readonly string[],
  args: readonly Arg[],
): unknown {
  const call = (target as unknown as Record<ScriptName, (...a: Arg[]) => unknown>)[name];
  return call.call(target, ...keys, ...args);
}

/**
 * The error an engine call rejects with: a {@linkcode ClusterUnavailableError} for anything that means Redis
 * could not be reached or did not answer in time; a script's own error reply (a bug) as it is.
 */
export function unavailable(url: string, e: unknown): Error {
  if (e instanceof Error && e.name === "ReplyError" && !e.message.startsWith("FENCED")) return e;
  if (e instanceof ClusterUnavailableError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new ClusterUnavailableError(`redis ${redactUrl(url)}: ${message}`, { cause: e });
}
