/**
 * `deno task passwd`: adds, changes and deletes users in a password file, like Mosquitto's `mosquitto_passwd`,
 * and writes the same `$7$` (PBKDF2-SHA512) entries, so a file works with both brokers.
 *
 * ```sh
 * deno run --allow-read --allow-write passwd.ts -c passwords alice   # create the file; asks for the password
 * deno run --allow-read --allow-write passwd.ts -b passwords bob s3cret
 * echo "s3cret" | deno run --allow-read --allow-write passwd.ts passwords carol
 * deno run --allow-read --allow-write passwd.ts -D passwords bob
 * ```
 *
 * Exit codes: 0 done, 1 failed (file, password input, unknown user), 2 bad command line.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DEFAULT_ITERATIONS, hashPassword, MAX_ITERATIONS } from "./lib/auth/password_hash.ts";
import {
  deletePasswordEntry,
  setPasswordEntry,
  validateUsername,
  writePasswordFile,
} from "./lib/broker/auth/password_file.ts";

const USAGE =
  `Usage: passwd [-c] [-I ITERATIONS] FILE USER            add USER or change its password (asks for it)
       passwd [-c] [-I ITERATIONS] -b FILE USER PASSWORD   the same, with the password on the command line
       passwd -D FILE USER                                 delete USER

  -b             batch mode: the password is the last argument
  -c             create FILE, replacing any file there
  -D             delete USER rather than adding or changing it
  -I ITERATIONS  PBKDF2-SHA512 rounds for the new hash (default ${DEFAULT_ITERATIONS})
  -H sha512-pbkdf2  the hash (the only one offered; accepted for mosquitto_passwd compatibility)
  -h, --help     this help

Without -b the password is asked twice, without echo, when stdin is a terminal, or read as one line from stdin.
Entries are Mosquitto 2's "user:$7$ITERATIONS$SALT$HASH"; the file is replaced atomically and left with mode 0600.
Exit codes: 0 done, 1 failed, 2 bad command line.`;

/** A mistake on the command line (exit code 2). */
class UsageError extends Error {}

/** A failure while doing what was asked (exit code 1). */
class CommandError extends Error {}

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
  }
  | { readonly kind: "delete"; readonly file: string; readonly username: string };

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
        I: { type: "string", short: "I" },
        H: { type: "string", short: "H" },
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
  if (values.c && values.D) throw new UsageError("-c and -D cannot be used together");
  if (values.b && values.D) throw new UsageError("-b and -D cannot be used together");
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
    iterations: values.I === undefined ? DEFAULT_ITERATIONS : parseIterations(values.I),
  };
}

function parseIterations(text: string): number {
  const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= MAX_ITERATIONS)) {
    throw new UsageError(`-I needs a whole number from 1 to ${MAX_ITERATIONS}, not "${text}"`);
  }
  return n;
}

/** Runs the command; returns the exit code. Prints only the one-line outcome. */
export async function main(args: readonly string[]): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`passwd: ${error.message} (see --help)`);
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

async function run(command: Exclude<Command, { kind: "help" }>): Promise<string> {
  const { file, username } = command;
  if (command.kind === "delete") {
    const edit = deletePasswordEntry(await readExisting(file), username, file);
    if (!edit.found) throw new CommandError(`user "${username}" is not in ${file}`);
    await writePasswordFile(file, edit.text);
    return `Deleted user ${username} from ${file}.`;
  }
  // Read (and check) the file before asking for a password, so a typo in FILE fails at once.
  const text = command.create ? "" : await readExisting(file);
  deletePasswordEntry(text, username, file); // throws on a corrupt file
  const password = command.password ?? await askPassword();
  if (password.length === 0) throw new CommandError("the password is empty");
  if (password.length > 65_535) throw new CommandError("the password is longer than 65535 characters");
  const hash = await hashPassword(password, { iterations: command.iterations });
  const edit = setPasswordEntry(text, username, hash, file);
  await writePasswordFile(file, edit.text);
  const how = `PBKDF2-SHA512, ${command.iterations} iterations`;
  return edit.found
    ? `Changed the password of ${username} in ${file} (${how}).`
    : `Added user ${username} to ${file} (${how}).`;
}

async function readExisting(file: string): Promise<string> {
  try {
    return await Deno.readTextFile(file);
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
