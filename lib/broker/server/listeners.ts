/**
 * Listeners: MQTT over TCP, TLS, WebSocket and secure WebSocket, each feeding {@linkcode Broker.handle}. Also
 * the rule that keeps a fresh install safe: a listener reachable from the network without any authentication
 * refuses to start unless it says `allowAnonymous` (as Mosquitto 2 does).
 *
 * @module
 */

import type { Authenticator, AuthResult, ConnectInfo } from "../auth/auth.ts";
import type { Broker } from "../broker.ts";
import type { ConnectionInfo } from "../connection.ts";
import { listenTlsWithClientCertificates } from "../../transport/tls.ts";
import { MQTT_SUBPROTOCOLS, WebSocketByteStream } from "../../transport/websocket.ts";

/** The listener kinds, as written in a config file. */
export const LISTENER_TYPES = ["tcp", "tls", "ws", "wss"] as const;

/** A listener kind. */
export type ListenerType = (typeof LISTENER_TYPES)[number];

/** The path WebSocket listeners serve when none is given. */
export const DEFAULT_WEBSOCKET_PATH = "/mqtt";

/** What every listener has. */
export interface ListenerBase {
  /** Names the listener in errors and logs, e.g. `listeners[1]`. @default {"tcp listener"} and so on */
  name?: string;
  /** Address to bind. @default {"127.0.0.1"} */
  hostname?: string;
  /** 0 picks a free port. */
  port: number;
  /**
   * Let clients in without a user name. Unset: allowed on loopback addresses; elsewhere refused when the
   * listener has authentication, and the listener refuses to start when it has none.
   */
  allowAnonymous?: boolean;
}

/** Server certificate and key, PEM text. */
export interface ServerCertificate {
  /** Certificate chain, PEM. */
  cert: string;
  /** Private key, PEM. */
  key: string;
}

/** MQTT over plain TCP. */
export interface TcpListenerOptions extends ListenerBase {
  /** The listener kind. */
  type: "tcp";
}

/** MQTT over TLS. */
export interface TlsListenerOptions extends ListenerBase, ServerCertificate {
  /** The listener kind. */
  type: "tls";
  /** CA certificates (PEM) that client certificates must chain to; needed with `requireCertificate`. */
  ca?: string;
  /** Refuse clients without a certificate signed by `ca`. @default {false} */
  requireCertificate?: boolean;
  /**
   * Use the client certificate's CN as the user name (needs `requireCertificate`). The listener passes it as
   * `certificateCommonName`; wrap the broker's authenticator with {@linkcode certificateIdentity} to honour it.
   *
   * @default {false}
   */
  useIdentityAsUsername?: boolean;
}

/** MQTT over WebSocket (subprotocol `mqtt`). */
export interface WsListenerOptions extends ListenerBase {
  /** The listener kind. */
  type: "ws";
  /** The URL path clients connect to; other paths get 404. @default {"/mqtt"} */
  path?: string;
}

/** MQTT over WebSocket over TLS. */
export interface WssListenerOptions extends ListenerBase, ServerCertificate {
  /** The listener kind. */
  type: "wss";
  /** The URL path clients connect to; other paths get 404. @default {"/mqtt"} */
  path?: string;
}

/** One listener to start. */
export type ListenerOptions =
  | TcpListenerOptions
  | TlsListenerOptions
  | WsListenerOptions
  | WssListenerOptions;

/** Options for {@linkcode startListeners}. */
export interface StartListenersOptions {
  /**
   * Whether the broker checks passwords (a password file or another authenticator), which makes a listener
   * on a non-loopback address safe without client certificates.
   *
   * @default {false}
   */
  passwordAuthentication?: boolean;
}

/** A listener that is accepting connections. */
export interface BoundListener {
  /** The listener kind. */
  readonly type: ListenerType;
  /** As given in {@linkcode ListenerOptions}, or a default such as `tcp listener`. */
  readonly name: string;
  /** The bound address. */
  readonly hostname: string;
  /** The bound port (the one the system picked for port 0). */
  readonly port: number;
  /** WebSocket listeners only. */
  readonly path?: string;
  /** e.g. `tcp://127.0.0.1:1883`, `ws://127.0.0.1:8080/mqtt` */
  readonly url: string;
  /** Whether clients without a user name get in. */
  readonly allowAnonymous: boolean;
}

/** The listeners {@linkcode startListeners} started. */
export interface RunningListeners {
  /** In the order they were given. */
  readonly listeners: readonly BoundListener[];
  /**
   * Stops every listener. Call it after `broker.close()`: closing a WebSocket server drops its clients at once
   * (close code 1001), before the broker could send them DISCONNECT and handle their wills.
   */
  close(): Promise<void>;
}

/** Thrown when a listener cannot be started; the message names the listener. */
export class ListenerError extends Error {
  /** `"ListenerError"` */
  override readonly name = "ListenerError";
}

/** Whether `hostname` can only be reached from this machine. */
export function isLoopback(hostname: string): boolean {
  const host = hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
  if (host === "localhost" || host === "::1") return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) ||
    /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/i.test(host);
}

/**
 * Decides whether `listener` lets anonymous clients in; throws {@linkcode ListenerError} for a listener on a
 * non-loopback address with no authentication at all (no passwords, no client certificates) that did not set
 * `allowAnonymous: true`.
 */
export function anonymousAllowed(listener: ListenerOptions, passwordAuthentication: boolean): boolean {
  if (listener.allowAnonymous !== undefined) return listener.allowAnonymous;
  const hostname = listener.hostname ?? "127.0.0.1";
  if (isLoopback(hostname)) return true;
  const clientCertificates = listener.type === "tls" && listener.requireCertificate === true;
  if (passwordAuthentication || clientCertificates) return false;
  const which = `${listenerName(listener)} (${listener.type} on ${hostname}:${listener.port})`;
  throw new ListenerError(
    `${which}: refusing to accept clients from the network without authentication; configure a passwordFile ` +
      `or "requireCertificate", or set "allowAnonymous": true on this listener`,
  );
}

/**
 * Wraps `inner` so that a client that presented a verified certificate on a listener with
 * `useIdentityAsUsername` is accepted with the certificate's CN as its user name (Mosquitto's
 * `use_identity_as_username`); every other client goes to `inner`.
 */
export function certificateIdentity(inner: Authenticator): Authenticator {
  return {
    authenticate(info: ConnectInfo): Promise<AuthResult> | AuthResult {
      const cn = info.certificateCommonName;
      return cn === undefined ? inner.authenticate(info) : { reasonCode: 0, username: cn };
    },
  };
}

interface Running {
  readonly bound: BoundListener;
  close(): Promise<void>;
}

/**
 * Starts every listener for `broker` (after starting the broker). All or nothing: the anonymous rule is checked
 * for every listener before any binds, and if one cannot bind, those already started are closed again.
 *
 * @example
 * ```ts ignore
 * import { Broker } from "../broker.ts";
 * import { startListeners } from "./listeners.ts";
 * const broker = new Broker();
 * const running = await startListeners(broker, [
 *   { type: "tcp", port: 0 },
 *   { type: "ws", port: 0, path: "/mqtt" },
 * ]);
 * for (const listener of running.listeners) console.log(listener.url);
 * await broker.close();
 * await running.close();
 * ```
 */
export async function startListeners(
  broker: Broker,
  listeners: readonly ListenerOptions[],
  options: StartListenersOptions = {},
): Promise<RunningListeners> {
  const anonymous = listeners.map((l) => anonymousAllowed(l, options.passwordAuthentication ?? false));
  await broker.start();
  const started: Running[] = [];
  try {
    for (const [i, listener] of listeners.entries()) {
      started.push(await startOne(broker, listener, anonymous[i]!));
    }
  } catch (error) {
    await Promise.all(started.map((s) => s.close()));
    throw error;
  }
  for (const { bound } of started) {
    broker.logger.info(
      `listening on ${bound.url} (${bound.name}, anonymous ${bound.allowAnonymous ? "allowed" : "refused"})`,
    );
  }
  let closing: Promise<void> | undefined;
  return {
    listeners: started.map((s) => s.bound),
    close: () => closing ??= Promise.all(started.map((s) => s.close())).then(() => {}),
  };
}

function listenerName(listener: ListenerOptions): string {
  return listener.name ?? `${listener.type} listener`;
}

function urlHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

async function startOne(
  broker: Broker,
  listener: ListenerOptions,
  allowAnonymous: boolean,
): Promise<Running> {
  const name = listenerName(listener);
  const hostname = listener.hostname ?? "127.0.0.1";
  try {
    switch (listener.type) {
      case "tcp":
        return acceptLoop(
          broker,
          Deno.listen({ hostname, port: listener.port }),
          "tcp",
          name,
          allowAnonymous,
        );
      case "tls":
        if (listener.requireCertificate === true) {
          return await startClientCertificateTls(broker, listener, name, allowAnonymous);
        }
        return acceptLoop(
          broker,
          Deno.listenTls({ hostname, port: listener.port, cert: listener.cert, key: listener.key }),
          "tls",
          name,
          allowAnonymous,
        );
      case "ws":
      case "wss":
        return await serveWebSocket(broker, listener, name, allowAnonymous);
    }
  } catch (error) {
    if (error instanceof ListenerError) throw error;
    throw new ListenerError(
      `${name}: cannot listen on ${listener.type}://${urlHost(hostname)}:${listener.port}: ${
        (error as Error).message
      }`,
      { cause: error },
    );
  }
}

function remote(addr: Deno.Addr): string {
  return addr.transport === "tcp" || addr.transport === "udp"
    ? `${addr.hostname}:${addr.port}`
    : addr.transport;
}

/**
 * Where a TCP or TLS client came from. `remoteAddress` is built when something asks (authentication, a log line)
 * and not kept: as a string it cost 88 bytes per idle connection (bench/load_bench.ts "idle").
 */
class PeerInfo implements ConnectionInfo {
  readonly #addr: Deno.Addr;
  /** See {@linkcode ConnectionInfo.allowAnonymous}. */
  readonly allowAnonymous: boolean;

  constructor(addr: Deno.Addr, allowAnonymous: boolean) {
    this.#addr = addr;
    this.allowAnonymous = allowAnonymous;
  }

  /** See {@linkcode ConnectionInfo.remoteAddress}. */
  get remoteAddress(): string {
    return remote(this.#addr);
  }
}

/** After a failed accept (say, out of file descriptors), wait this long before the next, rather than spin. */
const ACCEPT_RETRY_MS = 100;

function acceptLoop(
  broker: Broker,
  listener: Deno.Listener,
  type: "tcp" | "tls",
  name: string,
  allowAnonymous: boolean,
): Running {
  const addr = listener.addr as Deno.NetAddr;
  let closed = false;
  const handshaking = new Set<Deno.Conn>();
  const close = (conn: Deno.Conn) => {
    try {
      conn.close();
    } catch {
      // already closed
    }
  };
  // The handshake is finished before the broker sees the connection, so a failed one is a line in the log rather
  // than an error from the connection, and one that never finishes is given up after connectTimeout. Deno 2.9
  // then drops the TlsConn but keeps its TCP socket open until the peer sends or closes (closing waits for the
  // handshake, denoland/deno#14547). The node:tls listener (requireCertificate) can close it, but moved 145 MB/s
  // where Deno.listenTls moved 251 MB/s (one 256 MiB upload over loopback, Deno 2.9.6, this 2-core machine).
  const secure = async (conn: Deno.TlsConn, info: ConnectionInfo) => {
    handshaking.add(conn);
    const timer = setTimeout(() => close(conn), broker.options.connectTimeout);
    try {
      await conn.handshake();
    } catch (error) {
      if (!closed) {
        broker.logger.info(`${name}: TLS handshake with ${info.remoteAddress} failed: ${String(error)}`);
      }
      close(conn);
      return;
    } finally {
      clearTimeout(timer);
      handshaking.delete(conn);
    }
    broker.handle(conn, info);
  };
  const accepting = (async () => {
    while (!closed) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (closed || error instanceof Deno.errors.BadResource) return;
        broker.logger.error(`${name}: accept failed: ${String(error)}`);
        await new Promise((resolve) => setTimeout(resolve, ACCEPT_RETRY_MS));
        continue;
      }
      const info = new PeerInfo(conn.remoteAddr, allowAnonymous);
      if (type === "tls") {
        secure(conn as Deno.TlsConn, info);
      } else {
        (conn as Deno.TcpConn).setNoDelay(true);
        broker.handle(conn, info);
      }
    }
  })();
  return {
    bound: {
      type,
      name,
      hostname: addr.hostname,
      port: addr.port,
      url: `${type}://${urlHost(addr.hostname)}:${addr.port}`,
      allowAnonymous,
    },
    async close() {
      closed = true;
      try {
        listener.close();
      } catch {
        // already closed
      }
      for (const conn of handshaking) close(conn);
      await accepting;
    },
  };
}

async function startClientCertificateTls(
  broker: Broker,
  listener: TlsListenerOptions,
  name: string,
  allowAnonymous: boolean,
): Promise<Running> {
  if (listener.ca === undefined) throw new ListenerError(`${name}: "requireCertificate" needs "ca"`);
  const useIdentity = listener.useIdentityAsUsername === true;
  const server = await listenTlsWithClientCertificates(
    {
      hostname: listener.hostname ?? "127.0.0.1",
      port: listener.port,
      cert: listener.cert,
      key: listener.key,
      ca: listener.ca,
      handshakeTimeout: broker.options.connectTimeout,
    },
    (stream, peer) => {
      const info: ConnectionInfo = useIdentity && peer.commonName !== undefined
        ? { remoteAddress: peer.remoteAddress, allowAnonymous, certificateCommonName: peer.commonName }
        : { remoteAddress: peer.remoteAddress, allowAnonymous };
      broker.handle(stream, info);
    },
    (error) => broker.logger.info(`${name}: TLS handshake failed: ${error.message}`),
  );
  const { hostname, port } = server.addr;
  return {
    bound: { type: "tls", name, hostname, port, url: `tls://${urlHost(hostname)}:${port}`, allowAnonymous },
    close: () => server.close(),
  };
}

async function serveWebSocket(
  broker: Broker,
  listener: WsListenerOptions | WssListenerOptions,
  name: string,
  allowAnonymous: boolean,
): Promise<Running> {
  const path = listener.path ?? DEFAULT_WEBSOCKET_PATH;
  const handler = (request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Response => {
    if (new URL(request.url).pathname !== path) return new Response("Not Found\n", { status: 404 });
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("MQTT over WebSocket needs a WebSocket upgrade\n", {
        status: 426,
        headers: { upgrade: "websocket" },
      });
    }
    const offered = (request.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim());
    const protocol = MQTT_SUBPROTOCOLS.find((p) => offered.includes(p));
    if (protocol === undefined) {
      return new Response(`the WebSocket subprotocol "mqtt" is required [MQTT-6.0.0-3]\n`, { status: 400 });
    }
    // Read before the upgrade: afterwards Deno says "Request closed".
    const remoteAddress = remote(info.remoteAddr);
    const { socket, response } = Deno.upgradeWebSocket(request, { protocol });
    broker.handle(new WebSocketByteStream(socket), {
      remoteAddress,
      allowAnonymous,
    });
    return response;
  };
  const listening = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    hostname: listener.hostname ?? "127.0.0.1",
    port: listener.port,
    ...(listener.type === "wss" ? { cert: listener.cert, key: listener.key } : {}),
    onListen: (addr) => listening.resolve(addr),
    onError: (error) => {
      broker.logger.error(`${name}: ${String(error)}`);
      return new Response("Internal Server Error\n", { status: 500 });
    },
  }, handler);
  const addr = await listening.promise;
  const url = `${listener.type}://${urlHost(addr.hostname)}:${addr.port}${path}`;
  return {
    bound: { type: listener.type, name, hostname: addr.hostname, port: addr.port, path, url, allowAnonymous },
    async close() {
      await server.shutdown();
    },
  };
}
