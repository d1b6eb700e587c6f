/**
 * Who is calling the admin API: a user named in `admin.users` whose password the password file verifies (its
 * verified-credentials cache keeps Basic auth per request cheap), an API token, or a dashboard session made by
 * `POST /api/v1/login`. A device in the password file without an `admin.users` entry is never an admin. Failed
 * logins are counted per address: the sixth within ten minutes is answered 429 (EMQX's defaults).
 *
 * @module
 */

import type { AdminRole } from "./config.ts";
import { ApiError } from "./http.ts";
import { findToken, newToken, type TokenEntry, type TokenFile } from "./tokens.ts";

/** An authenticated caller. */
export interface Principal {
  /** The user or token name (logged with every admin action). */
  readonly name: string;
  readonly role: AdminRole;
  /** How the caller proved it. */
  readonly via: "password" | "token" | "session" | "anonymous";
}

/** Checks a user's password (the broker's `PasswordFile` does). */
export interface PasswordCheck {
  /** Whether `password` is `username`'s. */
  verify(username: string, password: string): Promise<boolean>;
}

/** Options for {@linkcode AdminAuth}. */
export interface AdminAuthOptions {
  /** Admin users and their roles. */
  users?: Readonly<Record<string, AdminRole>>;
  /** The password file the users' passwords are checked against. */
  passwords?: PasswordCheck;
  /** The token file. */
  tokens?: TokenFile;
  /** Tokens that live only in memory (the start-up token printed on loopback). */
  memoryTokens?: readonly TokenEntry[];
  /** How long a dashboard login lasts, minutes. @default {60} */
  sessionMinutes?: number;
  /** Failed logins allowed per address within {@linkcode AdminAuthOptions.failureWindowMs}. @default {5} */
  maxFailures?: number;
  /** @default {600000} (10 minutes) */
  failureWindowMs?: number;
  /** ms since the epoch. @default {Date.now} */
  now?: () => number;
}

/** The dashboard's session cookie. */
export const SESSION_COOKIE = "denomqtt_session";

/** Most dashboard sessions kept; the oldest goes first. */
const MAX_SESSIONS = 1000;
/** Most addresses whose failures are remembered. */
const MAX_ADDRESSES = 10_000;

/** Authenticates admin API calls and keeps dashboard sessions. */
export class AdminAuth {
  #users: Readonly<Record<string, AdminRole>>;
  readonly #passwords: PasswordCheck | undefined;
  readonly #tokens: TokenFile | undefined;
  readonly #memoryTokens: readonly TokenEntry[];
  readonly #sessionMs: number;
  readonly #maxFailures: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #sessions = new Map<string, { principal: Principal; expiresAt: number }>();
  readonly #failures = new Map<string, number[]>();

  /** Authenticates with what `options` gives; with nothing, every call is refused. */
  constructor(options: AdminAuthOptions = {}) {
    this.#users = options.users ?? {};
    this.#passwords = options.passwords;
    this.#tokens = options.tokens;
    this.#memoryTokens = options.memoryTokens ?? [];
    this.#sessionMs = (options.sessionMinutes ?? 60) * 60_000;
    this.#maxFailures = options.maxFailures ?? 5;
    this.#windowMs = options.failureWindowMs ?? 600_000;
    this.#now = options.now ?? Date.now;
  }

  /** Whether any credential can pass (users with a password file, or tokens). */
  get configured(): boolean {
    return (Object.keys(this.#users).length > 0 && this.#passwords !== undefined) ||
      this.#tokens !== undefined ||
      this.#memoryTokens.length > 0;
  }

  /** Seconds a dashboard login lasts. */
  get sessionSeconds(): number {
    return Math.round(this.#sessionMs / 1000);
  }

  /** Replaces the admin users (a reload); dashboard sessions of users no longer admins end. */
  setUsers(users: Readonly<Record<string, AdminRole>>): void {
    this.#users = users;
    for (const [id, { principal }] of this.#sessions) {
      if (principal.via === "password" && users[principal.name] !== principal.role) this.#sessions.delete(id);
    }
  }

  /** Reads the token file again (a reload). */
  async reloadTokens(): Promise<"reloaded" | "none"> {
    if (this.#tokens === undefined) return "none";
    await this.#tokens.reload();
    return "reloaded";
  }

  /**
   * The caller of `request` from `host`: `Authorization: Basic` (an admin user) or `Bearer` (a token), else the
   * session cookie.
   *
   * @throws {ApiError} 401 with `WWW-Authenticate` (no or wrong credentials), 403 (a user who is not an admin),
   * 429 with `Retry-After` (too many failed logins from `host`).
   */
  async authenticate(request: Request, host: string): Promise<Principal> {
    const header = request.headers.get("authorization");
    if (header !== null) {
      this.#checkBlocked(host);
      const space = header.indexOf(" ");
      const scheme = header.slice(0, space < 0 ? header.length : space).toLowerCase();
      const value = space < 0 ? "" : header.slice(space + 1).trim();
      if (scheme === "basic") {
        let decoded: string;
        try {
          decoded = new TextDecoder("utf-8", { fatal: true }).decode(
            Uint8Array.from(atob(value), (c) => c.charCodeAt(0)),
          );
        } catch {
          throw unauthorized("the Basic credentials are not valid base64 UTF-8");
        }
        const colon = decoded.indexOf(":");
        if (colon < 0) throw unauthorized("the Basic credentials have no password");
        return await this.#password(decoded.slice(0, colon), decoded.slice(colon + 1), host, "password");
      }
      if (scheme === "bearer") return await this.#token(value, host);
      throw unauthorized(`the ${scheme} scheme is not supported: use Basic or Bearer`);
    }
    const id = cookieValue(request.headers.get("cookie"), SESSION_COOKIE);
    if (id !== undefined) {
      const session = this.#sessions.get(id);
      if (session !== undefined && session.expiresAt > this.#now()) return session.principal;
      this.#sessions.delete(id);
      throw unauthorized("the session has expired: log in again");
    }
    throw unauthorized("credentials required");
  }

  /**
   * `POST /api/v1/login`: `{username, password}` or `{token}` → a new session id for the cookie.
   *
   * @throws {ApiError} 400, 401, 403 or 429 as {@linkcode AdminAuth.authenticate}.
   */
  async login(body: Record<string, unknown>, host: string): Promise<{ id: string; principal: Principal }> {
    this.#checkBlocked(host);
    let principal: Principal;
    if (typeof body.token === "string") {
      principal = await this.#token(body.token, host);
    } else if (typeof body.username === "string" && typeof body.password === "string") {
      principal = await this.#password(body.username, body.password, host, "password");
    } else {
      throw new ApiError(400, "BAD_FIELD", "send {username, password} or {token}");
    }
    const id = newToken();
    if (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    this.#sessions.set(id, { principal, expiresAt: this.#now() + this.#sessionMs });
    return { id, principal };
  }

  /** Ends the session of `request`'s cookie, if any. */
  logout(request: Request): void {
    const id = cookieValue(request.headers.get("cookie"), SESSION_COOKIE);
    if (id !== undefined) this.#sessions.delete(id);
  }

  /** Ends every dashboard session (the server is stopping). */
  clear(): void {
    this.#sessions.clear();
  }

  async #password(username: string, password: string, host: string, via: "password"): Promise<Principal> {
    // Checked whether or not the user is an admin, so the time taken does not tell admins from others.
    let ok: boolean;
    try {
      ok = this.#passwords !== undefined && await this.#passwords.verify(username, password);
    } catch (error) {
      // The password file's hashing queue is full (many logins at once): come back later, like MQTT's 0x89.
      throw new ApiError(503, "BUSY", `cannot check the password now: ${(error as Error).message}`, {
        "retry-after": "1",
      });
    }
    if (!ok) {
      this.#failed(host);
      throw unauthorized("wrong user name or password");
    }
    const role = Object.hasOwn(this.#users, username) ? this.#users[username] : undefined;
    if (role === undefined) {
      throw new ApiError(403, "NOT_AN_ADMIN", "this user is not named in the admin section of the config");
    }
    return { name: username, role, via };
  }

  async #token(token: string, host: string): Promise<Principal> {
    const entry = (await findToken(this.#memoryTokens, token)) ?? await this.#tokens?.find(token);
    if (entry === undefined) {
      this.#failed(host);
      throw unauthorized("unknown token");
    }
    return { name: entry.name, role: entry.role, via: "token" };
  }

  #checkBlocked(host: string): void {
    const now = this.#now();
    const times = this.#failures.get(host);
    if (times === undefined) return;
    while (times.length > 0 && times[0]! <= now - this.#windowMs) times.shift();
    if (times.length === 0) {
      this.#failures.delete(host);
      return;
    }
    if (times.length >= this.#maxFailures) {
      const retry = Math.max(1, Math.ceil((times[0]! + this.#windowMs - now) / 1000));
      throw new ApiError(429, "TOO_MANY_FAILED_LOGINS", `too many failed logins from ${host}: try later`, {
        "retry-after": String(retry),
      });
    }
  }

  #failed(host: string): void {
    let times = this.#failures.get(host);
    if (times === undefined) {
      if (this.#failures.size >= MAX_ADDRESSES) this.#failures.delete(this.#failures.keys().next().value!);
      this.#failures.set(host, times = []);
    }
    times.push(this.#now());
  }
}

/** The `Set-Cookie` value for session `id` (Secure on https). */
export function sessionCookie(id: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}` +
    (secure ? "; Secure" : "");
}

/** The `Set-Cookie` value that removes the session cookie. */
export function clearedCookie(secure: boolean): string {
  return sessionCookie("", 0, secure);
}

function unauthorized(message: string): ApiError {
  return new ApiError(401, "UNAUTHORIZED", message, {
    "www-authenticate": 'Basic realm="denomqtt admin", charset="UTF-8"',
  });
}

function cookieValue(header: string | null, name: string): string | undefined {
  if (header === null) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
