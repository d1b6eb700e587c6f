/**
 * API tokens for scripts and scrapers: a file of `name:role:sha256hex` lines (the hash of the token, never the
 * token), checked with a constant-time comparison against every entry.
 *
 * @module
 */

import { timingSafeEqual } from "node:crypto";
import { ADMIN_ROLES, type AdminRole } from "./config.ts";

/** One token entry. */
export interface TokenEntry {
  /** Who the token is for, as logged with each admin action. */
  readonly name: string;
  readonly role: AdminRole;
  /** SHA-256 of the token. */
  readonly hash: Uint8Array;
}

/** The SHA-256 of `token`, as the token file holds it (hex). */
export async function tokenHash(token: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** An in-memory entry for `token`. */
export async function tokenEntry(name: string, role: AdminRole, token: string): Promise<TokenEntry> {
  return { name, role, hash: hexBytes(await tokenHash(token)) };
}

/** A fresh random token: 32 bytes, base64url. */
export function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * Parses a token file's text.
 *
 * @throws {Error} naming `source` and the line of a malformed entry.
 */
export function parseTokens(text: string, source: string): TokenEntry[] {
  const entries: TokenEntry[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const [name, role, hex, ...extra] = line.split(":");
    if (
      name === undefined || name === "" || role === undefined || hex === undefined || extra.length > 0 ||
      !(ADMIN_ROLES as readonly string[]).includes(role) || !/^[0-9a-f]{64}$/i.test(hex)
    ) {
      throw new Error(
        `${source}:${i + 1}: expected name:viewer|admin:<64 hex digits of the token's SHA-256>`,
      );
    }
    entries.push({ name, role: role as AdminRole, hash: hexBytes(hex) });
  }
  return entries;
}

/** The token file, reloadable in place. */
export class TokenFile {
  /** The file's path. */
  readonly path: string;
  #entries: readonly TokenEntry[];

  private constructor(path: string, entries: readonly TokenEntry[]) {
    this.path = path;
    this.#entries = entries;
  }

  /**
   * Reads a token file.
   *
   * @throws {Error} naming the file (and line) when it cannot be read or is malformed.
   */
  static async load(path: string): Promise<TokenFile> {
    return new TokenFile(path, parseTokens(await read(path), path));
  }

  /** Number of tokens. */
  get size(): number {
    return this.#entries.length;
  }

  /**
   * Reads the file again; a file that cannot be read or parsed leaves the previous tokens and throws.
   *
   * @throws {Error} naming the file (and line).
   */
  async reload(): Promise<void> {
    this.#entries = parseTokens(await read(this.path), this.path);
  }

  /** The entry of `token`, compared in constant time with every entry; undefined when none matches. */
  find(token: string): Promise<TokenEntry | undefined> {
    return findToken(this.#entries, token);
  }
}

/** The entry whose hash is `token`'s, compared in constant time with every entry. */
export async function findToken(
  entries: readonly TokenEntry[],
  token: string,
): Promise<TokenEntry | undefined> {
  const hash = hexBytes(await tokenHash(token));
  let found: TokenEntry | undefined;
  for (const entry of entries) {
    if (timingSafeEqual(entry.hash, hash) && found === undefined) found = entry;
  }
  return found;
}

async function read(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new Error(`${path}: cannot read the token file: ${(error as Error).message}`, { cause: error });
  }
}

function hexBytes(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}
