/**
 * Where the CLI connects: `-L` URLs (`mqtt://`, `mqtts://` as mosquitto_pub/sub, plus `ws://` and `wss://` for a
 * broker's WebSocket listener) and the connectors the flags need beyond the client's own TCP and TLS (`--unix`,
 * and `wss://` with a CA or a client certificate).
 *
 * @module
 */

import type { Connector, TlsOptions } from "../lib/client/connector.ts";
import { WebSocketByteStream } from "../lib/transport/websocket.ts";
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

/** A connector over a Unix domain socket (`--unix`; Deno needs read and write permission on the path). */
export function unixConnector(path: string): Connector {
  return () => Deno.connect({ transport: "unix", path });
}

/**
 * A WebSocket connector that can trust an extra CA and present a client certificate (`wss://` with `--cafile`,
 * `--cert`, `--key`), through a `Deno.HttpClient`; subprotocol `mqtt`.
 */
export function webSocketConnector(url: string, tls: TlsOptions = {}): Connector {
  return async (signal) => {
    if (signal.aborted) throw signal.reason;
    const hasTls = tls.caCerts !== undefined || tls.cert !== undefined;
    const client = hasTls
      ? Deno.createHttpClient({
        ...(tls.caCerts === undefined ? {} : { caCerts: tls.caCerts }),
        ...(tls.cert === undefined || tls.key === undefined ? {} : { cert: tls.cert, key: tls.key }),
      })
      : undefined;
    const socket = new WebSocket(url, { protocols: ["mqtt"], ...(client === undefined ? {} : { client }) });
    const stream = new WebSocketByteStream(socket);
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const onAbort = (): void => reject(signal.reason);
    const onOpen = (): void => resolve();
    const onFail = (): void => reject(new Deno.errors.ConnectionRefused(`cannot open WebSocket ${url}`));
    socket.addEventListener("open", onOpen);
    socket.addEventListener("error", onFail);
    socket.addEventListener("close", onFail);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await promise;
      return stream;
    } catch (error) {
      stream.close();
      throw error;
    } finally {
      client?.close();
      socket.removeEventListener("open", onOpen);
      socket.removeEventListener("error", onFail);
      socket.removeEventListener("close", onFail);
      signal.removeEventListener("abort", onAbort);
    }
  };
}
