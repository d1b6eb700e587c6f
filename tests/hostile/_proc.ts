/**
 * `broker.ts` as a subprocess for the hostile-input tests: started on 127.0.0.1 port 0 with memory persistence,
 * its resident memory read from `/proc/PID/status` (Linux, through `cat`), its error log lines collected, and stopped with
 * SIGTERM (SIGKILL if it does not exit). Memory is measured in a separate process so the test's own buffers do
 * not count.
 *
 * @module
 */

const BROKER = new URL("../../broker.ts", import.meta.url).pathname;
const decoder = new TextDecoder();
/** How long the broker may take to print its port, and to exit after SIGTERM. */
const START_MS = 20_000;
const STOP_MS = 5_000;

/**
 * Why a subprocess test cannot run here, as a test-name suffix (`" (ignored: needs ...)"`), or `""` when it can.
 */
export function subprocessSkipReason(): string {
  const missing: string[] = [];
  if (Deno.permissions.querySync({ name: "run" }).state !== "granted") missing.push("--allow-run");
  if (Deno.permissions.querySync({ name: "read" }).state !== "granted") {
    missing.push("--allow-read for Deno.execPath()");
  }
  if (Deno.build.os !== "linux") return " (ignored: needs Linux for /proc/PID/status)";
  return missing.length === 0 ? "" : ` (ignored: needs ${missing.join(" and ")})`;
}

/**
 * Resident memory of a process from `/proc/PID/status`, in bytes: `VmRSS` now, `VmHWM` its peak so far. Deno
 * lets only `--allow-all` read another process's `/proc` entries, so the file is read by `cat` (`--allow-run`).
 */
export async function readMemory(pid: number): Promise<{ rss: number; peak: number }> {
  const output = await new Deno.Command("cat", { args: [`/proc/${pid}/status`], stderr: "null" }).output();
  if (!output.success) throw new Error(`cannot read /proc/${pid}/status (the process ended?)`);
  const status = decoder.decode(output.stdout);
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
    if (match === null) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(match[1]) * 1024;
  };
  return { rss: kib("VmRSS"), peak: kib("VmHWM") };
}

/** Bytes as MiB with one decimal, for the figures the tests print. */
export function mib(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MiB`;
}

/** A running `broker.ts`. */
export interface BrokerProcess {
  readonly pid: number;
  readonly port: number;
  /** Current resident memory, bytes. */
  rss(): Promise<number>;
  /** Log lines at level ERROR so far (the broker runs with `--log-level error`). */
  readonly errors: readonly string[];
  /** Stops the broker (SIGTERM, then SIGKILL after 5 s); resolves its exit code. Idempotent. */
  stop(): Promise<number>;
}

/** Samples a process's RSS every `intervalMs` until stopped; the highest sample wins. */
export class RssSampler {
  #peak = 0;
  #timer: ReturnType<typeof setInterval>;
  #reading: Promise<void> = Promise.resolve();

  constructor(pid: number, intervalMs = 100) {
    const sample = async () => {
      try {
        this.#peak = Math.max(this.#peak, (await readMemory(pid)).rss);
      } catch {
        // the process ended: the last sample stands
      }
    };
    this.#reading = sample();
    this.#timer = setInterval(() => {
      this.#reading = this.#reading.then(sample);
    }, intervalMs);
  }

  /** Stops sampling; resolves the peak RSS seen, bytes. */
  async stop(): Promise<number> {
    clearInterval(this.#timer);
    await this.#reading;
    return this.#peak;
  }
}

/**
 * Starts `deno run --allow-net broker.ts -p 0 --persistence memory --sys-interval 0 --log-level error` plus
 * `args`, and waits for it to print its port.
 */
export async function startBrokerProcess(args: readonly string[] = []): Promise<BrokerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      BROKER,
      ...["-p", "0", "--persistence", "memory", "--sys-interval", "0", "--log-level", "error"],
      ...args,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const errors: string[] = [];
  // stderr is drained from the start so a chatty broker never blocks on a full pipe.
  const stderrDone = (async () => {
    let partial = "";
    for await (const chunk of child.stderr) {
      const lines = (partial + decoder.decode(chunk, { stream: true })).split("\n");
      partial = lines.pop()!;
      for (const line of lines) if (line.trim() !== "") errors.push(line);
    }
    if (partial.trim() !== "") errors.push(partial);
  })();
  const reader = child.stdout.getReader();
  let stdoutDone: Promise<void> = Promise.resolve();
  let port: number;
  const deadline = setTimeout(() => child.kill("SIGKILL"), START_MS);
  try {
    let text = "";
    for (;;) {
      const match = /mqtt broker listening on (?:tcp:\/\/)?127\.0\.0\.1:(\d+)/.exec(text);
      if (match !== null) {
        port = Number(match[1]);
        break;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error(`broker.ts ended before printing its port: ${JSON.stringify(text)}`);
      text += decoder.decode(value);
    }
    stdoutDone = (async () => {
      while (!(await reader.read()).done) {
        // discard the rest of stdout
      }
    })();
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await child.status;
    await reader.cancel().catch(() => {});
    await stderrDone;
    throw new Error(`${(error as Error).message}; stderr: ${errors.join("\n")}`);
  } finally {
    clearTimeout(deadline);
  }
  let stopped: Promise<number> | undefined;
  return {
    pid: child.pid,
    port,
    rss: async () => (await readMemory(child.pid)).rss,
    errors,
    stop: () => {
      stopped ??= (async () => {
        const kill = setTimeout(() => child.kill("SIGKILL"), STOP_MS);
        try {
          child.kill("SIGTERM");
        } catch {
          // already exited
        }
        const status = await child.status;
        clearTimeout(kill);
        await stdoutDone;
        await stderrDone;
        return status.code;
      })();
      return stopped;
    },
  };
}
