/**
 * Runs `broker.ts` as a subprocess for the CLI tests: collects its stdout and stderr, waits for lines, sends
 * signals, and always reaps the process.
 *
 * @module
 */

const BROKER = new URL("../../broker.ts", import.meta.url).pathname;

/** How long a test waits for the broker to print something. */
export const PROCESS_WAIT_MS = 15_000;

/** Why the broker cannot be run as a subprocess here, or undefined when it can. */
export function subprocessUnavailable(): string | undefined {
  if (Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state !== "granted") {
    return "needs --allow-run";
  }
  for (const name of ["read", "write"] as const) {
    if (Deno.permissions.querySync({ name }).state !== "granted") return `needs --allow-${name}`;
  }
  return undefined;
}

/** How to start it besides the arguments. */
export interface BrokerProcessOptions {
  /** Environment variables to add (`INIT_CWD`: the directory `deno task` was started in). */
  readonly env?: Record<string, string>;
  /** Deno flags before `broker.ts` (e.g. `--no-config`). */
  readonly denoFlags?: readonly string[];
}

/** A running `broker.ts`, with the permissions of `deno task broker` except that it may write anywhere. */
export class BrokerProcess {
  readonly #child: Deno.ChildProcess;
  readonly #pumps: Promise<void>[];
  readonly #status: Promise<Deno.CommandStatus>;
  #stdout = "";
  #stderr = "";
  #changed: (() => void) | undefined;

  constructor(args: readonly string[], options: BrokerProcessOptions = {}) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--allow-net",
        "--allow-read",
        "--allow-write",
        "--allow-env=INIT_CWD",
        ...(options.denoFlags ?? []),
        BROKER,
        ...args,
      ],
      ...(options.env === undefined ? {} : { env: options.env }),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#pumps = [
      this.#pump(this.#child.stdout, (text) => this.#stdout += text),
      this.#pump(this.#child.stderr, (text) => this.#stderr += text),
    ];
    this.#status = this.#child.status;
  }

  async #pump(stream: ReadableStream<Uint8Array>, append: (text: string) => void): Promise<void> {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      append(text);
      const wake = this.#changed;
      this.#changed = undefined;
      wake?.();
    }
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** The URLs of the "mqtt broker listening on URL" lines so far. */
  get urls(): string[] {
    return [...this.#stdout.matchAll(/^mqtt broker listening on (\S+)$/gm)].map((m) => m[1]!);
  }

  /** Waits until `done()` holds, checking whenever output arrives; throws with the output on timeout or exit. */
  async until(what: string, done: () => boolean): Promise<void> {
    const deadline = Date.now() + PROCESS_WAIT_MS;
    let exited = false;
    this.#status.then(() => exited = true);
    while (!done()) {
      if (exited) await Promise.all(this.#pumps);
      if (done()) return;
      if (exited || Date.now() > deadline) {
        throw new Error(
          `broker.ts: ${exited ? "exited" : "timed out"} waiting for ${what}\n${this.#stdout}${this.#stderr}`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#changed = resolve;
        timer = setTimeout(resolve, 100);
      });
      clearTimeout(timer);
    }
  }

  /** Waits for `count` listening lines and returns their URLs. */
  async listening(count: number): Promise<string[]> {
    await this.until(`${count} listening line(s)`, () => this.urls.length >= count);
    return this.urls;
  }

  kill(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Waits for the process to exit (after output is drained). */
  async exited(): Promise<Deno.CommandStatus> {
    const status = await this.#status;
    await Promise.all(this.#pumps);
    return status;
  }

  /** SIGTERM unless it has exited; resolves with its status. */
  async stop(): Promise<Deno.CommandStatus> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // already exited
    }
    return await this.exited();
  }
}

/** Runs `body` with a broker process; the process is always stopped and reaped. */
export async function withBrokerProcess(
  args: readonly string[],
  body: (broker: BrokerProcess) => Promise<void>,
  options: BrokerProcessOptions = {},
): Promise<void> {
  const broker = new BrokerProcess(args, options);
  try {
    await body(broker);
  } finally {
    await broker.stop();
  }
}

/** Runs `broker.ts` to completion; for configs it must refuse. */
export async function runBroker(
  args: readonly string[],
  options: BrokerProcessOptions = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const broker = new BrokerProcess(args, options);
  const timer = setTimeout(() => broker.kill("SIGKILL"), PROCESS_WAIT_MS);
  try {
    const { code } = await broker.exited();
    return { code, stdout: broker.stdout, stderr: broker.stderr };
  } finally {
    clearTimeout(timer);
  }
}
