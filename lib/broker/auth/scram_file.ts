/**
 * A file of SCRAM-SHA-256 users for the broker's enhanced authentication (the config key `scramFile`), one
 * `user:SCRAM-SHA-256$ITERATIONS:SALT$STOREDKEY:SERVERKEY` line per user: RFC 5803's text form of what a SCRAM
 * server stores (base64 fields), so the file holds no password. `deno task passwd --scram` writes it.
 *
 * @module
 */

import { MAX_ITERATIONS } from "../../auth/password_hash.ts";
import { validateUsername } from "./password_file.ts";
import { entryName, type LineError, readUserFile, setEntry, splitLines } from "./_user_file.ts";
import { type ScramCredential, scramCredential } from "../../auth/scram.ts";

/** The scheme name that starts every entry's value (RFC 5803 section 3). */
export const SCRAM_FILE_SCHEME = "SCRAM-SHA-256";

/** Iterations `passwd --scram` uses unless told otherwise (RFC 7677 section 4: at least 4096). */
export const DEFAULT_SCRAM_ITERATIONS = 4096;

/** SHA-256 output: the length of StoredKey and ServerKey. */
const KEY_BYTES = 32;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const DIGITS = /^[0-9]+$/;

/** A SCRAM file that cannot be used: names the file and the line. */
export class ScramFileError extends Error {
  /** `"ScramFileError"` */
  override readonly name = "ScramFileError";

  /** `message` is prefixed with `path:line: ` (or `path: ` when `line` is 0). */
  constructor(path: string, line: number, message: string, options?: { cause?: unknown }) {
    super(line > 0 ? `${path}:${line}: ${message}` : `${path}: ${message}`, options);
  }
}

/**
 * Takes an entry's value apart (`SCRAM-SHA-256$4096:SALT$STOREDKEY:SERVERKEY`).
 *
 * @throws {Error} saying what is wrong.
 */
export function parseScramEntry(text: string): ScramCredential {
  const match = /^([^$]+)\$([^:$]*):([^$]*)\$([^:$]*):([^:$]*)$/.exec(text);
  if (match === null) {
    throw new Error(`not ${SCRAM_FILE_SCHEME}$ITERATIONS:SALT$STOREDKEY:SERVERKEY (RFC 5803)`);
  }
  const [, scheme = "", iterations = "", salt = "", storedKey = "", serverKey = ""] = match;
  if (scheme !== SCRAM_FILE_SCHEME) throw new Error(`unknown scheme "${scheme}" (only ${SCRAM_FILE_SCHEME})`);
  if (!DIGITS.test(iterations) || Number(iterations) < 1 || Number(iterations) > MAX_ITERATIONS) {
    throw new Error(`iteration count "${iterations}" is not an integer from 1 to ${MAX_ITERATIONS}`);
  }
  return {
    iterations: Number(iterations),
    salt: decodeBase64(salt, "salt"),
    storedKey: decodeBase64(storedKey, "StoredKey", KEY_BYTES),
    serverKey: decodeBase64(serverKey, "ServerKey", KEY_BYTES),
  };
}

/** Writes a credential as an entry's value, the inverse of {@linkcode parseScramEntry}. */
export function formatScramEntry(credential: ScramCredential): string {
  const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
  return `${SCRAM_FILE_SCHEME}$${credential.iterations}:${b64(credential.salt)}$${
    b64(credential.storedKey)
  }:${b64(credential.serverKey)}`;
}

/** Derives a new entry's value from a password (random salt). */
export async function hashScramEntry(
  password: string,
  iterations: number = DEFAULT_SCRAM_ITERATIONS,
): Promise<string> {
  return formatScramEntry(await scramCredential(password, iterations));
}

/**
 * A loaded SCRAM file. `lookup` is what `new ScramSha256(lookup)` wants; a `reload()` takes effect at the next
 * authentication.
 *
 * @example
 * ```ts
 * import { hashScramEntry, ScramFile } from "./scram_file.ts";
 * const file = ScramFile.parse(`alice:${await hashScramEntry("wonderland")}\n`);
 * console.assert(file.lookup("alice")?.iterations === 4096);
 * ```
 */
export class ScramFile {
  /** The file this was read from; `undefined` when parsed from a string. */
  readonly path: string | undefined;
  #users: ReadonlyMap<string, ScramCredential>;

  private constructor(path: string | undefined, users: ReadonlyMap<string, ScramCredential>) {
    this.path = path;
    this.#users = users;
  }

  /** Reads a SCRAM file. @throws {ScramFileError} naming the file and line. */
  static async load(path: string): Promise<ScramFile> {
    return new ScramFile(path, parseUsers(await readUserFile(path, "the SCRAM file", lineError(path)), path));
  }

  /** Parses the text of a SCRAM file. @throws {ScramFileError} naming the line. */
  static parse(text: string, path?: string): ScramFile {
    return new ScramFile(path, parseUsers(text, path ?? "<text>"));
  }

  /** Number of users. */
  get size(): number {
    return this.#users.size;
  }

  /** `username`'s credential, if the file has one. */
  readonly lookup = (username: string): ScramCredential | undefined => this.#users.get(username);

  /**
   * Reads the file again (on SIGHUP): the new users replace the old ones at once; a file that fails to load
   * leaves the old users in force and throws.
   */
  async reload(): Promise<void> {
    if (this.path === undefined) throw new ScramFileError("<text>", 0, "was not loaded from a file");
    this.#users = parseUsers(
      await readUserFile(this.path, "the SCRAM file", lineError(this.path)),
      this.path,
    );
  }
}

/**
 * Sets `username`'s entry in the text of a SCRAM file: replaces its line, or appends one; other lines stay.
 *
 * @throws {ScramFileError} when the text has a line that is not an entry.
 */
export function setScramEntry(
  text: string,
  username: string,
  entry: string,
  path = "<text>",
): { readonly text: string; readonly found: boolean } {
  validateUsername(username);
  parseScramEntry(entry);
  return setEntry(text, username, entry, ENTRY, lineError(path));
}

/** What an entry line looks like, for errors. */
const ENTRY = "user:SCRAM-SHA-256$…";

function lineError(path: string): LineError {
  return (line, message, options) => new ScramFileError(path, line, message, options);
}

function parseUsers(text: string, path: string): Map<string, ScramCredential> {
  const users = new Map<string, ScramCredential>();
  splitLines(text).forEach((line, index) => {
    const lineNo = index + 1;
    const username = entryName(line, lineNo, ENTRY, lineError(path));
    if (username === undefined) return;
    let credential: ScramCredential;
    try {
      credential = parseScramEntry(line.slice(line.indexOf(":") + 1).trim());
    } catch (error) {
      throw new ScramFileError(path, lineNo, `user "${username}": ${(error as Error).message}`);
    }
    if (users.has(username)) throw new ScramFileError(path, lineNo, `user "${username}" has a second entry`);
    users.set(username, credential);
  });
  return users;
}

function decodeBase64(text: string, what: string, bytes?: number): Uint8Array {
  if (!BASE64.test(text) || text.length % 4 !== 0) throw new Error(`the ${what} is not base64`);
  const raw = atob(text);
  const out = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  if (bytes !== undefined && out.length !== bytes) {
    throw new Error(`the ${what} is ${out.length} bytes; it must be ${bytes}`);
  }
  return out;
}
