/**
 * Validates the config file's JSON: {@linkcode parseConfig} checks every key against what it accepts and stops
 * at the first fault with an error that names the file and the key path (`broker.json: listeners[1].port must
 * be an integer from 0 to 65535`). It reads no files; `loadConfig` (`config.ts`) does that and resolves paths.
 *
 * @module
 */

import { parseClusterConfig } from "../../cluster/config.ts";
import { parseAdminConfig } from "../../admin/config.ts";
import type { QoS } from "../../packet/packet_type.ts";
import { LISTENER_TYPES } from "./listeners.ts";
import { LOG_FORMATS, LOG_LEVELS } from "../logger.ts";
import {
  type BrokerConfig,
  ConfigError,
  type LimitsConfig,
  type ListenerConfig,
  SWITCHES,
} from "./config_schema.ts";

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
  "reusePort",
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
    if (raw.reusePort !== undefined) {
      listener.reusePort = this.boolean(raw.reusePort, `${at}.reusePort`);
      if (listener.reusePort && listener.requireCertificate === true) {
        this.fail(`${at}.reusePort is not supported with "requireCertificate": true`);
      }
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
