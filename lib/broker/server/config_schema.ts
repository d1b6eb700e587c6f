/**
 * The broker's JSON config file as types: what `parseConfig` (`config_parse.ts`) returns, the error every step
 * of reading the file throws, and the list of feature switches that both the validator and the mapping to
 * {@linkcode BrokerOptions} (`config_options.ts`) walk. Apart so that those two share it without importing
 * each other.
 *
 * @module
 */

import type { BrokerOptions } from "../options.ts";
import type { QoS } from "../../packet/packet_type.ts";
import type { ListenerType } from "./listeners.ts";
import type { LogFormat, LogLevel } from "../logger.ts";

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
  /** Share the port with other broker processes (`SO_REUSEPORT`, Linux spreads connections). @default {false} */
  reusePort?: boolean;
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
export const SWITCHES = [
  "queueQoS0",
  "retainAvailable",
  "checkPayloadFormat",
  "topicAliasOut",
] as const satisfies readonly (keyof BrokerConfig & keyof BrokerOptions)[];

/** Thrown for a config that cannot be used; the message starts with the file and names the key. */
export class ConfigError extends Error {
  /** `"ConfigError"` */
  override readonly name = "ConfigError";
}
