/**
 * The deployments the cluster benchmark measures, each a set of processes started here and stopped at the end:
 *
 * - `single-node`: our broker alone, started by `startPeer("ours")` of `_peers.ts` (memory, no limits);
 * - `cluster`: a `redis-server` on a free 127.0.0.1 port (AOF on, `appendfsync everysec`, no RDB snapshots, as
 *   `../shared/CLUSTER.md` §4 runs it) and three of our brokers with `--cluster redis://127.0.0.1:PORT`, started
 *   with the same flags and V8 settings as `single-node`;
 * - `aedes-redis`: the JavaScript anchor for a Redis-backed cluster: another `redis-server` with the same settings
 *   and three aedes processes, each with `mqemitter-redis` (messages between nodes) and `aedes-persistence-redis`
 *   (sessions, subscriptions, retained, offline queues), at the versions pinned in `deno.json` `imports`. They run
 *   on Node (the runtime aedes is written for, as the load benchmark runs aedes), installed with `npm install`
 *   into a temporary directory that later runs reuse; where Node is missing, on Deno through the same imports.
 *
 * Each Redis is its own process so that its CPU time (`/proc/PID/stat`) and `INFO commandstats` belong to one
 * deployment.
 *
 * @module
 */

import { join } from "node:path";
import process from "node:process";
import { denoRun, freePort, oursBroker, type Peer, startPeer, watchChild } from "./_peers.ts";

/** The deployments, in the order a run measures them (the order rotates between runs). */
export const DEPLOYMENTS = ["single-node", "cluster", "aedes-redis"] as const;
/** One of {@linkcode DEPLOYMENTS}. */
export type DeploymentName = typeof DEPLOYMENTS[number];

/** A running `redis-server`. */
export interface RedisServer {
  readonly port: number;
  readonly pid: number;
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  /** Sends one command and resolves its reply as text (bulk and simple strings, integers); rejects on an error. */
  command(...args: string[]): Promise<string>;
  /** Calls per command since start (`INFO commandstats`), lower-case names. */
  commandCalls(): Promise<Map<string, number>>;
  /** Bytes Redis has read from its clients since start (`INFO stats` `total_net_input_bytes`). */
  inputBytes(): Promise<number>;
  stop(): Promise<void>;
}

/** A set of broker processes that together are one broker to MQTT clients. */
export interface Deployment {
  readonly name: DeploymentName;
  /** The MQTT port of node A, B and C (the same port three times for `single-node`). */
  readonly ports: readonly [number, number, number];
  /** The broker processes' ids. */
  readonly brokerPids: readonly number[];
  /** The Redis behind it, when it has one. */
  readonly redis?: RedisServer;
  /** Whether every process is still running. */
  alive(): boolean;
  /** What the processes last printed on stderr, for a failure report. */
  stderrTail(): string;
  stop(): Promise<void>;
}

const PROJECT_ROOT = new URL("..", import.meta.url).pathname;
const STDOUT_TAIL = 4096;
const NPM_TIMEOUT_MS = 180_000;
const START_TIMEOUT_MS = 30_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- processes ------------------------------------------------------------------------------------------------

/** A child process whose stderr tail is kept and whose stdout is scanned for a listening port. */
interface Child {
  readonly pid: number;
  readonly announced: Promise<number>;
  alive(): boolean;
  stderrTail(): string;
  stop(): Promise<void>;
}

function spawn(command: Deno.Command, cleanup?: () => Promise<void>): Child {
  let resolvePort!: (port: number) => void;
  const announced = new Promise<number>((resolve) => resolvePort = resolve);
  let stdoutText = "";
  const watched = watchChild(command, {
    onStdout(text) {
      // Ours: "listening on tcp://127.0.0.1:PORT"; the aedes script: "listening on 127.0.0.1:PORT".
      stdoutText = (stdoutText + text).slice(-STDOUT_TAIL);
      const match = /listening on (?:tcp:\/\/)?127\.0\.0\.1:(\d+)/.exec(stdoutText);
      if (match) resolvePort(Number(match[1]));
    },
    cleanup,
  });
  return {
    pid: watched.pid,
    announced,
    alive: watched.running,
    stderrTail: () => (watched.stderr().trim() || stdoutText.trim()).split("\n").slice(-5).join(" / "),
    stop: watched.stop,
  };
}

/** Waits for a child's announced port, or fails with what it printed. */
async function announcedPort(child: Child, what: string): Promise<number> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const port = await Promise.race([
    child.announced,
    new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), START_TIMEOUT_MS)),
    (async () => {
      while (child.alive()) await sleep(50);
      return undefined;
    })(),
  ]);
  clearTimeout(timer);
  if (port === undefined) {
    const why = child.alive() ? `did not start within ${START_TIMEOUT_MS} ms` : "exited at start";
    await child.stop();
    throw new Error(`${what} ${why}: ${child.stderrTail() || "no output"}`);
  }
  return port;
}

// ---- Redis ----------------------------------------------------------------------------------------------------

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a command as a RESP array of bulk strings. */
function respCommand(args: readonly string[]): Uint8Array {
  let text = `*${args.length}\r\n`;
  for (const arg of args) text += `$${encoder.encode(arg).length}\r\n${arg}\r\n`;
  return encoder.encode(text);
}

/**
 * Parses one RESP reply from `bytes` (simple string, error, integer, bulk string); undefined while incomplete.
 * Byte offsets, not character offsets: a bulk string's length counts bytes.
 */
function respReply(bytes: Uint8Array): { value: string; error: boolean } | undefined {
  let eol = -1;
  for (let i = 0; i + 1 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10) {
      eol = i;
      break;
    }
  }
  if (eol < 0) return undefined;
  const line = decoder.decode(bytes.subarray(1, eol));
  switch (bytes[0]) {
    case 0x2b: // +
    case 0x3a: // :
      return { value: line, error: false };
    case 0x2d: // -
      return { value: line, error: true };
    case 0x24: { // $
      const length = Number(line);
      if (length < 0) return { value: "", error: false };
      if (bytes.length < eol + 2 + length + 2) return undefined;
      return { value: decoder.decode(bytes.subarray(eol + 2, eol + 2 + length)), error: false };
    }
    default:
      throw new Error(`unexpected RESP reply type ${String.fromCharCode(bytes[0]!)}`);
  }
}

/** One command on a fresh connection (the benchmark asks Redis a few times per run, never per message). */
async function redisCommand(port: number, args: readonly string[]): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const request = respCommand(args);
    let offset = 0;
    while (offset < request.length) offset += await conn.write(request.subarray(offset));
    let have = new Uint8Array(0);
    const buffer = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) throw new Error(`redis closed the connection before answering ${args[0]}`);
      const grown = new Uint8Array(have.length + n);
      grown.set(have);
      grown.set(buffer.subarray(0, n), have.length);
      have = grown;
      const reply = respReply(have);
      if (reply === undefined) continue;
      if (reply.error) throw new Error(`redis ${args[0]}: ${reply.value}`);
      return reply.value;
    }
  } finally {
    conn.close();
  }
}

/** Whether `redis-server` can be started here (the reason when not). */
export async function redisUnavailable(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("redis-server", {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    return out.success ? undefined : "redis-server --version failed";
  } catch {
    return "redis-server is not installed";
  }
}

/** `redis-server --version`'s version, for the notes. */
export async function redisVersion(): Promise<string> {
  try {
    const out = await new Deno.Command("redis-server", {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    return /v=(\S+)/.exec(decoder.decode(out.stdout))?.[1] ?? "unknown";
  } catch {
    return "not installed";
  }
}

/**
 * Starts `redis-server` on a free port of 127.0.0.1 with AOF on (`appendfsync everysec`) and no RDB snapshots,
 * in a fresh temporary directory removed at stop, and waits until it answers PING.
 */
export async function startRedis(): Promise<RedisServer> {
  const dir = await Deno.makeTempDir({ prefix: "mqtt-bench-redis-" });
  const port = freePort();
  const child = spawn(
    new Deno.Command("redis-server", {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--dir",
        dir,
        "--loglevel",
        "warning",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }),
    () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  );
  const deadline = performance.now() + START_TIMEOUT_MS;
  for (;;) {
    try {
      if (await redisCommand(port, ["PING"]) === "PONG") break;
    } catch (error) {
      if (!child.alive() || performance.now() > deadline) {
        await child.stop();
        throw new Error(`redis-server did not start: ${child.stderrTail() || (error as Error).message}`);
      }
      await sleep(50);
    }
  }
  return {
    port,
    pid: child.pid,
    url: `redis://127.0.0.1:${port}`,
    command: (...args) => redisCommand(port, args),
    async commandCalls() {
      const info = await redisCommand(port, ["INFO", "commandstats"]);
      const calls = new Map<string, number>();
      for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
        calls.set(match[1]!.toLowerCase(), Number(match[2]));
      }
      return calls;
    },
    async inputBytes() {
      const info = await redisCommand(port, ["INFO", "stats"]);
      return Number(/^total_net_input_bytes:(\d+)/m.exec(info)?.[1] ?? NaN);
    },
    stop: () => child.stop(),
  };
}

// ---- our cluster nodes ----------------------------------------------------------------------------------------

/**
 * `--cpu-prof` into `$CLUSTER_BENCH_CPU_PROF/<node>` when that variable is set (profiling a scenario; the
 * profile is written when the node exits on the SIGTERM the bench stops it with).
 */
function cpuProfFlags(node: string): string[] {
  const dir = Deno.env.get("CLUSTER_BENCH_CPU_PROF");
  return dir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${join(dir, node)}`];
}

/**
 * Starts one of our brokers as a cluster node: the same flags as `startPeer("ours")` in `_peers.ts`
 * ({@linkcode oursBroker} in memory, no per-address cap) plus `--cluster URL`.
 */
async function startOurNode(redisUrl: string, node: string): Promise<Child & { port: number }> {
  const dir = await Deno.makeTempDir({ prefix: "mqtt-bench-node-" });
  const config = join(dir, "broker.json");
  // The config names the node (for its logs); --cluster gives the URL, as a user would.
  await Deno.writeTextFile(
    config,
    JSON.stringify({ limits: { maxConnectionsPerAddress: 10_000_000 }, cluster: { redis: redisUrl, node } }),
  );
  const child = spawn(
    await denoRun(
      [
        "--allow-net",
        `--allow-read=${dir}`,
        // ioredis reads a few environment variables and the host name under Deno's Node compatibility.
        "--allow-env",
        "--allow-sys",
        ...cpuProfFlags(node),
      ],
      [...oursBroker(config, "memory"), "--cluster", redisUrl],
    ),
    () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  );
  return { ...child, port: await announcedPort(child, `cluster node ${node}`) };
}

// ---- the aedes anchor -----------------------------------------------------------------------------------------

/** The anchor's packages and their versions, as pinned in `deno.json` `imports` (`npm:NAME@VERSION`). */
export async function anchorVersions(): Promise<Readonly<Record<string, string>>> {
  const config = JSON.parse(await Deno.readTextFile(join(PROJECT_ROOT, "deno.json"))) as {
    imports?: Record<string, string>;
  };
  const versions: Record<string, string> = {};
  for (const name of ANCHOR_PACKAGES) {
    const spec = config.imports?.[name];
    const match = spec === undefined ? null : /^npm:(?:@[^/]+\/)?[^@]+@(\d[^/]*)$/.exec(spec);
    if (match === null) throw new Error(`deno.json imports has no exact npm version for ${name}`);
    versions[name] = match[1]!;
  }
  return versions;
}

const ANCHOR_PACKAGES = ["aedes", "mqemitter-redis", "aedes-persistence-redis"] as const;
const ANCHOR_SCRIPT = join(PROJECT_ROOT, "bench/_cluster_aedes_server.mjs");

/** Which runtime runs the anchor: Node when installed, else Deno through `deno.json`'s imports. */
export type AnchorRuntime = "node" | "deno";

let anchorReady: Promise<{ runtime: AnchorRuntime; dir: string } | { error: string }> | undefined;

/**
 * Installs the anchor for Node once per machine (reused by later runs), or, when Node is missing or `runtime` is
 * `"deno"`, runs it on Deno from `deno.json`'s imports. Resolves where it runs from, or why it cannot run. The
 * first call decides for the process.
 */
export function prepareAnchor(
  runtime: AnchorRuntime = "node",
): Promise<{ runtime: AnchorRuntime; dir: string } | { error: string }> {
  anchorReady ??= (async () => {
    const versions = await anchorVersions();
    if (runtime === "deno") return { runtime: "deno" as const, dir: PROJECT_ROOT };
    try {
      await new Deno.Command("node", { args: ["--version"], stdout: "null", stderr: "null" }).output();
    } catch {
      return { runtime: "deno" as const, dir: PROJECT_ROOT };
    }
    const specs = ANCHOR_PACKAGES.map((name) => `${name}@${versions[name]}`);
    const dir = join(Deno.env.get("TMPDIR") ?? "/tmp", `mqtt-bench-aedes-redis-${specs.join("-")}`);
    try {
      await Deno.mkdir(dir, { recursive: true });
      let installed = true;
      for (const name of ANCHOR_PACKAGES) {
        try {
          const meta = JSON.parse(await Deno.readTextFile(join(dir, "node_modules", name, "package.json")));
          if (meta.version !== versions[name]) installed = false;
        } catch {
          installed = false;
        }
      }
      if (!installed) {
        const out = await new Deno.Command("npm", {
          args: ["install", ...specs, "--prefix", dir, "--no-audit", "--no-fund", "--silent"],
          stdout: "null",
          stderr: "piped",
          signal: AbortSignal.timeout(NPM_TIMEOUT_MS),
        }).output();
        if (!out.success) {
          return { error: `npm install ${specs.join(" ")} failed: ${decoder.decode(out.stderr).trim()}` };
        }
      }
      // Node resolves the bare imports from the script's own directory.
      await Deno.copyFile(ANCHOR_SCRIPT, join(dir, "server.mjs"));
      return { runtime: "node" as const, dir };
    } catch (error) {
      return { error: `cannot prepare the aedes anchor: ${(error as Error).message}` };
    }
  })();
  return anchorReady;
}

async function startAedesNode(redisPort: number): Promise<Child & { port: number }> {
  const ready = await prepareAnchor();
  if ("error" in ready) throw new Error(ready.error);
  const command = ready.runtime === "node"
    ? new Deno.Command("node", {
      args: [join(ready.dir, "server.mjs"), String(redisPort)],
      cwd: ready.dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
    : new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        "--allow-env",
        "--allow-sys",
        "--allow-read",
        ANCHOR_SCRIPT,
        String(redisPort),
      ],
      cwd: PROJECT_ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
  const child = spawn(command);
  return { ...child, port: await announcedPort(child, "aedes-redis node") };
}

// ---- deployments ----------------------------------------------------------------------------------------------

function fromPeer(peer: Peer): Deployment {
  return {
    name: "single-node",
    ports: [peer.port, peer.port, peer.port],
    brokerPids: [peer.pid],
    alive: () => peer.alive(),
    stderrTail: () => peer.stderrTail(),
    stop: () => peer.stop(),
  };
}

/** Starts Redis and three nodes with `startNode`; stops what started when one fails. */
async function startThree(
  name: DeploymentName,
  startNode: (redis: RedisServer, index: number) => Promise<Child & { port: number }>,
): Promise<Deployment> {
  const redis = await startRedis();
  const nodes: (Child & { port: number })[] = [];
  try {
    // One after the other: three Deno start-ups at once on two cores take longer than in turn.
    for (let i = 0; i < 3; i++) nodes.push(await startNode(redis, i));
  } catch (error) {
    await Promise.all(nodes.map((node) => node.stop()));
    await redis.stop();
    throw error;
  }
  return {
    name,
    ports: [nodes[0]!.port, nodes[1]!.port, nodes[2]!.port],
    brokerPids: nodes.map((node) => node.pid),
    redis,
    alive: () => nodes.every((node) => node.alive()),
    stderrTail: () => nodes.map((node, i) => `node ${"ABC"[i]}: ${node.stderrTail() || "-"}`).join("; "),
    async stop() {
      await Promise.all(nodes.map((node) => node.stop()));
      await redis.stop();
    },
  };
}

/** Starts one deployment and waits until every node accepts connections. */
export function startDeployment(name: DeploymentName): Promise<Deployment> {
  switch (name) {
    case "single-node":
      return startPeer("ours").then(fromPeer);
    case "cluster":
      return startThree(name, (redis, i) => startOurNode(redis.url, `bench-${"abc"[i]}`));
    case "aedes-redis":
      return startThree(name, (redis) => startAedesNode(redis.port));
  }
}

// ---- CPU ------------------------------------------------------------------------------------------------------

/**
 * Reads a file under /proc. Deno grants /proc only with --allow-all, so without it the file is read by `cat`
 * (the bench task has --allow-run).
 */
async function readProc(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable) && !(error instanceof Deno.errors.PermissionDenied)) {
      throw error;
    }
    const out = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "piped" }).output();
    if (!out.success) throw new Error(`cannot read ${path}: ${decoder.decode(out.stderr).trim()}`);
    return decoder.decode(out.stdout);
  }
}

/** USER_HZ, the unit of /proc/PID/stat times: 100 on every Linux architecture Deno runs on. */
const CLOCK_TICKS = 100;

/** CPU time (user + system, all threads) a process has used, seconds. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readProc(`/proc/${pid}/stat`);
  // utime and stime are fields 14 and 15; count from after the command name, which may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** CPU shares over a window, percent of one core. */
export interface DeploymentCpu {
  /** The broker processes together. */
  readonly brokers: number;
  /** Redis, when the deployment has one. */
  readonly redis: number | undefined;
  /** This process, the load generator. */
  readonly generator: number;
}

/**
 * Measures the CPU of a deployment's processes and of the generator between `onWindow("start")` and
 * `onWindow("end")`; also counts Redis commands over the same window.
 */
export function deploymentMeter(deployment: Deployment): {
  onWindow(edge: "start" | "end"): Promise<void>;
  cpu(): DeploymentCpu | undefined;
  /** Redis calls per command during the window. */
  commands(): ReadonlyMap<string, number> | undefined;
  /** Length of the window, s. */
  seconds(): number | undefined;
  /** Bytes Redis read from its clients during the window (the brokers' writes). */
  redisInputBytes(): number | undefined;
} {
  const sample = async () => {
    const brokers = await Promise.all(deployment.brokerPids.map(cpuSeconds));
    const redis = deployment.redis === undefined ? undefined : await cpuSeconds(deployment.redis.pid);
    const calls = deployment.redis === undefined ? undefined : await deployment.redis.commandCalls();
    const input = deployment.redis === undefined ? undefined : await deployment.redis.inputBytes();
    return {
      brokers: brokers.reduce((a, b) => a + b, 0),
      redis,
      calls,
      input,
      self: ownCpuSeconds(),
      at: performance.now(),
    };
  };
  let start: Awaited<ReturnType<typeof sample>> | undefined;
  let result: DeploymentCpu | undefined;
  let commands: Map<string, number> | undefined;
  let seconds: number | undefined;
  let inputBytes: number | undefined;
  return {
    async onWindow(edge) {
      try {
        const now = await sample();
        if (edge === "start") {
          start = now;
          return;
        }
        if (start === undefined) return;
        seconds = (now.at - start.at) / 1000;
        result = {
          brokers: (100 * (now.brokers - start.brokers)) / seconds,
          redis: now.redis === undefined || start.redis === undefined
            ? undefined
            : (100 * (now.redis - start.redis)) / seconds,
          generator: (100 * (now.self - start.self)) / seconds,
        };
        if (now.input !== undefined && start.input !== undefined) inputBytes = now.input - start.input;
        if (now.calls !== undefined && start.calls !== undefined) {
          commands = new Map();
          for (const [name, calls] of now.calls) {
            // INFO and PING are the benchmark's own questions.
            if (name === "info" || name === "ping") continue;
            const delta = calls - (start.calls.get(name) ?? 0);
            if (delta > 0) commands.set(name, delta);
          }
        }
      } catch {
        // a process exited; the run reports that
      }
    },
    cpu: () => result,
    commands: () => commands,
    seconds: () => seconds,
    redisInputBytes: () => inputBytes,
  };
}

/** CPU time this process has used, seconds (node:process needs no /proc access). */
function ownCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}
