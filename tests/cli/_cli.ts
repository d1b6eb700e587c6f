/**
 * Runs `client.ts` as a real subprocess, as a user would through `deno task client`; the tests' shared
 * registration ({@linkcode cliTest}) and broker ({@linkcode withOurBroker}).
 *
 * @module
 */

import { Broker } from "../../lib/broker/broker.ts";

const ROOT = new URL("../../", import.meta.url);

/** Why the CLI cannot be run as a subprocess here, or undefined when it can. */
export function cliUnavailable(): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state !== "granted") {
      return "needs --allow-run";
    }
  } catch {
    return "needs --allow-run";
  }
  return undefined;
}

/**
 * Registers the test `client.ts NAME`; where it cannot run (no --allow-run, or `reason`) it is registered as
 * ignored, with the reason in its name.
 */
export function cliTest(
  name: string,
  fn: () => Promise<void>,
  reason: string | undefined = cliUnavailable(),
): void {
  Deno.test({
    name: `client.ts ${name}${reason === undefined ? "" : ` (skipped: ${reason})`}`,
    ignore: reason !== undefined,
    fn,
  });
}

/** Runs `fn` with our broker on a free port of 127.0.0.1; `at` is `-h 127.0.0.1 -p PORT`. */
export async function withOurBroker(fn: (port: number, at: string[]) => Promise<void>): Promise<void> {
  const broker = new Broker();
  const { port } = await broker.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    await fn(port, ["-h", "127.0.0.1", "-p", String(port)]);
  } finally {
    await broker.close();
  }
}

/** `-D` flags for a PUBLISH with a user property `k=v` and a Message Expiry Interval of 60 seconds. */
export const PUBLISH_DEFINES: readonly string[] = [
  "-D",
  "publish",
  "user-property",
  "k",
  "v",
  "-D",
  "publish",
  "message-expiry-interval",
  "60",
];

/**
 * Why the CLI tests that also run `command` (e.g. tmux, mosquitto_sub) cannot run here, or undefined when they
 * can; `probe` are arguments that make it exit at once, `installed` the hint when it is missing.
 */
export function toolUnavailable(
  command: string,
  probe: readonly string[],
  installed: string,
): string | undefined {
  const cli = cliUnavailable();
  if (cli !== undefined) return cli;
  if (Deno.permissions.querySync({ name: "run", command }).state !== "granted") {
    return `needs --allow-run for ${command}`;
  }
  try {
    new Deno.Command(command, { args: [...probe], stdout: "null", stderr: "null" }).outputSync();
    return undefined;
  } catch {
    return `needs ${installed} installed`;
  }
}

/**
 * Runs `fn` with our broker listening on a Unix socket, its path `path` in a temporary directory. The broker has
 * no Unix listener of its own (the client's `--unix` is for brokers that do, like Mosquitto), so the test accepts
 * and hands each socket to `broker.handle`.
 */
export async function withUnixBroker(fn: (path: string, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/mqtt.sock`;
  const broker = new Broker();
  await broker.start();
  const listener = Deno.listen({ transport: "unix", path });
  const accepting = (async () => {
    for await (const conn of listener) broker.handle(conn, { remoteAddress: "unix", allowAnonymous: true });
  })();
  try {
    await fn(path, dir);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    await broker.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The finished run. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The permissions of `deno task client` (deno.json), which the tests run the CLI with. */
export const CLI_PERMISSIONS: readonly string[] = ["--allow-net", "--allow-read", "--allow-env=INIT_CWD"];

/** The `deno run` arguments for `client.ts …`. */
export function cliArgs(args: readonly string[], permissions: readonly string[] = CLI_PERMISSIONS): string[] {
  return ["run", ...permissions, "client.ts", ...args];
}

/** How to run the CLI besides its arguments. */
export interface CliOptions {
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  readonly stdin?: string;
  /** Extra environment variables (e.g. `INIT_CWD`, as `deno task` sets it). */
  readonly env?: Readonly<Record<string, string>>;
  /** The `deno run` permission flags instead of {@linkcode CLI_PERMISSIONS}. */
  readonly permissions?: readonly string[];
}

/** A running `client.ts`. */
export class CliProcess {
  #child: Deno.ChildProcess;
  #stderr = "";
  #stderrDone: Promise<void>;
  #stdout: Promise<string>;

  constructor(args: readonly string[], stdinOrOptions?: string | CliOptions) {
    const options: CliOptions = typeof stdinOrOptions === "string"
      ? { stdin: stdinOrOptions }
      : stdinOrOptions ?? {};
    const stdin = options.stdin;
    const child = new Deno.Command(Deno.execPath(), {
      args: cliArgs(args, options.permissions),
      cwd: ROOT,
      stdin: stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      // As `deno task client` run from the repository root, whatever directory the tests were started from.
      env: { NO_COLOR: "1", INIT_CWD: ROOT.pathname, ...options.env },
    }).spawn();
    this.#child = child;
    if (stdin !== undefined) {
      const writer = child.stdin.getWriter();
      writer.write(new TextEncoder().encode(stdin)).then(() => writer.close()).catch(() => {});
    }
    this.#stdout = new Response(child.stdout).text();
    this.#stderrDone = (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        this.#stderr += chunk;
      }
    })();
  }

  /** Waits until stderr contains `text` (e.g. "<- SUBACK" with --trace). */
  async waitForStderr(text: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#stderr.includes(text)) {
      if (Date.now() > deadline) {
        throw new Error(`stderr never showed ${JSON.stringify(text)}:\n${this.#stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Sends a signal. */
  kill(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Waits for the exit and the output. */
  async result(): Promise<CliResult> {
    const [status, stdout] = await Promise.all([this.#child.status, this.#stdout, this.#stderrDone]);
    return { code: status.code, stdout, stderr: this.#stderr };
  }
}

/** Runs `client.ts …` to the end. */
export function runCli(args: readonly string[], stdinOrOptions?: string | CliOptions): Promise<CliResult> {
  return new CliProcess(args, stdinOrOptions).result();
}
