/**
 * Strict command-line flags, as `node:util`'s `parseArgs` with `strict: true` and no positionals parses them,
 * with the same error messages. `broker.ts` parses its flags here because importing `node:util` costs every
 * broker about 1 MiB of RSS at start (bench/results/2026-12-07-h4.md).
 *
 * Understood: `--name value`, `--name=value`, `-n value`, `-nvalue`, grouped boolean shorts (`-vh`), repeated
 * flags (the last one wins) and `--` (everything after it is a positional argument, so an error here).
 *
 * @module
 */

/** One flag: a string that takes a value, or a boolean that does not. */
export interface FlagSpec {
  /** Whether the flag takes a value. */
  readonly type: "string" | "boolean";
  /** The one-letter form, without its dash. */
  readonly short?: string;
}

/** The values of the flags given, by long name. */
export type FlagValues<T extends Record<string, FlagSpec>> = {
  -readonly [K in keyof T]?: T[K]["type"] extends "boolean" ? boolean : string;
};

/** A flag the specification does not know, a value missing or ambiguous, a positional argument. */
export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FlagError";
  }
}

/** `-p, --port <value>` or `--config <value>`, as the messages name a flag. */
function shown(name: string, spec: FlagSpec): string {
  const long = `${spec.short === undefined ? "" : `-${spec.short}, `}--${name}`;
  return spec.type === "string" ? `${long} <value>` : long;
}

/**
 * The flags in `args` by `options` (long names as keys).
 *
 * @example
 * ```ts
 * import { parseArgs } from "./_parse_args.ts";
 * const values = parseArgs(["-p", "0", "--verbose"], {
 *   port: { type: "string", short: "p" },
 *   verbose: { type: "boolean", short: "v" },
 * });
 * console.assert(values.port === "0" && values.verbose === true);
 * ```
 * @throws {FlagError} for an unknown flag, a missing or ambiguous value, a value given to a boolean flag, or a
 * positional argument.
 */
export function parseArgs<T extends Record<string, FlagSpec>>(
  args: readonly string[],
  options: T,
): FlagValues<T> {
  const values: Record<string, string | boolean> = {};
  const byShort = new Map<string, string>();
  for (const [name, spec] of Object.entries(options)) {
    if (spec.short !== undefined) byShort.set(spec.short, name);
  }
  const known = (name: string): FlagSpec | undefined =>
    Object.hasOwn(options, name) ? options[name] : undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      if (i + 1 < args.length) throw unexpected(args[i + 1]!);
      break;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      const spec = known(name);
      if (spec === undefined) throw unknown(arg.slice(0, eq < 0 ? undefined : eq));
      if (spec.type === "boolean") {
        if (eq >= 0) throw new FlagError(`Option '${shown(name, spec)}' does not take an argument`);
        values[name] = true;
      } else if (eq >= 0) values[name] = arg.slice(eq + 1);
      else values[name] = valueAfter(args, i++, name, spec, `--${name}`);
      continue;
    }
    if (arg.startsWith("-") && arg.length > 1) {
      // -v, -vh (booleans grouped), -p 0, -p0
      for (let at = 1; at < arg.length; at++) {
        const name = byShort.get(arg[at]!);
        const spec = name === undefined ? undefined : options[name];
        if (name === undefined || spec === undefined) throw unknown(`-${arg[at]}`);
        if (spec.type === "boolean") {
          values[name] = true;
          continue;
        }
        if (at + 1 < arg.length) values[name] = arg.slice(at + 1);
        else values[name] = valueAfter(args, i++, name, spec, `-${arg[at]}`);
        break;
      }
      continue;
    }
    throw unexpected(arg);
  }
  return values as FlagValues<T>;
}

/** The value of the string flag at `args[at]`: the next argument, unless it is missing or looks like a flag. */
function valueAfter(
  args: readonly string[],
  at: number,
  name: string,
  spec: FlagSpec,
  given: string,
): string {
  const value = args[at + 1];
  if (value === undefined) throw new FlagError(`Option '${shown(name, spec)}' argument missing`);
  if (value.startsWith("-") && value !== "-") {
    const short = given.startsWith("--") ? "" : ` or '${given}-XYZ'`;
    throw new FlagError(
      `Option '${given}' argument is ambiguous.\nDid you forget to specify the option argument for '${given}'?\n` +
        `To specify an option argument starting with a dash use '--${name}=-XYZ'${short}.`,
    );
  }
  return value;
}

function unknown(flag: string): FlagError {
  return new FlagError(`Unknown option '${flag}'`);
}

function unexpected(arg: string): FlagError {
  return new FlagError(`Unexpected argument '${arg}'. This command does not take positional arguments`);
}
