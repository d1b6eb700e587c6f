/**
 * Password hashing in Mosquitto 2's formats, shared by the password file, the `passwd` command and anything
 * else that stores or checks a password:
 * - `$7$ITERATIONS$SALT$HASH`: PBKDF2-HMAC-SHA512 (what Mosquitto 2's `mosquitto_passwd` writes), or
 * - `$6$SALT$HASH`: one round of SHA-512 over password then salt (Mosquitto 1.6 and earlier; read only),
 *
 * with SALT 12 bytes and HASH 64 bytes, both in padded standard base64.
 *
 * @module
 */

import { Buffer } from "node:buffer";

const encoder = new TextEncoder();

/**
 * PBKDF2 rounds for new entries.
 *
 * Mosquitto's `mosquitto_passwd` writes 101, which a GPU guesses through at millions of passwords a second;
 * OWASP (2023) asks 210,000 for PBKDF2-HMAC-SHA512 where a login is rare. A broker checks a password on every
 * connect of every device, so we take 100,000: one `verify()` (with `cacheSize: 0`, timed in a loop) took 62 ms
 * at best and 127 ms median on our 2-core CI machine under load (the README has the command).
 * It runs off the event loop; reconnects with the same credentials are answered from the verified-credentials
 * cache, and `passwd -I` chooses another count per entry.
 */
export const DEFAULT_ITERATIONS = 100_000;

/** Salt length of `$6$` and `$7$` entries: Mosquitto refuses any other (`unpwd__decode_passwords`). */
export const SALT_BYTES = 12;

/** Length of a SHA-512 digest, and of the PBKDF2 output Mosquitto stores. */
export const HASH_BYTES = 64;

/** Largest iteration count accepted (Mosquitto parses it as a C `int`). */
export const MAX_ITERATIONS = 2_147_483_647;

/** A stored password hash, taken apart. */
export type PasswordHash =
  /** `$7$`: PBKDF2-HMAC-SHA512. */
  | {
    readonly kind: "sha512-pbkdf2";
    readonly iterations: number;
    readonly salt: Uint8Array;
    readonly hash: Uint8Array;
  }
  /** `$6$`: SHA-512(password ‖ salt), Mosquitto 1.6 and earlier. */
  | { readonly kind: "sha512"; readonly salt: Uint8Array; readonly hash: Uint8Array };

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const DIGITS = /^[0-9]+$/;

/**
 * Takes a stored hash (`$7$…` or `$6$…`) apart.
 *
 * @throws {Error} naming what is wrong, when it is not a hash Mosquitto 2 would accept.
 *
 * @example
 * ```ts
 * import { parsePasswordHash } from "./password_hash.ts";
 * const hash = parsePasswordHash(
 *   "$7$101$dHdCDCLpZomx1pRZ$PSJeBAyqGat9NJ3NBjO2yrYf0ynVL5VpvEnc2R0DmKkKwF86SE+RT4s6KXgxke9CPufscSfPZUwFZjFcpdY/GA==",
 * );
 * console.assert(hash.kind === "sha512-pbkdf2" && hash.iterations === 101);
 * ```
 */
export function parsePasswordHash(text: string): PasswordHash {
  const parts = text.split("$");
  // "$7$101$salt$hash".split("$") is ["", "7", "101", "salt", "hash"].
  if (parts[0] !== "" || parts.length < 2) throw new Error("the password is not hashed (run passwd on it)");
  const type = parts[1];
  if (type === "7") {
    if (parts.length !== 5) throw new Error("a $7$ hash has the form $7$ITERATIONS$SALT$HASH");
    const iterations = parts[2]!;
    if (!DIGITS.test(iterations) || Number(iterations) < 1 || Number(iterations) > MAX_ITERATIONS) {
      throw new Error(`iteration count "${iterations}" is not an integer from 1 to ${MAX_ITERATIONS}`);
    }
    return {
      kind: "sha512-pbkdf2",
      iterations: Number(iterations),
      salt: decodeField(parts[3]!, SALT_BYTES, "salt"),
      hash: decodeField(parts[4]!, HASH_BYTES, "hash"),
    };
  }
  if (type === "6") {
    if (parts.length !== 4) throw new Error("a $6$ hash has the form $6$SALT$HASH");
    return {
      kind: "sha512",
      salt: decodeField(parts[2]!, SALT_BYTES, "salt"),
      hash: decodeField(parts[3]!, HASH_BYTES, "hash"),
    };
  }
  throw new Error(`unknown hash type "$${type}$" (expected $7$ or $6$)`);
}

/**
 * Writes a hash in Mosquitto's form: `$7$ITERATIONS$SALT$HASH` or `$6$SALT$HASH`.
 *
 * @example
 * ```ts
 * import { formatPasswordHash, parsePasswordHash } from "./password_hash.ts";
 * const text = "$6$Eppe8j1LDSJhDJLu$zctNtdgd9+t+7OLbA2UgW9pm6ME+rhljrOnFKyT2DSoU0zpIj/s1zdzoSJjoD5az5EzWro2/6crv6mcqR6p2Sg==";
 * console.assert(formatPasswordHash(parsePasswordHash(text)) === text);
 * ```
 */
export function formatPasswordHash(hash: PasswordHash): string {
  const salt = Buffer.from(hash.salt).toString("base64");
  const digest = Buffer.from(hash.hash).toString("base64");
  return hash.kind === "sha512-pbkdf2" ? `$7$${hash.iterations}$${salt}$${digest}` : `$6$${salt}$${digest}`;
}

/** Options for {@linkcode hashPassword}. */
export interface HashPasswordOptions {
  /**
   * PBKDF2 rounds.
   *
   * @default {100000}
   */
  readonly iterations?: number;
  /** A 12-byte salt; random when not given (tests pass one to get a known answer). */
  readonly salt?: Uint8Array;
}

/**
 * Hashes a password for a new entry: PBKDF2-HMAC-SHA512 with a random 12-byte salt, in Mosquitto 2's `$7$`
 * form, so the line `user:<result>` works in both Mosquitto's `password_file` and ours.
 *
 * @example
 * ```ts
 * import { hashPassword } from "./password_hash.ts";
 * const hash = await hashPassword("s3cret", { iterations: 1000 });
 * console.assert(hash.startsWith("$7$1000$"));
 * ```
 */
export async function hashPassword(
  password: string | Uint8Array,
  options: HashPasswordOptions = {},
): Promise<string> {
  const iterations = options.iterations ?? DEFAULT_ITERATIONS;
  checkIterations(iterations);
  const salt = options.salt ?? crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  if (salt.length !== SALT_BYTES) {
    throw new RangeError(`A salt must be ${SALT_BYTES} bytes, not ${salt.length}`);
  }
  const hash = await pbkdf2(toBytes(password), salt, iterations);
  return formatPasswordHash({ kind: "sha512-pbkdf2", iterations, salt, hash });
}

function decodeField(text: string, bytes: number, what: string): Uint8Array {
  if (!BASE64.test(text) || text.length % 4 === 1) throw new Error(`the ${what} is not base64`);
  const decoded = new Uint8Array(Buffer.from(text, "base64"));
  if (decoded.length !== bytes) {
    throw new Error(`the ${what} is ${decoded.length} bytes; it must be ${bytes}`);
  }
  return decoded;
}

function checkIterations(iterations: number): void {
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
    throw new RangeError(`Iterations must be an integer from 1 to ${MAX_ITERATIONS}, not ${iterations}`);
  }
}

/** A password as bytes: a string is UTF-8 encoded. */
export function toBytes(password: string | Uint8Array): Uint8Array {
  return typeof password === "string" ? encoder.encode(password) : password;
}

/** PBKDF2-HMAC-SHA512 with a 64-byte output, on WebCrypto (computed off the event loop). */
export async function pbkdf2(
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", password as Uint8Array<ArrayBuffer>, "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-512", salt: salt as Uint8Array<ArrayBuffer>, iterations },
    key,
    HASH_BYTES * 8,
  );
  return new Uint8Array(bits);
}
