/**
 * Where the CLI connects: `-L` URLs (`mqtt://`, `mqtts://` as mosquitto_pub/sub, plus `ws://` and `wss://` for a
 * broker's WebSocket listener). The connectors are the library's (lib/client/connector.ts).
 *
 * @module
 */

import { UsageError } from "./_flags.ts";

/** The schemes `-L` takes. */
export const URL_SCHEMES = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 } as const;

/** A `-L` scheme. */
export type UrlScheme = keyof typeof URL_SCHEMES;

/** A parsed `-L` URL. */
export interface BrokerUrl {
  readonly scheme: UrlScheme;
  /** The host name, without the brackets of an IPv6 literal. */
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
  /** `mqtt(s)://`: the topic, the path after the first `/` taken as is (`#` and `+` need no escaping). */
  readonly topic?: string;
  /** `ws(s)://`: the URL to open, without the user name and password (path `/mqtt` when none is given). */
  readonly webSocketUrl?: string;
}

const URL_PATTERN = /^([a-z]+):\/\/(?:([^@/]*)@)?(\[[^\]]*\]|[^:/]*)(?::([^/]*))?(?:\/(.*))?$/s;

function decode(flag: string, text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new UsageError(`${flag}: bad %-escape in "${text}"`);
  }
}

/**
 * Parses `scheme://[user[:password]@]host[:port][/rest]`; for `mqtt(s)` the rest is the topic, for `ws(s)` the
 * WebSocket path. The user name and password may be %-escaped.
 * @throws {UsageError}
 */
export function parseBrokerUrl(value: string): BrokerUrl {
  const match = URL_PATTERN.exec(value);
  const scheme = match?.[1];
  if (match === null || scheme === undefined || !(scheme in URL_SCHEMES)) {
    throw new UsageError(
      `-L must look like mqtt://[user[:password]@]host[:port]/topic (or mqtts://, ws://, wss://), not "${value}"`,
    );
  }
  const [, , userinfo, rawHost = "", rawPort, rest] = match;
  const typed = scheme as UrlScheme;
  if (rawHost === "" || rawHost === "[]") throw new UsageError(`-L: no host in "${value}"`);
  const port = rawPort === undefined || rawPort === "" ? URL_SCHEMES[typed] : Number(rawPort);
  if (!/^\d*$/.test(rawPort ?? "") || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new UsageError(`-L: the port must be a whole number from 1 to 65535, not "${rawPort}"`);
  }
  const host = rawHost.startsWith("[") ? rawHost.slice(1, -1) : rawHost;
  const colon = userinfo?.indexOf(":") ?? -1;
  const credentials = userinfo === undefined
    ? {}
    : colon < 0
    ? { username: decode("-L", userinfo) }
    : { username: decode("-L", userinfo.slice(0, colon)), password: decode("-L", userinfo.slice(colon + 1)) };
  if (typed === "ws" || typed === "wss") {
    const path = rest === undefined || rest === "" ? "mqtt" : rest;
    return {
      scheme: typed,
      host,
      port,
      ...credentials,
      webSocketUrl: `${typed}://${rawHost}:${port}/${path}`,
    };
  }
  return {
    scheme: typed,
    host,
    port,
    ...credentials,
    ...(rest === undefined || rest === "" ? {} : { topic: rest }),
  };
}
