/**
 * The broker's JSON config file (`deno task broker --config broker.json`): its schema as types, a validator
 * whose errors name the file and the key path (`broker.json: listeners[1].port must be an integer from 0 to
 * 65535`), and the mapping to {@linkcode BrokerOptions} and {@linkcode ListenerOptions}. `broker.example.json`
 * at the repository root shows every key.
 *
 * @module
 */

import { parseClusterConfig } from "../../cluster/config.ts";
import { directoryOf, isAbsolutePath, resolvePath } from "./paths.ts";
import type { BrokerOptions } from "../options.ts";
import type { QoS } from "../../packet/packet_type.ts";
import {
  DEFAULT_WEBSOCKET_PATH,
  LISTENER_TYPES,
  type ListenerOptions,
  type ListenerType,
} from "./listeners.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "../logger.ts";
import { parseAdminConfig } from "../../admin/config.ts";

/** One listener, as written in the config file. File paths are relative to the config file's directory. */
export interface ListenerConfig {
  /** `tcp`, `tls`, `ws` or `wss`. */
  type: ListenerType;
  /** Address to bind. @default {"127.0.0.1"} */
  host?: string;
  /** 0 picks a free port (the broker prints the one it got). */
  port: number;
  /** ws and wss: the URL path clients connect to. @default {"/mqtt"} */
  path?: string;
  /** tls and wss: server certificate chain, PEM file. */
  cert?: string;
  /** tls and wss: server private key, PEM file. */
  key?: string;
  /** tls: CA certificates (PEM file) that client certificates must chain to; needs `requireCertificate`. */
  ca?: string;
  /** tls: refuse clients without a certificate signed by `ca`. @default {false} */
  requireCertificate?: boolean;
  /** tls: the client certificate's CN is the user name (Mosquitto's `use_identity_as_username`). @default {false} */
  useIdentityAsUsername?: boolean;
  /** Let clients in without a user name. Unset: allowed on loopback addresses only (see README). */
  allowAnonymous?: boolean;
}

/** The `limits` keys that set the {@linkcode BrokerOptions} option of the same name (documented and defaulted there). */
export type DirectLimit =
  | "maxPacketSize"
  | "connectTimeout"
  | "maxKeepAlive"
  | "maxInflight"
  | "receiveMaximum"
  | "maxQueued"
  | "maxQueuedBytes"
  | "maxOutputBytes"
  | "topicAliasMaximum"
  | "maxSessionExpiry"
  | "persistentClientExpiration"
  | "maxSubscriptionsPerClient"
  | "maxConnections"
  | "maxConnectionsPerAddress"
  | "connectRatePerAddress"
  | "messageRatePerClient"
  | "publishBytesPerSecond"
  | "maxRetained"
  | "maxRetainedBytes";

/**
 * The `limits` object: each key sets the {@linkcode BrokerOptions} option of the same name (defaults there),
 * except the two topic limits, which set `topicLimits`.
 */
export interface LimitsConfig extends Pick<BrokerOptions, DirectLimit> {
  /** `topicLimits.maxLength`: longest topic name or filter, UTF-8 bytes. */
  maxTopicLength?: number;
  /** `topicLimits.maxDepth`: most levels in a topic name or filter. */
  maxTopicDepth?: number;
}

/** The whole config file. */
export interface BrokerConfig {
  /** Where clients connect; without it, TCP on 127.0.0.1:1883. */
  listeners?: ListenerConfig[];
  /** `"memory"` or `"sqlite:PATH"`, as the `--persistence` flag. */
  persistence?: string;
  /** Join a cluster of brokers on Redis, as the `--cluster` flag (checked in `lib/cluster/config.ts`). */
  cluster?: {
    /**
     * `redis://HOST:PORT[/DB]`, `rediss://…` (TLS), `redis-sentinel://HOST:PORT[,HOST:PORT…]/MASTER` or
     * `unix:///path/to/redis.sock`.
     */
    redis: string;
    /** This node's name, for logs and its incarnation (`<node>-<random>`). @default {"node"} */
    node?: string;
    /** Lease time in ms: a node silent for this long is dead and its sessions adopted. @default {10000} */
    leaseMs?: number;
    /**
     * Where this node's peer link listens for the other nodes' QoS 0 (`lib/cluster/peer_link.ts`): `host`
     * (default 127.0.0.1), `port` (default a free one), `advertise` (what other nodes dial), or false for none.
     */
    peer?: { host?: string; port?: number; advertise?: string } | false;
  };
  /** Mosquitto-style password file; enables password authentication. */
  passwordFile?: string;
  /** Mosquitto-style ACL file. */
  aclFile?: string;
  /**
   * SCRAM-SHA-256 users for MQTT 5 enhanced authentication, one `user:SCRAM-SHA-256$…` line each (RFC 5803;
   * `deno task passwd --scram` writes them).
   */
  scramFile?: string;
  /** `error`, `warn`, `info` or `debug`. @default {"info"} */
  logLevel?: LogLevel;
  /** `text` or `json`, as the `--log-format` flag. @default {"text"} */
  logFormat?: LogFormat;
  /** Seconds between `$SYS` updates, 0 for none. @default {10} */
  sysInterval?: number;
  /** Limits; see {@linkcode LimitsConfig}. */
  limits?: LimitsConfig;
  /** Queue QoS 0 messages for offline persistent sessions. @default {false} */
  queueQoS0?: boolean;
  /** Highest QoS granted and accepted (CONNACK Maximum QoS). @default {2} */
  maxQoS?: QoS;
  /** Keep retained messages; off, a retained PUBLISH gets DISCONNECT 0x9A. @default {true} */
  retainAvailable?: boolean;
  /** Response Information returned to v5 clients that request it. */
  responseInformation?: string;
  /** Refuse a PUBLISH whose Payload Format Indicator says UTF-8 when it is not (0x99). @default {true} */
  checkPayloadFormat?: boolean;
  /** Use topic aliases towards v5 clients that allow them. @default {true} */
  topicAliasOut?: boolean;
}

/** The top-level keys that set the {@linkcode BrokerOptions} switch of the same name. */
const SWITCHES = [
  "queueQoS0",
  "retainAvailable",
  "checkPayloadFormat",
  "topicAliasOut",
] as const satisfies readonly (keyof BrokerConfig & keyof BrokerOptions)[];

interface Range {
  readonly min: number;
  readonly max: number;
  /** Rates may be fractional (0.5 per second). */
  readonly fractional?: boolean;
}

const U16 = 65535;
const U32 = 0xFFFF_FFFF;
const MANY = Number.MAX_SAFE_INTEGER;

/** What each limit accepts. */
export const LIMIT_RANGES = {
  maxPacketSize: { min: 16, max: 268_435_460 },
  connectTimeout: { min: 1, max: 3_600_000 },
  maxKeepAlive: { min: 1, max: U16 },
  maxInflight: { min: 1, max: U16 },
  receiveMaximum: { min: 1, max: U16 },
  maxQueued: { min: 0, max: MANY },
  maxQueuedBytes: { min: 0, max: MANY },
  maxOutputBytes: { min: 0, max: MANY },
  topicAliasMaximum: { min: 0, max: U16 },
  maxSessionExpiry: { min: 0, max: U32 },
  persistentClientExpiration: { min: 0, max: U32 },
  maxSubscriptionsPerClient: { min: 0, max: MANY },
  maxConnections: { min: 1, max: MANY },
  maxConnectionsPerAddress: { min: 1, max: MANY },
  connectRatePerAddress: { min: 0, max: MANY, fractional: true },
  messageRatePerClient: { min: 0, max: MANY, fractional: true },
  publishBytesPerSecond: { min: 0, max: MANY, fractional: true },
  maxRetained: { min: 0, max: MANY },
  maxRetainedBytes: { min: 0, max: MANY },
  maxTopicLength: { min: 1, max: U16 },
  maxTopicDepth: { min: 1, max: U16 },
} as const satisfies Record<keyof Required<LimitsConfig>, Range>;

const LISTENER_KEYS = [
  "type",
  "host",
  "port",
  "path",
  "cert",
  "key",
  "ca",
  "requireCertificate",
  "useIdentityAsUsername",
  "allowAnonymous",
] as const satisfies readonly (keyof ListenerConfig)[];

const TOP_KEYS = [
  "listeners",
  "persistence",
  "cluster",
  "passwordFile",
  "aclFile",
  "scramFile",
  "logLevel",
  "logFormat",
  "sysInterval",
  "limits",
  ...SWITCHES,
  "maxQoS",
  "responseInformation",
] as const satisfies readonly (keyof BrokerConfig)[];

/** Thrown for a config that cannot be used; the message starts with the file and names the key. */
export class ConfigError extends Error {
  /** `"ConfigError"` */
  override readonly name = "ConfigError";
}

type Json = Record<string, unknown>;

/** Validates config-file text; `source` (the file name) starts every error message. */
export function parseConfig(json: string, source: string): BrokerConfig {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new ConfigError(`${source}: not valid JSON: ${(error as Error).message}`);
  }
  return parseAdminConfig(value, source, (mqtt) => new Validator(source).config(mqtt)); // http listeners, admin
}

class Validator {
  readonly #source: string;

  constructor(source: string) {
    this.#source = source;
  }

  fail(message: string): never {
    throw new ConfigError(`${this.#source}: ${message}`);
  }

  config(value: unknown): BrokerConfig {
    const root = this.object(value, "the config", TOP_KEYS, "");
    const config: BrokerConfig = {};
    if (root.listeners !== undefined) config.listeners = this.listeners(root.listeners);
    if (root.persistence !== undefined) {
      const persistence = this.string(root.persistence, "persistence");
      if (persistence !== "memory" && !/^sqlite:.+/.test(persistence)) {
        this.fail(`persistence must be "memory" or "sqlite:PATH", got "${persistence}"`);
      }
      config.persistence = persistence;
    }
    if (root.cluster !== undefined) config.cluster = parseClusterConfig(root.cluster, this.#source);
    if (root.passwordFile !== undefined) config.passwordFile = this.string(root.passwordFile, "passwordFile");
    if (root.aclFile !== undefined) config.aclFile = this.string(root.aclFile, "aclFile");
    if (root.scramFile !== undefined) config.scramFile = this.string(root.scramFile, "scramFile");
    if (root.logLevel !== undefined) config.logLevel = this.oneOf(root.logLevel, "logLevel", LOG_LEVELS);
    if (root.logFormat !== undefined) config.logFormat = this.oneOf(root.logFormat, "logFormat", LOG_FORMATS);
    if (root.sysInterval !== undefined) {
      config.sysInterval = this.number(root.sysInterval, "sysInterval", { min: 0, max: 86_400 });
    }
    if (root.limits !== undefined) config.limits = this.limits(root.limits);
    for (const key of SWITCHES) {
      if (root[key] !== undefined) config[key] = this.boolean(root[key], key);
    }
    if (root.maxQoS !== undefined) {
      config.maxQoS = this.number(root.maxQoS, "maxQoS", { min: 0, max: 2 }) as QoS;
    }
    if (root.responseInformation !== undefined) {
      // A UTF-8 string in CONNACK [MQTT-1.5.4-1 (5.0)] [MQTT-1.5.4-2 (5.0)]: no U+0000, at most 65535 bytes.
      const text = this.string(root.responseInformation, "responseInformation");
      if (!text.isWellFormed() || text.includes("\0") || new TextEncoder().encode(text).length > U16) {
        this.fail(
          "responseInformation must be well-formed text of at most 65535 UTF-8 bytes, without U+0000",
        );
      }
      config.responseInformation = text;
    }
    return config;
  }

  listeners(value: unknown): ListenerConfig[] {
    if (!Array.isArray(value)) this.fail("listeners must be an array of listener objects");
    if (value.length === 0) this.fail("listeners must list at least one listener");
    const listeners = value.map((item, i) => this.listener(item, `listeners[${i}]`));
    // Two listeners on one fixed port of one address would fail to bind; say which, before anything binds.
    for (const [i, a] of listeners.entries()) {
      const j = listeners.findIndex((b) =>
        b.port === a.port && (b.host ?? "127.0.0.1") === (a.host ?? "127.0.0.1")
      );
      if (a.port !== 0 && j < i) {
        this.fail(`listeners[${i}].port ${a.port} is already used by listeners[${j}]`);
      }
    }
    return listeners;
  }

  listener(value: unknown, at: string): ListenerConfig {
    const raw = this.object(value, at, LISTENER_KEYS, `${at}.`);
    if (raw.type === undefined) this.fail(`${at}.type is required`);
    const type = this.oneOf(raw.type, `${at}.type`, LISTENER_TYPES);
    if (raw.port === undefined) this.fail(`${at}.port is required`);
    const listener: ListenerConfig = {
      type,
      port: this.number(raw.port, `${at}.port`, { min: 0, max: U16 }),
    };
    if (raw.host !== undefined) listener.host = this.string(raw.host, `${at}.host`);
    const web = type === "ws" || type === "wss";
    const secure = type === "tls" || type === "wss";
    if (raw.path !== undefined) {
      if (!web) this.fail(`${at}.path is only for ws and wss listeners`);
      const path = this.string(raw.path, `${at}.path`);
      if (!path.startsWith("/")) this.fail(`${at}.path must start with "/", got "${path}"`);
      listener.path = path;
    }
    for (const key of ["cert", "key"] as const) {
      if (raw[key] === undefined) {
        if (secure) this.fail(`${at}.${key} is required for a ${type} listener`);
      } else {
        if (!secure) this.fail(`${at}.${key} is only for tls and wss listeners`);
        listener[key] = this.string(raw[key], `${at}.${key}`);
      }
    }
    for (const key of ["requireCertificate", "useIdentityAsUsername"] as const) {
      if (raw[key] === undefined) continue;
      if (type !== "tls") {
        this.fail(
          `${at}.${key} is only supported on tls listeners (Deno cannot ask WebSocket clients for certificates)`,
        );
      }
      listener[key] = this.boolean(raw[key], `${at}.${key}`);
    }
    if (raw.ca !== undefined) {
      if (type !== "tls") this.fail(`${at}.ca is only for tls listeners`);
      listener.ca = this.string(raw.ca, `${at}.ca`);
    }
    if (listener.requireCertificate === true && listener.ca === undefined) {
      this.fail(`${at}.ca is required with "requireCertificate": true`);
    }
    if (listener.requireCertificate !== true) {
      if (listener.ca !== undefined) this.fail(`${at}.ca needs "requireCertificate": true`);
      if (listener.useIdentityAsUsername === true) {
        this.fail(`${at}.useIdentityAsUsername needs "requireCertificate": true`);
      }
    }
    if (raw.allowAnonymous !== undefined) {
      listener.allowAnonymous = this.boolean(raw.allowAnonymous, `${at}.allowAnonymous`);
    }
    return listener;
  }

  limits(value: unknown): LimitsConfig {
    const keys = Object.keys(LIMIT_RANGES) as (keyof typeof LIMIT_RANGES)[];
    const raw = this.object(value, "limits", keys, "limits.");
    const limits: LimitsConfig = {};
    for (const key of keys) {
      if (raw[key] !== undefined) limits[key] = this.number(raw[key], `limits.${key}`, LIMIT_RANGES[key]);
    }
    return limits;
  }

  object(value: unknown, what: string, known: readonly string[], prefix: string): Json {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.fail(`${what} must be an object`);
    }
    for (const key of Object.keys(value)) {
      if (!known.includes(key)) this.fail(`unknown key ${prefix}${key} (known keys: ${known.join(", ")})`);
    }
    return value as Json;
  }

  string(value: unknown, at: string): string {
    if (typeof value !== "string" || value === "") this.fail(`${at} must be a non-empty string`);
    return value;
  }

  boolean(value: unknown, at: string): boolean {
    if (typeof value !== "boolean") this.fail(`${at} must be true or false`);
    return value;
  }

  number(value: unknown, at: string, range: Range): number {
    const ok = typeof value === "number" && Number.isFinite(value) && value >= range.min &&
      value <= range.max &&
      (range.fractional === true || Number.isInteger(value));
    if (!ok) {
      this.fail(
        `${at} must be ${range.fractional ? "a number" : "an integer"} from ${range.min} to ${range.max}`,
      );
    }
    return value as number;
  }

  oneOf<T extends string>(value: unknown, at: string, allowed: readonly T[]): T {
    if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
      this.fail(`${at} must be one of ${allowed.map((a) => `"${a}"`).join(", ")}`);
    }
    return value as T;
  }
}

/**
 * Reads and validates a config file, resolving its relative file paths (certificates, password and ACL files,
 * the SQLite database) against the directory that holds it.
 */
export async function loadConfig(path: string): Promise<BrokerConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError(`${path}: cannot read the config file: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const config = parseConfig(text, path);
  const base = directoryOf(resolvePath(path));
  const at = (file: string) => isAbsolutePath(file) ? file : resolvePath(file, base);
  if (config.passwordFile !== undefined) config.passwordFile = at(config.passwordFile);
  if (config.aclFile !== undefined) config.aclFile = at(config.aclFile);
  if (config.scramFile !== undefined) config.scramFile = at(config.scramFile);
  if (config.persistence?.startsWith("sqlite:")) {
    config.persistence = `sqlite:${at(config.persistence.slice(7))}`;
  }
  for (const listener of config.listeners ?? []) {
    for (const key of ["cert", "key", "ca"] as const) {
      const file = listener[key];
      if (file !== undefined) listener[key] = at(file);
    }
  }
  return config;
}

/**
 * The broker options a config sets (limits, `sysInterval` and the feature switches); the caller adds logger,
 * storage and auth.
 */
export function brokerOptions(config: BrokerConfig): BrokerOptions {
  const { maxTopicLength, maxTopicDepth, ...limits } = config.limits ?? {};
  const direct: Pick<BrokerOptions, DirectLimit> = limits;
  const options: BrokerOptions = { ...direct };
  if (config.sysInterval !== undefined) options.sysInterval = config.sysInterval;
  for (const key of SWITCHES) {
    const value = config[key];
    if (value !== undefined) options[key] = value;
  }
  if (config.maxQoS !== undefined) options.maxQoS = config.maxQoS;
  if (config.responseInformation !== undefined) options.responseInformation = config.responseInformation;
  if (maxTopicLength !== undefined || maxTopicDepth !== undefined) {
    options.topicLimits = {
      maxLength: maxTopicLength ?? U16,
      maxDepth: maxTopicDepth ?? 128,
    };
  }
  return options;
}

/**
 * The listeners a config describes, with their certificate files read. `source` names the config file in
 * errors: `broker.json: listeners[1].cert: cannot read /etc/mqtt/server.crt: No such file or directory`.
 */
export async function listenerOptions(config: BrokerConfig, source: string): Promise<ListenerOptions[]> {
  if (config.listeners === undefined) return [{ type: "tcp", name: "the default tcp listener", port: 1883 }];
  const listeners = config.listeners;
  const read = async (file: string, at: string): Promise<string> => {
    try {
      return await Deno.readTextFile(file);
    } catch (error) {
      throw new ConfigError(`${source}: ${at}: cannot read ${file}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  };
  return await Promise.all(listeners.map(async (l, i): Promise<ListenerOptions> => {
    const at = `listeners[${i}]`;
    const base = {
      name: at,
      hostname: l.host ?? "127.0.0.1",
      port: l.port,
      ...(l.allowAnonymous === undefined ? {} : { allowAnonymous: l.allowAnonymous }),
    };
    switch (l.type) {
      case "tcp":
        return { ...base, type: "tcp" };
      case "ws":
        return { ...base, type: "ws", path: l.path ?? DEFAULT_WEBSOCKET_PATH };
      case "tls":
      case "wss": {
        const cert = await read(l.cert!, `${at}.cert`);
        const key = await read(l.key!, `${at}.key`);
        // The file names too, so SIGHUP can read them again (RunningListeners.reloadCertificates).
        const files = { certFile: l.cert!, keyFile: l.key! };
        if (l.type === "wss") {
          return { ...base, type: "wss", path: l.path ?? DEFAULT_WEBSOCKET_PATH, cert, key, ...files };
        }
        return {
          ...base,
          type: "tls",
          cert,
          key,
          ...files,
          ...(l.ca === undefined ? {} : { ca: await read(l.ca, `${at}.ca`) }),
          ...(l.requireCertificate === undefined ? {} : { requireCertificate: l.requireCertificate }),
          ...(l.useIdentityAsUsername === undefined
            ? {}
            : { useIdentityAsUsername: l.useIdentityAsUsername }),
        };
      }
    }
  }));
}
