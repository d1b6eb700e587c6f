/**
 * The steps `pub`, `sub`, `rr` and `shell` share: reading the command line (`--help`, `--version`, no stray
 * arguments), stopping on Ctrl-C, SIGTERM or a `-W` timeout, and the message and exit code for an error.
 *
 * @module
 */

import type { ParseArgsOptionsConfig } from "node:util";
import type { MqttClient } from "../lib/client/client.ts";
import { type Defines, type Endpoint, EXIT, extractDefines, parseFlags, UsageError } from "./_flags.ts";
import { describeError } from "./_format.ts";
import { writeErr, writeOut } from "./_io.ts";
import { versionText } from "./_version.ts";

/** A command's flags and `-D` properties. */
export interface CommandLine<T extends ParseArgsOptionsConfig> {
  readonly values: ReturnType<typeof parseFlags<T>>["values"];
  readonly defines: Defines;
}

/**
 * Parses `args` for `command`; prints the help or the version and returns `undefined` when asked for one.
 * @throws {UsageError}
 */
export async function readCommandLine<T extends ParseArgsOptionsConfig>(
  command: string,
  args: readonly string[],
  flags: T,
  help: string,
): Promise<CommandLine<T> | undefined> {
  const { rest, defines } = extractDefines(args);
  const { values, positionals } = parseFlags(rest, flags, true);
  const asked = values as { help?: boolean; version?: boolean };
  if (asked.help) {
    writeOut(`${help}\n`);
    return undefined;
  }
  if (asked.version) {
    writeOut(`${await versionText(command)}\n`);
    return undefined;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  return { values, defines };
}

/** Prints a bad command line's error with the hint to `--help`; returns {@linkcode EXIT.USAGE}. */
export function usageFailure(command: string, error: unknown): number {
  writeErr(
    `Error: ${
      error instanceof Error ? error.message : error
    }\nRun "deno task client ${command} --help" for usage.`,
  );
  return EXIT.USAGE;
}

/**
 * The exit code for an error that ended `command`, after printing it (a usage error with its hint) and closing
 * the client. After Ctrl-C the error is the interruption's: nothing is printed and the exit code is 0.
 */
export async function commandFailure(
  command: string,
  error: unknown,
  client: MqttClient | undefined,
  endpoint: Endpoint | undefined,
  interrupted = false,
): Promise<number> {
  if (error instanceof UsageError) return usageFailure(command, error);
  if (!interrupted) writeErr(`Error: ${describeError(error, endpoint)}`);
  await client?.close().catch(() => {});
  return interrupted ? EXIT.OK : EXIT.ERROR;
}

const STOP_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];

/** Ctrl-C / SIGTERM and a `-W` timeout for a command that waits for messages; both abort {@linkcode signal}. */
export class CommandStop {
  readonly #controller = new AbortController();
  readonly #onInterrupt: () => void;
  #interrupted = false;
  #timedOut = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #listening = false;

  /** `onInterrupt` runs on Ctrl-C or SIGTERM, after the abort. */
  constructor(onInterrupt: () => void = () => {}) {
    this.#onInterrupt = onInterrupt;
  }

  /** Aborted by a signal or the timeout. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Whether Ctrl-C or SIGTERM came. */
  get interrupted(): boolean {
    return this.#interrupted;
  }

  /** Whether the `-W` timeout passed. */
  get timedOut(): boolean {
    return this.#timedOut;
  }

  /** Starts listening for Ctrl-C and SIGTERM. */
  listen(): void {
    for (const name of STOP_SIGNALS) Deno.addSignalListener(name, this.#onSignal);
    this.#listening = true;
  }

  /** Aborts after `ms` milliseconds (no timeout when `undefined`). */
  startTimer(ms: number | undefined): void {
    if (ms === undefined) return;
    this.#timer = setTimeout(() => {
      this.#timedOut = true;
      this.#controller.abort("timeout");
    }, ms);
  }

  /** Stops the timer and the signal listeners. */
  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (!this.#listening) return;
    this.#listening = false;
    for (const name of STOP_SIGNALS) Deno.removeSignalListener(name, this.#onSignal);
  }

  readonly #onSignal = (): void => {
    this.#interrupted = true;
    this.#controller.abort("signal");
    this.#onInterrupt();
  };
}
