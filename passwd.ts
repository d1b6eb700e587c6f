/**
 * `deno task passwd`: adds, changes and deletes users in a password file, like Mosquitto's `mosquitto_passwd`,
 * and writes the same `$7$` (PBKDF2-SHA512) entries, so a file works with both brokers.
 *
 * ```sh
 * deno task passwd -c passwords alice             # create the file; asks for the password
 * deno task passwd -b passwords bob s3cret
 * echo "s3cret" | deno task passwd passwords carol
 * deno task passwd -D passwords bob
 * deno task passwd -U plain.txt                    # hash a user:password file in place
 * deno task passwd --scram -c -b scram_users alice s3cret  # a SCRAM-SHA-256 entry for scramFile
 * ```
 *
 * Exit codes: 0 done, 1 failed (file, password input, unknown user), 2 bad command line.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { isAbsolute, resolve } from "node:path";
import {
  DEFAULT_ITERATIONS,
  hashPassword,
  MAX_ITERATIONS,
  parsePasswordHash,
} from "./lib/auth/password_hash.ts";
import {
  deletePasswordEntry,
  PasswordFile,
  setPasswordEntry,
  validateUsername,
  writePasswordFile,
} from "./lib/broker/auth/password_file.ts";
import {
  DEFAULT_SCRAM_ITERATIONS,
  hashScramEntry,
  parseScramEntry,
  ScramFile,
  setScramEntry,
} from "./lib/broker/auth/scram_file.ts";

const USAGE = `Usage: deno task passwd [-c] [-I N] [--scram] FILE USER     add or change USER
       deno task passwd [-c] [-I N] [--scram] -b FILE USER PASSWORD
       deno task passwd -D FILE USER                        delete USER
       deno task passwd -U [-I N] [--scram] FILE    hash a user:password file

  -b             batch mode: the password is the last argument
  -c             create FILE, replacing any file there
  -D             delete USER rather than adding or changing it
  -U             hash in place every plain-text password of FILE (lines
                 already hashed are kept), as mosquitto_passwd -U
  -I ITERATIONS  rounds for new hashes (default ${DEFAULT_ITERATIONS};
                 with --scram ${DEFAULT_SCRAM_ITERATIONS})
  -H sha512-pbkdf2
                 the hash (the only one offered; accepted for
                 mosquitto_passwd compatibility)
  --scram        write SCRAM-SHA-256 entries (RFC 5803) for the broker's
                 scramFile (MQTT 5 enhanced authentication) instead of
                 Mosquitto's $7$ (PBKDF2-SHA512) entries
  -h, --help     this help

Without -b the password is asked twice, without echo, when stdin is a
terminal, or read as one line from stdin. Entries are Mosquitto 2's
"user:$7$ITERATIONS$SALT$HASH" (or "user:SCRAM-SHA-256$ITERATIONS:SALT$
STOREDKEY:SERVERKEY" with --scram); the file is replaced atomically and
left with mode 0600. A relative FILE is taken from the directory the task
was started in. Exit codes: 0 done, 1 failed, 2 bad command line.`;

/** A mistake on the command line (exit code 2). */
class UsageError extends Error {}

/** A failure while doing what was asked (exit code 1). */
class CommandError extends Error {}

/** Which kind of entry a command writes. */
type Format = "mosquitto" | "scram";

/** What the command line asks for. */
type Command =
  | { readonly kind: "help" }
  | {
    readonly kind: "set";
    readonly file: string;
    readonly username: string;
    /** `undefined`: ask for it. */
    readonly password: string | undefined;
    readonly create: boolean;
    readonly iterations: number;
    readonly format: Format;
  }
  | { readonly kind: "delete"; readonly file: string; readonly username: string }
  | { readonly kind: "update"; readonly file: string; readonly iterations: number; readonly format: Format };

/** Parses the arguments. @throws {UsageError} */
function parseCommand(args: readonly string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        b: { type: "boolean", short: "b" },
        c: { type: "boolean", short: "c" },
        D: { type: "boolean", short: "D" },
        U: { type: "boolean", short: "U" },
        I: { type: "string", short: "I" },
        H: { type: "string", short: "H" },
        scram: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    const message = (error as Error).message;
    const unknown = /^Unknown option '([^']+)'/.exec(message);
    throw new UsageError(unknown === null ? message : `unknown option ${unknown[1]}`);
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: "help" };
  if (values.H !== undefined && values.H !== "sha512-pbkdf2") {
    throw new UsageError(
      values.H === "sha512"
        ? "-H sha512 (one round of SHA-512) is too weak for new entries; only sha512-pbkdf2 is written"
        : `unknown hash "${values.H}" for -H (only sha512-pbkdf2)`,
    );
  }
  const format: Format = values.scram ? "scram" : "mosquitto";
  if (values.scram && values.H !== undefined) throw new UsageError("-H has no meaning with --scram");
  if (values.c && values.D) throw new UsageError("-c and -D cannot be used together");
  if (values.b && values.D) throw new UsageError("-b and -D cannot be used together");
  if (values.U) {
    for (const flag of ["b", "c", "D"] as const) {
      if (values[flag]) throw new UsageError(`-U and -${flag} cannot be used together`);
    }
    if (positionals.length !== 1) {
      throw new UsageError(`expected FILE, got ${positionals.length} argument(s)`);
    }
    return { kind: "update", file: positionals[0]!, iterations: iterationsOf(values.I, format), format };
  }
  const wanted = values.b ? 3 : 2;
  if (positionals.length !== wanted) {
    const names = values.b ? "FILE USER PASSWORD" : "FILE USER";
    throw new UsageError(`expected ${names}, got ${positionals.length} argument(s)`);
  }
  const [file, username, password] = positionals as [string, string, string | undefined];
  try {
    validateUsername(username);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.D) {
    if (values.I !== undefined) throw new UsageError("-I has no meaning with -D");
    return { kind: "delete", file, username };
  }
  return {
    kind: "set",
    file,
    username,
    password,
    create: values.c ?? false,
    iterations: iterationsOf(values.I, format),
    format,
  };
}

function iterationsOf(text: string | undefined, format: Format): number {
  if (text === undefined) return format === "scram" ? DEFAULT_SCRAM_ITERATIONS : DEFAULT_ITERATIONS;
  const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= MAX_ITERATIONS)) {
    throw new UsageError(`-I needs a whole number from 1 to ${MAX_ITERATIONS}, not "${text}"`);
  }
  return n;
}

/**
 * Where a FILE given on the command line is: `deno task` runs in the repository root, so a relative path is
 * taken from the directory the task was started in (`INIT_CWD`, which the task may read).
 */
function fromCaller(file: string): string {
  if (isAbsolute(file)) return file;
  if (Deno.permissions.querySync({ name: "env", variable: "INIT_CWD" }).state !== "granted") return file;
  const caller = Deno.env.get("INIT_CWD");
  return caller === undefined ? file : resolve(caller, file);
}

/** Runs the command; returns the exit code. Prints only the one-line outcome. */
export async function main(args: readonly string[]): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`passwd: ${error.message} (see deno task passwd --help)`);
    return 2;
  }
  if (command.kind === "help") {
    console.log(USAGE);
    return 0;
  }
  try {
    console.log(await run(command));
    return 0;
  } catch (error) {
    if (error instanceof Interrupted) return 130;
    console.error(`passwd: ${(error as Error).message}`);
    return 1;
  }
}

/** How an entry of `format` is described in the outcome line. */
function describe(format: Format, iterations: number): string {
  return `${format === "scram" ? "SCRAM-SHA-256" : "PBKDF2-SHA512"}, ${iterations} iterations`;
}

async function run(command: Exclude<Command, { kind: "help" }>): Promise<string> {
  const { file } = command;
  const path = fromCaller(file);
  if (command.kind === "update") return await update(command, path);
  const { username } = command;
  if (command.kind === "delete") {
    const edit = deletePasswordEntry(await readExisting(path, file), username, file);
    if (!edit.found) throw new CommandError(`user "${username}" is not in ${file}`);
    await writePasswordFile(path, edit.text);
    return `Deleted user ${username} from ${file}.`;
  }
  // Read (and check) the file before asking for a password, so a typo in FILE fails at once.
  const text = command.create ? "" : await readExisting(path, file);
  deletePasswordEntry(text, username, file); // throws on a line that is not an entry
  const password = command.password ?? await askPassword();
  checkPassword(password);
  const edit = command.format === "scram"
    ? setScramEntry(text, username, await hashScramEntry(password, command.iterations), file)
    : setPasswordEntry(
      text,
      username,
      await hashPassword(password, { iterations: command.iterations }),
      file,
    );
  await writePasswordFile(path, edit.text);
  const how = describe(command.format, command.iterations);
  return edit.found
    ? `Changed the password of ${username} in ${file} (${how}).`
    : `Added user ${username} to ${file} (${how}).`;
}

/** Throws unless `text` is a well-formed file of `format`, every entry hashed. */
function checkFile(text: string, file: string, format: Format): void {
  try {
    if (format === "scram") ScramFile.parse(text, file);
    else PasswordFile.parse(text, { path: file });
  } catch (error) {
    throw new CommandError((error as Error).message);
  }
}

function checkPassword(password: string): void {
  if (password.length === 0) throw new CommandError("the password is empty");
  if (password.length > 65_535) throw new CommandError("the password is longer than 65535 characters");
}

/** `-U`: hashes every `user:password` line whose value is not already a hash of `format`. */
async function update(command: Extract<Command, { kind: "update" }>, path: string): Promise<string> {
  const { file, iterations, format } = command;
  const text = await readExisting(path, file);
  const lines = text.split("\n");
  const trailing = lines.at(-1) === "" ? lines.pop() : undefined;
  let hashed = 0;
  let kept = 0;
  for (const [index, raw] of lines.entries()) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "" || line.trim().startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon === -1) throw new CommandError(`${file}:${index + 1}: not a user:password line (no ":")`);
    const username = line.slice(0, colon).trim();
    const password = line.slice(colon + 1);
    try {
      validateUsername(username);
    } catch (error) {
      throw new CommandError(`${file}:${index + 1}: ${(error as Error).message}`);
    }
    if (isHash(password.trim(), format)) {
      kept++;
      continue;
    }
    try {
      checkPassword(password);
    } catch (error) {
      throw new CommandError(`${file}:${index + 1}: user "${username}": ${(error as Error).message}`);
    }
    const hash = format === "scram"
      ? await hashScramEntry(password, iterations)
      : await hashPassword(password, { iterations });
    lines[index] = `${username}:${hash}`;
    hashed++;
  }
  const out = lines.join("\n") + (trailing === undefined ? "" : "\n");
  checkFile(out, file, format); // a second entry for one user, say: refuse before writing
  await writePasswordFile(path, out);
  const already = kept === 0 ? "" : `; ${kept} already hashed, kept`;
  return `Hashed ${hashed} password(s) in ${file} (${describe(format, iterations)})${already}.`;
}

function isHash(value: string, format: Format): boolean {
  try {
    if (format === "scram") parseScramEntry(value);
    else parsePasswordHash(value);
    return true;
  } catch {
    return false;
  }
}

/** Reads `path`; errors name the file as it was given (`file`). */
async function readExisting(path: string, file: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new CommandError(`${file} does not exist (use -c to create it)`);
    }
    throw new CommandError(`cannot read ${file}: ${(error as Error).message}`);
  }
}

// ---- password input ---------------------------------------------------------------------------------------

/** The user pressed Ctrl-C at a prompt. */
class Interrupted extends Error {}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Asks twice without echo on a terminal; otherwise reads one line from stdin. */
async function askPassword(): Promise<string> {
  if (!Deno.stdin.isTerminal()) {
    const line = await readLine();
    if (line === undefined) throw new CommandError("no password on stdin");
    return line;
  }
  const first = await promptHidden("Password: ");
  const second = await promptHidden("Reenter password: ");
  if (first !== second) throw new CommandError("the passwords do not match");
  return first;
}

/** One line from a piped stdin, without its line ending; `undefined` when stdin is empty. */
async function readLine(): Promise<string | undefined> {
  const chunks: number[] = [];
  const buffer = new Uint8Array(4096);
  let read = false;
  for (;;) {
    const n = await Deno.stdin.read(buffer);
    if (n === null) break;
    read = true;
    const newline = buffer.subarray(0, n).indexOf(0x0a);
    chunks.push(...buffer.subarray(0, newline === -1 ? n : newline));
    if (newline !== -1) break;
    if (chunks.length > 4 * 65_535) throw new CommandError("the password line is too long");
  }
  if (!read) return undefined;
  if (chunks.at(-1) === 0x0d) chunks.pop();
  return decodeUtf8(Uint8Array.from(chunks));
}

/** Prompts on stderr and reads a line from the terminal in raw mode, echoing nothing. */
async function promptHidden(prompt: string): Promise<string> {
  const bytes: number[] = [];
  const buffer = new Uint8Array(256);
  Deno.stdin.setRaw(true); // before the prompt, so nothing typed after it is echoed
  try {
    await Deno.stderr.write(encoder.encode(prompt));
    for (;;) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) break;
      for (const byte of buffer.subarray(0, n)) {
        if (byte === 0x0d || byte === 0x0a) return decodeUtf8(Uint8Array.from(bytes));
        if (byte === 0x03) throw new Interrupted(); // Ctrl-C
        if (byte === 0x04 && bytes.length === 0) throw new CommandError("no password given"); // Ctrl-D
        if (byte === 0x15) bytes.length = 0; // Ctrl-U
        else if (byte === 0x7f || byte === 0x08) {
          // Backspace removes one character: its UTF-8 continuation bytes, then its lead byte.
          while (bytes.length > 0 && (bytes.at(-1)! & 0xc0) === 0x80) bytes.pop();
          bytes.pop();
        } else if (byte >= 0x20) bytes.push(byte);
      }
    }
    throw new CommandError("no password given");
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(encoder.encode("\n"));
  }
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new CommandError("the password is not valid UTF-8");
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
