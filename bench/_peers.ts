/**
 * The brokers the load benchmark measures, each started as its own process so that it gets the second core (the
 * load generator holds the first) and so that its memory can be read from `/proc/PID/status`:
 *
 * - `ours`: `deno run --allow-net broker.ts -p 0 --sys-interval 0 --log-level error --persistence memory
 *   --max-inflight 65535 --max-queued 0`, with the V8 flags of the `broker` task in `deno.json` (so it runs as
 *   `deno task broker` does) (memory, like Mosquitto with `persistence false`, and no inflight or queue
 *   limits, like its `max_inflight_messages 0` and `max_queued_messages 0`: 65,535 is all the packet identifiers
 *   there are); with `storage: "disk"`, `--persistence sqlite:DIR/broker.db` on a
 *   fresh temporary directory instead (and read/write permission to it only);
 * - `mosquitto`: the installed binary with a generated config (no persistence, no inflight or queue limits); with
 *   `storage: "disk"`, `persistence true` and `persistence_location DIR/` on a fresh temporary directory;
 * - `deno-floor`: `deno run --allow-net bench/_deno_floor.ts` with the same V8 flags as ours: accept, read, answer
 *   CONNACK, nothing else (what Deno itself costs per connection); `deno-floor-net`: the same on `node:net`
 *   (`_deno_floor.ts --net`), with no read pending while idle;
 * - `ours-net`: our broker with its TCP listeners on `node:net` (`bench/_ours_net.ts`, same settings and V8 flags
 *   as `ours`, in memory only), measured only when asked for (`--peers ours-net`);
 * - `aedes`: aedes 1.2.0 on Node (the runtime aedes is written for and the issue's reference figures used),
 *   installed with `npm install aedes@1.2.0` into a directory under the temp dir that later runs reuse. It runs
 *   in memory only: its stores on disk need a database server.
 *
 * @module
 */

import { join } from "node:path";
import process from "node:process";

/**
 * The brokers the benchmark knows how to start. `deno-floor` and `deno-floor-net` are not brokers: they are
 * `_deno_floor.ts`, the least a Deno server can do per connection (on `Deno.Conn`, and on `node:net`), measured
 * in the idle scenarios only.
 */
export const PEER_NAMES = ["ours", "mosquitto", "aedes", "deno-floor", "deno-floor-net", "ours-net"] as const;
/** One of {@linkcode PEER_NAMES}. */
export type PeerName = typeof PEER_NAMES[number];

/**
 * Where a broker keeps its state: `memory` (nothing survives a restart) or `disk` (ours: SQLite, one commit per
 * event-loop turn, QoS 1/2 acknowledged after it; Mosquitto: its database file, written on autosave and at exit).
 */
export type PeerStorage = "memory" | "disk";

/** A running broker process. */
export interface Peer {
  readonly name: PeerName;
  readonly storage: PeerStorage;
  /** The TCP port on 127.0.0.1 (the first of {@linkcode Peer.ports}). */
  readonly port: number;
  /**
   * Every TCP port it listens on, on 127.0.0.1 ({@linkcode StartPeerOptions.listeners} of them): one source
   * address reaches one port through at most the ephemeral port range (about 28,000 connections).
   */
  readonly ports: readonly number[];
  /** The broker's own process id (not a shell's), for its RSS. */
  readonly pid: number;
  /** The admin listener's port on 127.0.0.1, when {@linkcode StartPeerOptions.adminListener} asked for one. */
  readonly adminPort?: number;
  /** Resident set size of the broker process, KiB (VmRSS). */
  rssKiB(): Promise<number>;
  /** Whether the process is still running. */
  alive(): boolean;
  /** The last lines the process printed on stderr, for a failure report. */
  stderrTail(): string;
  /** SIGTERM, then SIGKILL after a grace period. Safe to call twice. */
  stop(): Promise<void>;
}

/** Options for {@linkcode startPeer}. */
export interface StartPeerOptions {
  /**
   * How long to wait for the broker to accept connections, ms.
   * @default {20000}
   */
  startTimeoutMs?: number;
  /**
   * Where the broker keeps its state; `disk` uses a fresh temporary directory, removed at {@linkcode Peer.stop}.
   * aedes supports `memory` only.
   * @default {"memory"}
   */
  storage?: PeerStorage;
  /**
   * TCP listeners on 127.0.0.1, each on its own port (aedes: 1 only).
   * @default {1}
   */
  listeners?: number;
  /**
   * Ours only: also an admin listener (`--admin-port 0`: the admin API, `/metrics`, the dashboard, stats history),
   * its port in {@linkcode Peer.adminPort}.
   * @default {false}
   */
  adminListener?: boolean;
}

const PROJECT_ROOT = new URL("..", import.meta.url).pathname;
const AEDES_VERSION = "1.2.0";
const STDERR_TAIL = 4096;
/** An npm install that has not finished by then is given up (aedes is then reported as not measured). */
const NPM_TIMEOUT_MS = 180_000;

/** Finds the Mosquitto binary: on PATH, else where Debian puts it. */
async function mosquittoPath(): Promise<string | undefined> {
  for (const candidate of ["mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]) {
    try {
      const out = await new Deno.Command(candidate, { args: ["-h"], stdout: "piped", stderr: "null" })
        .output();
      if (new TextDecoder().decode(out.stdout).startsWith("mosquitto")) return candidate;
    } catch {
      // not here; try the next place
    }
  }
  return undefined;
}

let mosquittoBinary: Promise<string | undefined> | undefined;
let aedesDir: Promise<string | undefined> | undefined;
const unavailable = new Map<PeerName, string>();

/**
 * Installs aedes for Node once per machine (reused by later runs) and writes the server script. Resolves the
 * directory, or undefined when Node or npm is missing or the install failed (the reason is kept for the notes).
 */
function prepareAedes(): Promise<string | undefined> {
  aedesDir ??= (async () => {
    const dir = join(Deno.env.get("TMPDIR") ?? "/tmp", `mqtt-bench-aedes-${AEDES_VERSION}`);
    try {
      await Deno.mkdir(dir, { recursive: true });
      let installed = false;
      try {
        const meta = JSON.parse(await Deno.readTextFile(join(dir, "node_modules/aedes/package.json")));
        installed = meta.version === AEDES_VERSION;
      } catch {
        // not installed yet
      }
      if (!installed) {
        const out = await new Deno.Command("npm", {
          args: ["install", `aedes@${AEDES_VERSION}`, "--prefix", dir, "--no-audit", "--no-fund", "--silent"],
          stdout: "null",
          stderr: "piped",
          signal: AbortSignal.timeout(NPM_TIMEOUT_MS),
        }).output();
        if (!out.success) {
          unavailable.set("aedes", `npm install aedes@${AEDES_VERSION} failed: ${tail(out.stderr)}`);
          return undefined;
        }
      }
      await Deno.writeTextFile(join(dir, "server.mjs"), AEDES_SERVER);
      return dir;
    } catch (error) {
      unavailable.set("aedes", `cannot prepare aedes on Node: ${(error as Error).message}`);
      return undefined;
    }
  })();
  return aedesDir;
}

// aedes 1.x is ESM and created through Aedes.createBroker(); its defaults are kept, as a user would run it.
const AEDES_SERVER = `import { createServer } from "node:net";
import { Aedes } from "aedes";
const aedes = await Aedes.createBroker();
const server = createServer(aedes.handle);
server.listen(0, "127.0.0.1", () => {
  console.log("aedes listening on 127.0.0.1:" + server.address().port);
});
process.on("SIGTERM", () => process.exit(0));
`;

function tail(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes).trim().split("\n").slice(-3).join(" / ");
}

/**
 * Which peers can run here. Resolves a map from peer name to the reason it cannot (absent when it can).
 * `ours` is always available.
 */
export async function unavailablePeers(
  names: readonly PeerName[] = PEER_NAMES,
): Promise<ReadonlyMap<PeerName, string>> {
  if (names.includes("mosquitto")) {
    mosquittoBinary ??= mosquittoPath();
    if (await mosquittoBinary === undefined) unavailable.set("mosquitto", "mosquitto is not installed");
  }
  if (names.includes("aedes")) {
    try {
      await new Deno.Command("node", { args: ["--version"], stdout: "null", stderr: "null" }).output();
      await prepareAedes();
    } catch {
      unavailable.set("aedes", "node is not installed");
    }
  }
  return new Map([...unavailable].filter(([name]) => names.includes(name)));
}

/**
 * The runtime flags of the `broker` task in `deno.json` that shape the process (`--v8-flags=…` and
 * `--no-code-cache`, each only if the task has it), so the benchmark runs our broker, and the Deno floors beside
 * it, with the settings users get from `deno task broker`.
 */
export async function brokerTaskV8Flags(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(join(PROJECT_ROOT, "deno.json"))) as {
    tasks?: Record<string, string>;
  };
  return (config.tasks?.broker ?? "").split(/\s+/).filter((word) =>
    word.startsWith("--v8-flags=") || word === "--no-code-cache"
  );
}

/**
 * `deno run` of one of this repository's scripts (`script[0]`, relative to its root; the rest are its
 * arguments) with `flags` (permissions first) and the `broker` task's V8 flags, run from the root with its
 * output piped.
 */
export async function denoRun(flags: readonly string[], script: readonly string[]): Promise<Deno.Command> {
  const [file = "", ...args] = script;
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, ...await brokerTaskV8Flags(), join(PROJECT_ROOT, file), ...args],
    cwd: PROJECT_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * Our broker as the benchmarks run it, for {@linkcode denoRun}: `broker.ts` with the config file `config`, a
 * free port, no `$SYS`, errors logged only, `persistence`, and no inflight or queue limits (the module doc says
 * why).
 */
export function oursBroker(config: string, persistence: string): string[] {
  return [
    "broker.ts",
    "-c",
    config,
    "-p",
    "0",
    "--sys-interval",
    "0",
    "--log-level",
    "error",
    "--persistence",
    persistence,
    "--max-inflight",
    "65535",
    "--max-queued",
    "0",
  ];
}

/**
 * A port on 127.0.0.1 that was free a moment ago, for servers that cannot listen on port 0 and report the port
 * they got (Mosquitto; redis-server with TCP).
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** How long a child has after SIGTERM before it gets SIGKILL. */
const STOP_GRACE_MS = 3000;

/** A spawned child process: whether it still runs, the tail of its stderr, and one way to stop it. */
export interface WatchedChild {
  readonly pid: number;
  /** Resolves when the child exits. */
  readonly exited: Promise<undefined>;
  /** Whether the child has not exited yet. */
  running(): boolean;
  /** The last 4 KiB the child wrote to stderr. */
  stderr(): string;
  /**
   * SIGTERM, and SIGKILL if the child has not exited {@linkcode STOP_GRACE_MS} later; resolves once it has
   * exited, its output is read and the cleanup has run. Stops once however often it is called.
   */
  stop(): Promise<void>;
}

/** Options for {@linkcode watchChild}. */
export interface WatchChildOptions {
  /** Gets the child's stdout as text, chunk by chunk (where it says which port it got). */
  onStdout(text: string): void;
  /** Runs after the child has stopped (removes its temporary directory). */
  cleanup?: (() => Promise<void>) | undefined;
}

/** Spawns `command` (stdout and stderr piped) and watches it: both process launchers of the benchmarks use it. */
export function watchChild(command: Deno.Command, options: WatchChildOptions): WatchedChild {
  const child = command.spawn();
  let running = true;
  const exited = child.status.then(() => {
    running = false;
    return undefined;
  });
  let stderrText = "";
  const stderrDone = readText(child.stderr, (text) => {
    stderrText = (stderrText + text).slice(-STDERR_TAIL);
  });
  const stdoutDone = readText(child.stdout, options.onStdout);
  let stopped: Promise<void> | undefined;
  return {
    pid: child.pid,
    exited,
    running: () => running,
    stderr: () => stderrText,
    stop() {
      stopped ??= (async () => {
        if (running) await terminate(child, exited);
        await exited;
        await Promise.all([stdoutDone, stderrDone]);
        await options.cleanup?.();
      })();
      return stopped;
    },
  };
}

/** Hands what `stream` carries to `write` as text, to its end; resolves then (also when it breaks off). */
function readText(stream: ReadableStream<Uint8Array>, write: (text: string) => void): Promise<void> {
  return stream.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({
      write(text) {
        write(text);
      },
    }),
  ).catch(() => {});
}

/** SIGTERM, then SIGKILL if `child` has not exited {@linkcode STOP_GRACE_MS} later; resolves when it has. */
async function terminate(child: Deno.ChildProcess, exited: Promise<unknown>): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // already gone
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), STOP_GRACE_MS)),
  ]);
  clearTimeout(timer);
  if (late) {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
  await exited;
}

/** Starts one broker process and waits until it accepts connections on 127.0.0.1. */
export async function startPeer(name: PeerName, options: StartPeerOptions = {}): Promise<Peer> {
  const timeoutMs = options.startTimeoutMs ?? 20_000;
  const storage = options.storage ?? "memory";
  const listeners = Math.max(1, options.listeners ?? 1);
  let command: Deno.Command;
  let fixedPorts: number[] | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  switch (name) {
    case "ours": {
      const dir = await Deno.makeTempDir({ prefix: "mqtt-bench-ours-" });
      cleanup = () => Deno.remove(dir, { recursive: true }).catch(() => {});
      // The admin listener reads the dashboard's files at start.
      const permissions = [
        "--allow-net",
        `--allow-read=${options.adminListener ? `${dir},${PROJECT_ROOT}` : dir}`,
      ];
      // Every client of the benchmark comes from 127.0.0.1: lift the per-address cap (1,024 by default), as
      // Mosquitto has none.
      const config = join(dir, "broker.json");
      // Listeners beyond the first (the one -p 0 sets) are extra TCP listeners on free ports.
      const extra = Array.from({ length: listeners - 1 }, () => ({ type: "tcp", port: 0 }));
      await Deno.writeTextFile(
        config,
        JSON.stringify({
          limits: { maxConnectionsPerAddress: 10_000_000 },
          ...(extra.length === 0 ? {} : { listeners: [{ type: "tcp", port: 0 }, ...extra] }),
        }),
      );
      let persistence = "memory";
      if (storage === "disk") {
        permissions.push(`--allow-write=${dir}`);
        persistence = `sqlite:${join(dir, "broker.db")}`;
      }
      command = await denoRun(permissions, [
        ...oursBroker(config, persistence),
        ...(options.adminListener ? ["--admin-port", "0"] : []),
      ]);
      break;
    }
    case "mosquitto": {
      mosquittoBinary ??= mosquittoPath();
      const binary = await mosquittoBinary;
      if (binary === undefined) throw new Error("mosquitto is not installed");
      const dir = await Deno.makeTempDir({ prefix: "mqtt-bench-mosquitto-" });
      fixedPorts = Array.from({ length: listeners }, freePort);
      const config = join(dir, "mosquitto.conf");
      // No inflight or queue limits, as issue #10 asks; only errors logged, like ours at --log-level error.
      // With persistence true Mosquitto 2.0 still keeps its state in memory and writes mosquitto.db only every
      // autosave_interval (default 1800 s) and at exit: nothing is written per message.
      await Deno.writeTextFile(
        config,
        [
          ...fixedPorts.map((port) => `listener ${port} 127.0.0.1`),
          "allow_anonymous true",
          ...(storage === "disk"
            ? ["persistence true", `persistence_location ${dir}/`]
            : ["persistence false"]),
          "max_inflight_messages 0",
          "max_queued_messages 0",
          "log_dest stderr",
          "log_type error",
          "",
        ].join("\n"),
      );
      cleanup = () => Deno.remove(dir, { recursive: true }).catch(() => {});
      command = new Deno.Command(binary, {
        args: ["-c", config],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      });
      break;
    }
    case "ours-net": {
      if (storage !== "memory") throw new Error("ours-net runs in memory only here");
      command = await denoRun(["--allow-net"], ["bench/_ours_net.ts", String(listeners)]);
      break;
    }
    case "deno-floor":
    case "deno-floor-net": {
      command = await denoRun(["--allow-net"], [
        "bench/_deno_floor.ts",
        ...(name === "deno-floor-net" ? ["--net"] : []),
        String(listeners),
      ]);
      break;
    }
    case "aedes": {
      if (storage !== "memory") {
        throw new Error("aedes runs in memory only here (its disk stores need a server)");
      }
      if (listeners > 1) throw new Error("aedes is started with one listener only here");
      const dir = await prepareAedes();
      if (dir === undefined) throw new Error(unavailable.get("aedes") ?? "aedes is not available");
      command = new Deno.Command("node", {
        args: [join(dir, "server.mjs")],
        cwd: dir,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      });
      break;
    }
  }
  // Ours and aedes print the ports they got; for Mosquitto we chose them and poll until each accepts.
  let resolvePorts!: (ports: number[]) => void;
  const announced = new Promise<number[]>((resolve) => resolvePorts = resolve);
  const printed: number[] = [];
  const wantAdmin = name === "ours" && options.adminListener === true;
  let adminPort: number | undefined;
  let pending = "";
  const watched = watchChild(command, {
    onStdout(text) {
      // "listening on 127.0.0.1:PORT" or "listening on tcp://127.0.0.1:PORT", one line per TCP listener.
      const lines = (pending + text).split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const match = /listening on (?:tcp:\/\/)?127\.0\.0\.1:(\d+)/.exec(line);
        if (match) printed.push(Number(match[1]));
        const admin = /^admin: http:\/\/127\.0\.0\.1:(\d+)\//.exec(line);
        if (admin) adminPort = Number(admin[1]);
      }
      if (printed.length >= listeners && (!wantAdmin || adminPort !== undefined)) {
        resolvePorts(printed.slice(0, listeners));
      }
    },
    cleanup,
  });

  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<undefined>((resolve) =>
    timer = setTimeout(() => resolve(undefined), timeoutMs)
  );
  const ports = fixedPorts === undefined
    ? await Promise.race([announced, deadline, watched.exited])
    : await Promise.race([waitUntilAccepting(fixedPorts, watched.running), deadline, watched.exited]);
  clearTimeout(timer);
  if (ports === undefined) {
    const why = watched.running() ? `did not start within ${timeoutMs} ms` : "exited at start";
    await watched.stop(); // also collects what it printed
    throw new Error(`${name} ${why}: ${watched.stderr().trim() || "no output"}`);
  }
  return {
    name,
    storage,
    port: ports[0]!,
    ports,
    pid: watched.pid,
    ...(adminPort === undefined ? {} : { adminPort }),
    rssKiB: () => rssKiB(watched.pid),
    alive: watched.running,
    stderrTail: () => watched.stderr().trim(),
    stop: watched.stop,
  };
}

async function waitUntilAccepting(ports: number[], running: () => boolean): Promise<number[] | undefined> {
  for (const port of ports) {
    for (;;) {
      if (!running()) return undefined;
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        conn.close();
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }
  return ports;
}

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
    if (!out.success) throw new Error(`cannot read ${path}: ${new TextDecoder().decode(out.stderr).trim()}`);
    return new TextDecoder().decode(out.stdout);
  }
}

/** VmRSS of a process, KiB. */
export async function rssKiB(pid: number): Promise<number> {
  const status = await readProc(`/proc/${pid}/status`);
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]);
}

/**
 * CPU time a process's threads have spent running, seconds, to the nanosecond: the sum of the first field of
 * each `/proc/PID/task/TID/schedstat` (10 ms steps of utime + stime were too coarse for 200 connects, which cost
 * Mosquitto less than one). Falls back to {@linkcode cpuSeconds} when schedstat cannot be read. Threads that
 * ended are not counted; V8's and Deno's threads live as long as the process.
 */
export async function cpuSecondsPrecise(pid: number): Promise<number> {
  let text: string;
  try {
    const parts: string[] = [];
    for await (const entry of Deno.readDir(`/proc/${pid}/task`)) {
      parts.push(await Deno.readTextFile(`/proc/${pid}/task/${entry.name}/schedstat`));
    }
    text = parts.join("\n");
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable) && !(error instanceof Deno.errors.PermissionDenied)) {
      return await cpuSeconds(pid);
    }
    // Deno grants /proc only with --allow-all: read it through a shell (the bench task has --allow-run).
    const out = await new Deno.Command("sh", {
      args: ["-c", `cat /proc/${pid}/task/*/schedstat`],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return await cpuSeconds(pid);
    text = new TextDecoder().decode(out.stdout);
  }
  let ns = 0;
  for (const line of text.split("\n")) {
    const first = Number(line.split(" ")[0]);
    if (line !== "" && Number.isFinite(first)) ns += first;
  }
  return ns / 1e9;
}

/** CPU time (user + system, all threads) a process has used, seconds (in steps of 10 ms). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readProc(`/proc/${pid}/stat`);
  // utime and stime are fields 14 and 15; count from after the command name, which may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** USER_HZ, the unit of /proc/PID/stat times: 100 on every Linux architecture Deno runs on. */
const CLOCK_TICKS = 100;

/** CPU time this process has used, seconds (node:process needs no /proc access). */
function ownCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** CPU shares during a window, percent of one core. */
export interface CpuShares {
  readonly generator: number;
  readonly broker: number;
}

/** Measures the CPU share of this process (the load generator) and of a broker between two `onWindow` calls. */
export function cpuMeter(pid: number): {
  onWindow(edge: "start" | "end"): Promise<void>;
  shares(): CpuShares | undefined;
} {
  let start: { self: number; broker: number; at: number } | undefined;
  let result: CpuShares | undefined;
  return {
    async onWindow(edge) {
      try {
        const broker = await cpuSeconds(pid);
        const self = ownCpuSeconds();
        const at = performance.now();
        if (edge === "start") start = { self, broker, at };
        else if (start !== undefined) {
          const seconds = (at - start.at) / 1000;
          result = {
            generator: (100 * (self - start.self)) / seconds,
            broker: (100 * (broker - start.broker)) / seconds,
          };
        }
      } catch {
        // the broker exited; the run reports that
      }
    },
    shares: () => result,
  };
}

/** The 1-minute load average, to tell a quiet machine from a busy one (NaN when unknown). */
export async function loadAverage(): Promise<number> {
  try {
    return Number((await readProc("/proc/loadavg")).split(" ")[0]);
  } catch {
    return NaN;
  }
}

/**
 * The soft limit on open files of this process, raised to the hard limit first when it is lower (with
 * `prlimit`, which brokers started afterwards inherit). With `wanted`, both limits are raised to at least that
 * first, which only root (CAP_SYS_RESOURCE) may do beyond the hard limit; otherwise the hard limit stays.
 */
export async function raiseOpenFileLimit(wanted = 0): Promise<{ soft: number; hard: number }> {
  const read = async () => {
    const limits = await readProc(`/proc/${Deno.pid}/limits`);
    const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
    const parse = (value: string | undefined) =>
      value === undefined || value === "unlimited" ? Infinity : Number(value);
    return { soft: parse(match?.[1]), hard: parse(match?.[2]) };
  };
  const limits = await read();
  if (limits.hard < wanted) {
    try {
      await new Deno.Command("prlimit", {
        args: ["--pid", String(Deno.pid), `--nofile=${wanted}:${wanted}`],
        stdout: "null",
        stderr: "null",
      }).output();
    } catch {
      // no prlimit: the hard limit stays
    }
    const raised = await read();
    if (raised.soft >= wanted) return raised;
  }
  if (limits.soft < limits.hard) {
    const hard = Number.isFinite(limits.hard) ? String(limits.hard) : "unlimited";
    try {
      await new Deno.Command("prlimit", {
        args: ["--pid", String(Deno.pid), `--nofile=${hard}:${hard}`],
        stdout: "null",
        stderr: "null",
      }).output();
    } catch {
      // no prlimit: keep the soft limit
    }
    return await read();
  }
  return limits;
}

/** First line of a command's output, or "unknown". */
async function firstLine(command: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
    const text = new TextDecoder().decode(out.stdout).trim() || new TextDecoder().decode(out.stderr).trim();
    return text.split("\n")[0] ?? "unknown";
  } catch {
    return "not installed";
  }
}

/** Lines describing the machine and the peers' versions, for the notes under the tables. */
export async function environmentNotes(): Promise<string[]> {
  mosquittoBinary ??= mosquittoPath();
  const mosquitto = await mosquittoBinary;
  const [nproc, mosquittoVersion, nodeVersion] = await Promise.all([
    firstLine("nproc", []),
    mosquitto === undefined ? Promise.resolve("not installed") : firstLine(mosquitto, ["-h"]),
    firstLine("node", ["--version"]),
  ]);
  return [
    `Date ${new Date().toISOString()}; nproc ${nproc}; ${mosquittoVersion}; Deno ${Deno.version.deno} ` +
    `(V8 ${Deno.version.v8}); Node ${nodeVersion} (aedes ${AEDES_VERSION}).`,
  ];
}
