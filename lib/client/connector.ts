/**
 * How the client opens a byte stream to the server. A {@linkcode Connector} is a factory the client calls for
 * every (re)connect, so TCP, TLS, WebSocket or an in-memory pipe plug in the same way.
 *
 * @module
 */

import type { ByteStream } from "../transport/transport.ts";
import { WebSocketByteStream } from "../transport/websocket.ts";

/** Opens a new byte stream to the server; `signal` aborts a connect in progress. */
export type Connector = (signal: AbortSignal) => Promise<ByteStream>;

/** TLS settings for {@linkcode tlsConnector}. */
export interface TlsOptions {
  /** PEM root certificates trusted in addition to the system's. */
  caCerts?: string[];
  /** ALPN protocols to offer. */
  alpnProtocols?: string[];
  /** PEM client certificate (chain), for a server that asks for one; needs `key`. */
  cert?: string;
  /** PEM private key of `cert`. */
  key?: string;
  /**
   * Check the certificate chain but not that it names the host (mosquitto's `--insecure`). Only
   * {@linkcode tlsConnector}: Deno's WebSocket cannot skip the name check alone.
   */
  unsafelyDisableHostnameVerification?: boolean;
}

/**
 * A connector for plain TCP (`Deno.connect`).
 *
 * @example
 * ```ts ignore
 * import { MqttClient } from "./client.ts";
 * import { tcpConnector } from "./connector.ts";
 * const client = new MqttClient({ connect: tcpConnector("broker.local", 1883) });
 * ```
 */
export function tcpConnector(hostname: string, port: number): Connector {
  return async (signal) => {
    try {
      return await Deno.connect({ hostname, port, signal });
    } catch (error) {
      throw refusal(error, hostname, port);
    }
  };
}

/** What {@linkcode serverConnector} reads from the client's options. */
export interface ServerAddress {
  /** The server's host name (default "localhost"). */
  readonly hostname?: string;
  /** The server's port (default 1883, or 8883 with TLS). */
  readonly port?: number;
  /** Connect with TLS; an object sets TLS options. */
  readonly tls?: boolean | TlsOptions;
  /** A connector of the caller's; overrides the others. */
  readonly connect?: Connector;
}

/** The connector for a client's options, and the server's `host:port` when the client opens the stream itself. */
export function serverConnector(address: ServerAddress): { connector: Connector; peer?: string } {
  if (address.connect !== undefined) return { connector: address.connect };
  const hostname = address.hostname ?? "localhost";
  const tls = address.tls;
  const plain = tls === undefined || tls === false;
  const port = address.port ?? (plain ? 1883 : 8883);
  return {
    connector: plain ? tcpConnector(hostname, port) : tlsConnector(hostname, port, tls === true ? {} : tls),
    peer: hostPort(hostname, port),
  };
}

/** `host:port` as people write it (`[::1]:1883` for IPv6). */
export function hostPort(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/** Names the address that refused: the OS message alone ("os error 111") does not say which. */
function refusal(error: unknown, hostname: string, port: number): unknown {
  if (!(error instanceof Deno.errors.ConnectionRefused)) return error;
  return new Deno.errors.ConnectionRefused(
    `Connection refused by ${hostPort(hostname, port)}: nothing listens there`,
    { cause: error },
  );
}

/** A connector for TLS (`Deno.connectTls`). */
export function tlsConnector(hostname: string, port: number, options: TlsOptions = {}): Connector {
  return async (signal) => {
    const pending = Deno.connectTls({ hostname, port, ...options });
    if (signal.aborted) throw signal.reason;
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return await Promise.race([pending, aborted]);
    } catch (error) {
      pending.then((conn) => conn.close(), () => {});
      throw refusal(error, hostname, port);
    } finally {
      signal.removeEventListener("abort", onAbort!);
    }
  };
}

/**
 * A connector for MQTT over WebSocket (`ws://` or `wss://`, subprotocol `mqtt` unless `options` names another),
 * e.g. to a broker's `ws` listener at `ws://127.0.0.1:8080/mqtt`. A string `options` is the subprotocol.
 *
 * @example
 * ```ts ignore
 * import { webSocketConnector } from "./connector.ts";
 * const connect = webSocketConnector("wss://broker.local/mqtt", { tls: { caCerts: [caPem] } });
 * ```
 */
export function webSocketConnector(
  url: string,
  // Inline rather than a named interface: lib/mod.ts exports the public names.
  options: string | {
    /** The WebSocket subprotocol (default "mqtt"). */
    protocol?: string;
    /**
     * `wss://`: extra CA certificates and a client certificate, through a `Deno.HttpClient` made for each
     * connect and closed once the WebSocket is open. `unsafelyDisableHostnameVerification` is refused
     * (a `TypeError`).
     */
    tls?: TlsOptions;
    /** A `Deno.HttpClient` of the caller's (not closed by the connector); overrides `tls`. */
    client?: Deno.HttpClient;
  } = {},
): Connector {
  const { protocol = "mqtt", tls, client: callerClient }: {
    protocol?: string;
    tls?: TlsOptions;
    client?: Deno.HttpClient;
  } = typeof options === "string" ? { protocol: options } : options;
  if (callerClient === undefined && tls?.unsafelyDisableHostnameVerification) {
    throw new TypeError(
      "webSocketConnector: Deno's WebSocket cannot skip only the certificate host name check",
    );
  }
  const needsClient = callerClient === undefined &&
    (tls?.caCerts !== undefined || (tls?.cert !== undefined && tls.key !== undefined));
  return async (signal) => {
    if (signal.aborted) throw signal.reason;
    const ownClient = needsClient ? httpClient(tls!) : undefined;
    const client = callerClient ?? ownClient;
    const socket = new WebSocket(url, { protocols: [protocol], ...(client === undefined ? {} : { client }) });
    const stream = new WebSocketByteStream(socket);
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const onAbort = () => reject(signal.reason);
    const onOpen = () => resolve();
    const onFail = () => reject(new Deno.errors.ConnectionRefused(`cannot open WebSocket ${url}`));
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
      ownClient?.close();
      socket.removeEventListener("open", onOpen);
      socket.removeEventListener("error", onFail);
      socket.removeEventListener("close", onFail);
      signal.removeEventListener("abort", onAbort);
    }
  };
}

/** The `Deno.HttpClient` that trusts `tls.caCerts` and presents `tls.cert`/`tls.key`. */
function httpClient(tls: TlsOptions): Deno.HttpClient {
  return Deno.createHttpClient({
    ...(tls.caCerts === undefined ? {} : { caCerts: tls.caCerts }),
    ...(tls.cert === undefined || tls.key === undefined ? {} : { cert: tls.cert, key: tls.key }),
  });
}

/** A connector over a Unix domain socket (Deno needs read and write permission on `path`). */
export function unixConnector(path: string): Connector {
  return () => Deno.connect({ transport: "unix", path });
}
