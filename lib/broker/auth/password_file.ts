/**
 * Password files in Mosquitto 2's format, and the {@linkcode Authenticator} that checks CONNECT credentials
 * against one.
 *
 * One entry per line, `username:hash`, where the hash is `$7$…` (PBKDF2-HMAC-SHA512) or `$6$…` (Mosquitto 1.6,
 * read only), as `lib/auth/password_hash.ts` describes. Lines starting with `#` and blank lines are skipped.
 *
 * Verification never answers faster for a wrong user than for a wrong password: every check runs the same
 * number of PBKDF2 rounds (the most any entry in the file uses), an unknown user is checked against a dummy
 * hash, and the final comparison is constant-time.
 *
 * @module
 */

import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { REASON_CODE } from "../../packet/reason_code.ts";
import type { Authenticator, AuthResult, ClientIdentity, ConnectInfo } from "./auth.ts";
import {
  deleteEntry,
  type EditResult,
  entryName,
  type LineError,
  readUserFile,
  setEntry,
  splitLines,
} from "./_user_file.ts";
import { hostOf } from "../limits.ts";
import { LoginThrottle, type LoginThrottleOptions } from "./login_throttle.ts";
import { HashQueue, PasswordQueueFullError } from "./hash_queue.ts";
import {
  HASH_BYTES,
  parsePasswordHash,
  type PasswordHash,
  pbkdf2,
  SALT_BYTES,
  toBytes,
} from "../../auth/password_hash.ts";

/** A password file that cannot be read: names the file and the line. */
export class PasswordFileError extends Error {
  /** The file, or `"<text>"` when parsed from a string. */
  readonly path: string;
  /** 1-based line number; 0 when the whole file is at fault. */
  readonly line: number;

  /** `message` is prefixed with `path:line: ` (or `path: ` when `line` is 0). */
  constructor(path: string, line: number, message: string, options?: { cause?: unknown }) {
    super(line > 0 ? `${path}:${line}: ${message}` : `${path}: ${message}`, options);
    this.name = "PasswordFileError";
    this.path = path;
    this.line = line;
  }
}

/**
 * Checks a user name for a password file entry, as `mosquitto_passwd` does (no `:`, no control characters, at
 * most 65,535 characters) and also refuses leading or trailing blanks, which the file format would drop.
 *
 * @throws {Error} saying what is wrong.
 */
export function validateUsername(username: string): void {
  if (username.length === 0) throw new Error("the user name is empty");
  if (username.length > 65_535) throw new Error("the user name is longer than 65535 characters");
  if (username.includes(":")) throw new Error(`the user name "${username}" contains ":"`);
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(username)) throw new Error("the user name contains a control character");
  if (username.trim() !== username) {
    throw new Error(`the user name "${username}" starts or ends with a blank`);
  }
}

/** Options for {@linkcode PasswordFile}. */
export interface PasswordFileOptions {
  /**
   * How many verified (user, password) pairs to remember, so a client that reconnects with the same credentials
   * is answered without PBKDF2. Keyed by an HMAC under a per-process random key (no password is kept), least
   * recently used first out, emptied on reload. 0 turns it off.
   *
   * @default {1024}
   */
  readonly cacheSize?: number;
  /**
   * Hashes computed at once. PBKDF2 runs off the event loop (WebCrypto), but with every core hashing the loop
   * itself gets no CPU; the rest wait in a queue.
   *
   * @default {max(1, cores - 1)}
   */
  readonly maxConcurrentHashes?: number;
  /**
   * Verifications that may wait for a hashing slot; one more is refused at once with
   * {@linkcode PasswordQueueFullError} (the authenticator answers Server busy, v5 0x89 / v3 0x03). A wait in a
   * longer queue would outlast the client's connect timeout anyway: 300 guesses in a burst kept honest logins
   * waiting 19 s when the queue had no bound (issue 15 item 8).
   *
   * @default {32}
   */
  readonly maxQueuedHashes?: number;
}

/** Options for {@linkcode PasswordFile.verify}. */
export interface VerifyOptions {
  /** Aborted when the answer is no longer wanted (the connection closed): a verification still queued is dropped. */
  readonly signal?: AbortSignal;
}

/** Options for {@linkcode PasswordFile.parse}. */
export interface PasswordFileParseOptions extends PasswordFileOptions {
  /** The file the text came from: named in errors and re-read by `reload()`. */
  readonly path?: string;
}

/** One user's entry. */
interface Entry {
  readonly username: string;
  readonly hash: PasswordHash;
}

/** Everything a reload replaces at once. */
interface State {
  readonly users: ReadonlyMap<string, Entry>;
  /** Rounds every verification costs: the most any entry uses (at least 1). */
  readonly rounds: number;
  /** Verified credentials: HMAC key → the entry they were verified against. */
  readonly cache: Map<string, Entry>;
}

const encoder = new TextEncoder();

/**
 * A loaded password file.
 *
 * @example
 * ```ts
 * import { hashPassword } from "../../auth/password_hash.ts";
 * import { PasswordFile } from "./password_file.ts";
 * const file = PasswordFile.parse(`alice:${await hashPassword("wonderland", { iterations: 1000 })}\n`);
 * console.assert(await file.verify("alice", "wonderland"));
 * console.assert(!await file.verify("alice", "looking-glass"));
 * ```
 */
export class PasswordFile {
  /** The file this was read from; `undefined` when parsed from a string. */
  readonly path: string | undefined;
  #state: State;
  readonly #cacheSize: number;
  readonly #limiter: HashQueue;
  /** Keys the cache's HMAC; random per process so cache keys say nothing outside it. */
  readonly #cacheKey = crypto.getRandomValues(new Uint8Array(32));
  /** Salt of the dummy hash an unknown user is checked against. */
  readonly #dummySalt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  readonly #dummyHash = crypto.getRandomValues(new Uint8Array(HASH_BYTES));

  private constructor(path: string | undefined, state: State, options: PasswordFileOptions) {
    this.path = path;
    this.#state = state;
    this.#cacheSize = options.cacheSize ?? 1024;
    const cores = typeof navigator === "undefined" ? 2 : navigator.hardwareConcurrency;
    this.#limiter = new HashQueue(
      options.maxConcurrentHashes ?? Math.max(1, cores - 1),
      options.maxQueuedHashes ?? 32,
    );
  }

  /**
   * Reads a password file.
   *
   * @throws {PasswordFileError} naming the file and line when it cannot be read or an entry is malformed.
   */
  static async load(path: string, options: PasswordFileOptions = {}): Promise<PasswordFile> {
    return new PasswordFile(
      path,
      parseState(await readUserFile(path, "the password file", lineError(path)), path),
      options,
    );
  }

  /**
   * Parses the text of a password file.
   *
   * @throws {PasswordFileError} naming the line of a malformed entry.
   */
  static parse(text: string, options: PasswordFileParseOptions = {}): PasswordFile {
    return new PasswordFile(options.path, parseState(text, options.path ?? "<text>"), options);
  }

  /** Number of users. */
  get size(): number {
    return this.#state.users.size;
  }

  /** Whether `username` has an entry. */
  has(username: string): boolean {
    return this.#state.users.has(username);
  }

  /** The user names, in file order. */
  usernames(): string[] {
    return [...this.#state.users.keys()];
  }

  /**
   * Reads the file again (on SIGHUP). The new users replace the old ones at once and the credentials cache is
   * emptied; when the file is missing or malformed, the old users stay and this throws.
   *
   * @throws {PasswordFileError} naming the file and line; the loaded users are unchanged.
   */
  async reload(): Promise<void> {
    if (this.path === undefined) throw new PasswordFileError("<text>", 0, "was not loaded from a file");
    this.#state = parseState(
      await readUserFile(this.path, "the password file", lineError(this.path)),
      this.path,
    );
  }

  /**
   * Whether `password` is `username`'s password. Takes the same time for an unknown user, a wrong password and
   * the right one (the first time; a pair verified before is answered from the cache at once).
   *
   * @throws {PasswordQueueFullError} when {@linkcode PasswordFileOptions.maxQueuedHashes} verifications wait.
   * @throws the signal's reason when `options.signal` aborts before the hash started.
   */
  async verify(
    username: string,
    password: string | Uint8Array,
    options: VerifyOptions = {},
  ): Promise<boolean> {
    const state = this.#state; // a reload while we hash does not mix two files
    const bytes = toBytes(password);
    const key = this.#cacheSize > 0 ? this.#keyOf(username, bytes) : undefined;
    const entry = state.users.get(username);
    if (key !== undefined && entry !== undefined) {
      const cached = state.cache.get(key);
      if (cached === entry) {
        state.cache.delete(key); // most recently used goes last
        state.cache.set(key, entry);
        return true;
      }
    }
    // One job per verification (the top-up included), so the queue's bound counts logins, not hashes.
    const ok = await this.#limiter.run(() => this.#hash(bytes, entry, state), options.signal);
    if (ok && key !== undefined && entry !== undefined) {
      state.cache.set(key, entry);
      if (state.cache.size > this.#cacheSize) state.cache.delete(state.cache.keys().next().value!);
    }
    return ok;
  }

  /** Hashes `bytes` as `entry` says (a dummy for an unknown user) and compares in constant time. */
  async #hash(bytes: Uint8Array, entry: Entry | undefined, state: State): Promise<boolean> {
    let expected: Uint8Array;
    let actual: Uint8Array;
    let rounds: number;
    if (entry === undefined) {
      expected = this.#dummyHash;
      actual = await pbkdf2(bytes, this.#dummySalt, state.rounds);
      rounds = state.rounds;
    } else if (entry.hash.kind === "sha512-pbkdf2") {
      expected = entry.hash.hash;
      actual = await pbkdf2(bytes, entry.hash.salt, entry.hash.iterations);
      rounds = entry.hash.iterations;
    } else {
      expected = entry.hash.hash;
      actual = createHash("sha512").update(bytes).update(entry.hash.salt).digest();
      rounds = 0;
    }
    // Entries with fewer rounds (Mosquitto's 101, or $6$) pay the difference, so timing can't tell users apart.
    if (rounds < state.rounds) await pbkdf2(bytes, this.#dummySalt, state.rounds - rounds);
    return timingSafeEqual(actual, expected) && entry !== undefined;
  }

  #keyOf(username: string, password: Uint8Array): string {
    const name = encoder.encode(username);
    const length = Uint8Array.of(name.length >>> 24, name.length >>> 16, name.length >>> 8, name.length);
    return createHmac("sha256", this.#cacheKey).update(length).update(name).update(password).digest("base64");
  }
}

/** Options for {@linkcode PasswordFileAuthenticator}. */
export interface PasswordFileAuthenticatorOptions extends LoginThrottleOptions {
  /**
   * Verifications one address may have under way; more from it are answered Server busy (0x89, v3 0x03), so one
   * address cannot fill the hashing queue that every client shares.
   *
   * @default {4}
   */
  readonly maxPendingPerAddress?: number;
}

/**
 * Checks CONNECT credentials against a {@linkcode PasswordFile}, as Mosquitto's `password_file` does:
 *
 * - no user name: accepted only where the listener allows anonymous clients, else Not authorized (0x87; v3 0x05);
 * - a user name that is unknown, or a wrong or missing password: Bad user name or password (0x86; v3 0x04);
 * - no user name but a verified TLS client certificate (`certificateCommonName`, passed only by listeners that
 *   ask for certificates): the certificate's CN is the user name and the certificate is the credential, so the
 *   password file is not consulted (Mosquitto's `use_identity_as_username`); ACLs see the CN;
 * - Server busy (0x89; v3 0x03), with no hash computed: an address past its failed logins
 *   ({@linkcode LoginThrottleOptions.maxFailedLoginsPerMinute}) or with
 *   {@linkcode PasswordFileAuthenticatorOptions.maxPendingPerAddress} verifications under way, or a full
 *   hashing queue ({@linkcode PasswordFileOptions.maxQueuedHashes}).
 *
 * @example
 * ```ts
 * import { hashPassword } from "../../auth/password_hash.ts";
 * import { PasswordFile, PasswordFileAuthenticator } from "./password_file.ts";
 * const file = PasswordFile.parse(`alice:${await hashPassword("wonderland", { iterations: 1000 })}\n`);
 * const auth = new PasswordFileAuthenticator(file);
 * const result = await auth.authenticate({
 *   clientId: "c1",
 *   username: "alice",
 *   password: new TextEncoder().encode("wonderland"),
 *   remoteAddress: "127.0.0.1:50000",
 *   allowAnonymous: false,
 * });
 * console.assert(result.reasonCode === 0 && result.username === "alice");
 * ```
 */
export class PasswordFileAuthenticator implements Authenticator {
  readonly #file: PasswordFile;
  readonly #throttle: LoginThrottle;
  readonly #maxPending: number;
  /** Verifications under way per host. */
  readonly #pending = new Map<string, number>();

  /** Checks against `file`'s current users: a `reload()` of it takes effect at the next CONNECT. */
  constructor(file: PasswordFile, options: PasswordFileAuthenticatorOptions = {}) {
    this.#file = file;
    this.#throttle = new LoginThrottle(options);
    this.#maxPending = options.maxPendingPerAddress ?? 4;
  }

  /** The CONNACK reason code for a CONNECT, and the user name ACLs see. */
  async authenticate(info: ConnectInfo): Promise<AuthResult> {
    const { username, password } = info;
    if (username === undefined) {
      const cn = info.certificateCommonName;
      if (cn !== undefined) return { reasonCode: REASON_CODE.Success, username: cn };
      return { reasonCode: info.allowAnonymous ? REASON_CODE.Success : REASON_CODE.NotAuthorized };
    }
    // A busy answer costs no hash: a guesser is told to come back later, right password or not.
    const host = hostOf(info.remoteAddress);
    const pending = this.#pending.get(host) ?? 0;
    if (pending >= this.#maxPending || this.#throttle.blocked(host)) {
      return { reasonCode: REASON_CODE.ServerBusy };
    }
    this.#pending.set(host, pending + 1);
    let ok: boolean;
    try {
      // Without a password we still hash, so the answer takes as long as for a wrong one.
      const options = info.signal === undefined ? {} : { signal: info.signal };
      ok = await this.#file.verify(username, password ?? new Uint8Array(0), options);
    } catch (error) {
      if (error instanceof PasswordQueueFullError || info.signal?.aborted === true) {
        return { reasonCode: REASON_CODE.ServerBusy };
      }
      throw error;
    } finally {
      const left = this.#pending.get(host)! - 1;
      if (left === 0) this.#pending.delete(host);
      else this.#pending.set(host, left);
    }
    if (ok && password !== undefined) return { reasonCode: REASON_CODE.Success, username };
    this.#throttle.failed(host);
    return { reasonCode: REASON_CODE.BadUserNameOrPassword };
  }

  /** A user removed from the file no longer passes; anonymous and certificate identities are not the file's. */
  stillValid(client: ClientIdentity, certificateCommonName?: string): boolean {
    const username = client.username;
    return username === undefined || username === certificateCommonName || this.#file.has(username);
  }
}

// ---- editing (for the passwd command) ---------------------------------------------------------------------

/** What {@linkcode setPasswordEntry} and {@linkcode deletePasswordEntry} return. */
export type { EditResult } from "./_user_file.ts";

/**
 * Sets `username`'s hash in the text of a password file: replaces its line in place, or appends one. Other
 * lines (comments included) are kept as they are.
 *
 * @throws {PasswordFileError} when the text has a line that is not an entry (`mosquitto_passwd`: corrupt file).
 */
export function setPasswordEntry(text: string, username: string, hash: string, path = "<text>"): EditResult {
  validateUsername(username);
  parsePasswordHash(hash);
  return setEntry(text, username, hash, ENTRY, lineError(path));
}

/**
 * Removes `username`'s entry from the text of a password file; other lines are kept as they are.
 *
 * @throws {PasswordFileError} when the text has a line that is not an entry.
 */
export function deletePasswordEntry(text: string, username: string, path = "<text>"): EditResult {
  return deleteEntry(text, username, ENTRY, lineError(path));
}

/**
 * Writes a password file atomically: a temporary file beside it (mode 0600) is written, synced and renamed
 * over the old one, so a broker reloading at the same moment reads either the old file or the new one. A
 * symbolic link is followed: its target is replaced.
 */
export async function writePasswordFile(path: string, text: string): Promise<void> {
  let target = path;
  try {
    target = await Deno.realPath(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const slash = target.lastIndexOf("/");
  const temp = `${target.slice(0, slash + 1)}.${target.slice(slash + 1)}.${
    crypto.randomUUID().slice(0, 8)
  }.tmp`;
  const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
  try {
    try {
      if (Deno.build.os !== "windows") await Deno.chmod(temp, 0o600); // whatever the umask
      const bytes = encoder.encode(text);
      for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(temp, target);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

// ---- internals -------------------------------------------------------------------------------------------

/** What an entry line looks like, for errors. */
const ENTRY = "user:hash";

function lineError(path: string): LineError {
  return (line, message, options) => new PasswordFileError(path, line, message, options);
}

function parseState(text: string, path: string): State {
  const users = new Map<string, Entry>();
  let rounds = 1;
  splitLines(text).forEach((line, index) => {
    const lineNo = index + 1;
    const username = entryName(line, lineNo, ENTRY, lineError(path));
    if (username === undefined) return;
    const colon = line.indexOf(":");
    let hash: PasswordHash;
    try {
      hash = parsePasswordHash(line.slice(colon + 1).trim());
    } catch (error) {
      throw new PasswordFileError(path, lineNo, `user "${username}": ${(error as Error).message}`);
    }
    if (users.has(username)) {
      throw new PasswordFileError(path, lineNo, `user "${username}" has a second entry`);
    }
    users.set(username, { username, hash });
    if (hash.kind === "sha512-pbkdf2" && hash.iterations > rounds) rounds = hash.iterations;
  });
  return { users, rounds, cache: new Map() };
}
