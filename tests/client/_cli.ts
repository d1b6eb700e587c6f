/**
 * Runs `client.ts` as a real subprocess, as a user would through `deno task client`.
 *
 * @module
 */

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

/** The finished run. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The `deno run` arguments for `client.ts …`. */
export function cliArgs(args: readonly string[]): string[] {
  return ["run", "--allow-net", "--allow-read", "client.ts", ...args];
}

/** A running `client.ts`. */
export class CliProcess {
  #child: Deno.ChildProcess;
  #stderr = "";
  #stderrDone: Promise<void>;
  #stdout: Promise<string>;

  constructor(args: readonly string[], stdin?: string) {
    const child = new Deno.Command(Deno.execPath(), {
      args: cliArgs(args),
      cwd: ROOT,
      stdin: stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
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
export function runCli(args: readonly string[], stdin?: string): Promise<CliResult> {
  return new CliProcess(args, stdin).result();
}
