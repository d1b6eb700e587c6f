/**
 * The admin server's part of the config file: `http`/`https` entries in `listeners` and the `admin` section.
 * `parseConfig` (`lib/broker/server/config_parse.ts`) hands the raw JSON here first; this takes those keys out,
 * validates them with errors that name the key (`broker.json: listeners[1].cert is required for an https
 * listener`), and lets the MQTT validator see the rest.
 *
 * @module
 */

import type { BrokerConfig } from "../broker/server/config_schema.ts";
import { ConfigError } from "../broker/server/config_schema.ts";
import { directoryOf, isAbsolutePath, resolvePath } from "../broker/server/paths.ts";

/** What an admin may do: `viewer` reads (GET), `admin` does everything. */
export type AdminRole = "viewer" | "admin";

/** The admin roles, least first. */
export const ADMIN_ROLES = ["viewer", "admin"] as const satisfies readonly AdminRole[];

/** The `admin` section. */
export interface AdminConfig {
  /** Users of the password file who may use the admin API, with their role; other users never can. */
  users?: Record<string, AdminRole>;
  /** API tokens, one `name:role:sha256hex` line each (`deno task passwd --token` style hash of the token). */
  tokenFile?: string;
  /** Host names the API answers to besides IP addresses and `localhost` (DNS-rebinding guard). */
  allowedHosts?: string[];
  /** How long a dashboard login lasts, minutes. @default {60} */
  sessionMinutes?: number;
}

/** An `http` or `https` listener, as written in the config file. */
export interface HttpListenerConfig {
  /** `http`, or `https` with `cert` and `key`. */
  type: "http" | "https";
  /** Address to bind. @default {"127.0.0.1"} */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** https: server certificate chain, PEM file. */
  cert?: string;
  /** https: server private key, PEM file. */
  key?: string;
  /** Loopback only: serve the API without credentials. @default {false} */
  allowAnonymous?: boolean;
  /** Serve `/metrics` without credentials on a network address too. @default {false} */
  publicMetrics?: boolean;
}

/** An http listener with its place in the config's `listeners` (it names the listener in errors). */
export interface IndexedHttpListener extends HttpListenerConfig {
  /** e.g. `listeners[2]` */
  readonly name: string;
}

/** The admin part of a parsed config. */
export interface AdminSection {
  readonly admin?: AdminConfig;
  readonly httpListeners: readonly IndexedHttpListener[];
  /** For each MQTT listener left in the config, its place in the file's `listeners`. */
  readonly mqttPlaces?: readonly number[];
}

/** Where the admin part of a parsed config is kept (on the config object, beside the MQTT keys). */
const SECTION = Symbol("admin section");

type WithSection = BrokerConfig & { [SECTION]?: AdminSection };

const HTTP_TYPES = ["http", "https"];
const HTTP_KEYS = ["type", "host", "port", "cert", "key", "allowAnonymous", "publicMetrics"];
const ADMIN_KEYS = ["users", "tokenFile", "allowedHosts", "sessionMinutes"];

/**
 * Takes the admin keys out of the config file's JSON, validates them, and passes the rest to `parseMqtt` (the
 * MQTT validator). A config whose listeners are all http gets the default MQTT listener.
 *
 * @throws {ConfigError} naming `source` and the key.
 */
export function parseAdminConfig(
  value: unknown,
  source: string,
  parseMqtt: (value: unknown) => BrokerConfig,
): BrokerConfig {
  const fail = (message: string): never => {
    throw new ConfigError(`${source}: ${message}`);
  };
  if (!isObject(value)) return parseMqtt(value);
  const rest: Record<string, unknown> = { ...value };
  let admin: AdminConfig | undefined;
  if (rest.admin !== undefined) {
    admin = adminSection(rest.admin, fail);
    delete rest.admin;
  }
  const httpListeners: IndexedHttpListener[] = [];
  /** The place in the file of each MQTT listener the MQTT validator sees, for its error messages. */
  const places: number[] = [];
  if (Array.isArray(rest.listeners)) {
    const mqtt: unknown[] = [];
    for (const [i, item] of rest.listeners.entries()) {
      if (isObject(item) && HTTP_TYPES.includes(item.type as string)) {
        httpListeners.push(httpListener(item, `listeners[${i}]`, fail));
      } else {
        mqtt.push(item);
        places.push(i);
      }
    }
    if (httpListeners.length > 0) {
      if (mqtt.length === 0) delete rest.listeners;
      else rest.listeners = mqtt;
    }
  }
  let config: WithSection;
  try {
    config = parseMqtt(rest);
  } catch (error) {
    if (!(error instanceof ConfigError) || httpListeners.length === 0) throw error;
    // The MQTT validator numbered the listeners without the http ones: name them as the file does.
    throw new ConfigError(
      error.message.replace(/listeners\[(\d+)\]/g, (_, k: string) => `listeners[${places[Number(k)] ?? k}]`),
      { cause: error },
    );
  }
  for (const http of httpListeners) {
    if (http.port === 0) continue;
    const host = http.host ?? "127.0.0.1";
    const other = httpListeners.find((l) =>
      l !== http && l.port === http.port && (l.host ?? "127.0.0.1") === host
    );
    const mqtt = config.listeners?.find((l) => l.port === http.port && (l.host ?? "127.0.0.1") === host);
    if (other !== undefined || mqtt !== undefined) {
      fail(`${http.name}.port ${http.port} is already used by another listener`);
    }
  }
  if (admin !== undefined || httpListeners.length > 0) {
    config[SECTION] = { ...(admin === undefined ? {} : { admin }), httpListeners, mqttPlaces: places };
  }
  return config;
}

/** The admin part of a config `parseConfig` returned (no http listeners when it has none). */
export function adminSectionOf(config: BrokerConfig): AdminSection {
  return (config as WithSection)[SECTION] ?? { httpListeners: [] };
}

/**
 * `listeners` (the MQTT listeners `listenerOptions` made of `config`) named by their place in the file
 * (`listeners[2]`), which differs from their place in the config's list when http listeners were taken out.
 */
export function namedAsInFile<T extends { name?: string }>(listeners: T[], config: BrokerConfig): T[] {
  const places = adminSectionOf(config).mqttPlaces;
  if (places === undefined) return listeners;
  return listeners.map((l) => {
    const k = /^listeners\[(\d+)\]$/.exec(l.name ?? "")?.[1];
    const place = k === undefined ? undefined : places[Number(k)];
    return place === undefined ? l : { ...l, name: `listeners[${place}]` };
  });
}

/**
 * The admin section with its file paths (token file, certificates) taken from `configFile`'s directory, as
 * `loadConfig` does for the MQTT keys.
 */
export function resolveAdminPaths(section: AdminSection, configFile: string): AdminSection {
  const base = directoryOf(resolvePath(configFile));
  const at = (file: string) => isAbsolutePath(file) ? file : resolvePath(file, base);
  const admin = section.admin;
  return {
    ...(admin === undefined
      ? {}
      : { admin: admin.tokenFile === undefined ? admin : { ...admin, tokenFile: at(admin.tokenFile) } }),
    httpListeners: section.httpListeners.map((l) => ({
      ...l,
      ...(l.cert === undefined ? {} : { cert: at(l.cert) }),
      ...(l.key === undefined ? {} : { key: at(l.key) }),
    })),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function known(
  raw: Record<string, unknown>,
  keys: readonly string[],
  at: string,
  fail: (m: string) => never,
) {
  for (const key of Object.keys(raw)) {
    if (!keys.includes(key)) fail(`unknown key ${at}.${key} (known keys: ${keys.join(", ")})`);
  }
}

function adminSection(value: unknown, fail: (message: string) => never): AdminConfig {
  if (!isObject(value)) return fail("admin must be an object");
  known(value, ADMIN_KEYS, "admin", fail);
  const admin: AdminConfig = {};
  if (value.users !== undefined) {
    if (!isObject(value.users)) fail("admin.users must be an object of user name to role");
    const users: Record<string, AdminRole> = {};
    for (const [name, role] of Object.entries(value.users as Record<string, unknown>)) {
      if (!(ADMIN_ROLES as readonly unknown[]).includes(role)) {
        fail(`admin.users.${name} must be "viewer" or "admin"`);
      }
      users[name] = role as AdminRole;
    }
    admin.users = users;
  }
  if (value.tokenFile !== undefined) {
    if (typeof value.tokenFile !== "string" || value.tokenFile === "") {
      fail("admin.tokenFile must be a non-empty string");
    }
    admin.tokenFile = value.tokenFile as string;
  }
  if (value.allowedHosts !== undefined) {
    const hosts = value.allowedHosts;
    if (!Array.isArray(hosts) || hosts.some((h) => typeof h !== "string" || h === "")) {
      fail("admin.allowedHosts must be an array of host names");
    }
    admin.allowedHosts = (hosts as string[]).map((h) => h.toLowerCase());
  }
  if (value.sessionMinutes !== undefined) {
    const minutes = value.sessionMinutes;
    if (typeof minutes !== "number" || !Number.isInteger(minutes) || minutes < 1 || minutes > 525_600) {
      fail("admin.sessionMinutes must be an integer from 1 to 525600");
    }
    admin.sessionMinutes = minutes as number;
  }
  return admin;
}

function httpListener(
  raw: Record<string, unknown>,
  at: string,
  fail: (message: string) => never,
): IndexedHttpListener {
  known(raw, HTTP_KEYS, at, fail);
  const type = raw.type as "http" | "https";
  const port = raw.port;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535) {
    fail(`${at}.port must be an integer from 0 to 65535`);
  }
  const listener: IndexedHttpListener = { name: at, type, port: port as number };
  if (raw.host !== undefined) {
    if (typeof raw.host !== "string" || raw.host === "") fail(`${at}.host must be a non-empty string`);
    listener.host = raw.host as string;
  }
  for (const key of ["cert", "key"] as const) {
    if (raw[key] === undefined) {
      if (type === "https") fail(`${at}.${key} is required for an https listener`);
      continue;
    }
    if (type !== "https") fail(`${at}.${key} is only for https listeners`);
    if (typeof raw[key] !== "string" || raw[key] === "") fail(`${at}.${key} must be a non-empty string`);
    listener[key] = raw[key] as string;
  }
  for (const key of ["allowAnonymous", "publicMetrics"] as const) {
    if (raw[key] === undefined) continue;
    if (typeof raw[key] !== "boolean") fail(`${at}.${key} must be true or false`);
    listener[key] = raw[key] as boolean;
  }
  return listener;
}
