/**
 * Shared by the admin API tests: a broker with an admin server on port 0 (users `ops` admin and `grafana`
 * viewer, device `sensor` in the password file only, token `viewer-token`), closed whatever happens, and
 * request helpers.
 *
 * @module
 */

import { hashPassword } from "../../lib/auth/password_hash.ts";
import { PasswordFile } from "../../lib/broker/auth/password_file.ts";
import { Broker, type BrokerOptions } from "../../lib/broker/broker.ts";
import { AdminAuth, type AdminAuthOptions } from "../../lib/admin/auth.ts";
import { type AdminServerOptions, type RunningAdmin, startAdmin } from "../../lib/admin/server.ts";
import { tokenEntry } from "../../lib/admin/tokens.ts";

/** A test's view of the running server. */
export interface AdminFixture {
  readonly broker: Broker;
  readonly admin: RunningAdmin;
  /** e.g. `http://127.0.0.1:50123` */
  readonly base: string;
  readonly port: number;
  /** Fetches `path` as `who` (default the admin `ops`), with a JSON body when given. */
  call(path: string, init?: CallInit): Promise<Response>;
  /** {@linkcode AdminFixture.call}, then the JSON body (asserting nothing). */
  callJson(path: string, init?: CallInit): Promise<{ status: number; body: Record<string, unknown> }>;
}

/** Options of one call. */
export interface CallInit {
  readonly method?: string;
  /** Sent as JSON with `Content-Type: application/json`. */
  readonly json?: unknown;
  /** `ops` (admin), `grafana` (viewer), `sensor` (device), `none`, or raw headers. */
  readonly as?: "ops" | "grafana" | "sensor" | "none";
  readonly headers?: Record<string, string>;
  /** A raw body (instead of `json`). */
  readonly body?: BodyInit;
}

const FAST = { iterations: 1000 } as const;
let passwordText: Promise<string> | undefined;

/** The password file of the tests: ops/ops-pw, grafana/grafana-pw, sensor/sensor-pw. */
export function testPasswords(): Promise<PasswordFile> {
  passwordText ??=
    (async () =>
      `ops:${await hashPassword("ops-pw", FAST)}\ngrafana:${await hashPassword("grafana-pw", FAST)}\n` +
      `sensor:${await hashPassword("sensor-pw", FAST)}\n`)();
  return passwordText.then((text) => PasswordFile.parse(text));
}

/** Basic credentials header value. */
export function basic(user: string, password: string): string {
  return `Basic ${btoa(`${user}:${password}`)}`;
}

const CREDENTIALS = {
  ops: basic("ops", "ops-pw"),
  grafana: basic("grafana", "grafana-pw"),
  sensor: basic("sensor", "sensor-pw"),
} as const;

/** Options of {@linkcode withAdmin} and {@linkcode adminOn}. */
export interface AdminTestOptions {
  broker?: BrokerOptions;
  auth?: AdminAuthOptions;
  server?: Partial<AdminServerOptions>;
}

/** Runs `body` with a broker and an admin server; both are closed after. */
export async function withAdmin(
  body: (fixture: AdminFixture) => Promise<void>,
  options: AdminTestOptions = {},
): Promise<void> {
  const broker = new Broker({ sysInterval: 0, ...options.broker });
  await broker.start();
  try {
    await adminOn(broker, body, options);
  } finally {
    await broker.close();
  }
}

/** Runs `body` with an admin server for `broker` (started); the server is closed after. */
export async function adminOn(
  broker: Broker,
  body: (fixture: AdminFixture) => Promise<void>,
  options: AdminTestOptions = {},
): Promise<void> {
  const passwords = await testPasswords();
  const auth = new AdminAuth({
    users: { ops: "admin", grafana: "viewer" },
    passwords: { verify: (u, p) => passwords.verify(u, p) },
    memoryTokens: [await tokenEntry("scraper", "viewer", "viewer-token")],
    ...options.auth,
  });
  let admin: RunningAdmin | undefined;
  try {
    admin = await startAdmin(broker, {
      listeners: [{ name: "test admin", type: "http", port: 0 }],
      auth,
      uiDir: new URL("./_no_ui/", import.meta.url),
      ...options.server,
    });
    const port = admin.listeners[0]!.port;
    const base = `http://127.0.0.1:${port}`;
    const call = (path: string, init: CallInit = {}): Promise<Response> => {
      const headers: Record<string, string> = {};
      const who = init.as ?? "ops";
      if (who !== "none") headers.authorization = CREDENTIALS[who];
      if (init.json !== undefined) headers["content-type"] = "application/json";
      return fetch(`${base}${path}`, {
        method: init.method ?? (init.json === undefined ? "GET" : "POST"),
        headers: { ...headers, ...init.headers },
        ...(init.json === undefined ? {} : { body: JSON.stringify(init.json) }),
        ...(init.body === undefined ? {} : { body: init.body }),
      });
    };
    const callJson = async (path: string, init?: CallInit) => {
      const response = await call(path, init);
      const text = await response.text();
      return { status: response.status, body: text === "" ? {} : JSON.parse(text) };
    };
    await body({ broker, admin, base, port, call, callJson });
  } finally {
    await admin?.close();
  }
}

/**
 * Sends one HTTP/1.1 request over a plain socket (fetch will not send a `Host` of our choosing) and returns the
 * status and the headers, lower-case.
 */
export async function rawRequest(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, string> }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const lines = [`GET ${path} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    await conn.write(new TextEncoder().encode(`${lines.join("\r\n")}\r\nconnection: close\r\n\r\n`));
    let text = "";
    const buffer = new Uint8Array(4096);
    const decoder = new TextDecoder();
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += decoder.decode(buffer.subarray(0, n), { stream: true });
      if (text.includes("\r\n\r\n")) break;
    }
    const [head] = text.split("\r\n\r\n");
    const [statusLine, ...rest] = head!.split("\r\n");
    const parsed: Record<string, string> = {};
    for (const line of rest) {
      const colon = line.indexOf(":");
      parsed[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    return { status: Number(statusLine!.split(" ")[1]), headers: parsed };
  } finally {
    conn.close();
  }
}
