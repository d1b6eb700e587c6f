/**
 * Listeners: MQTT over TCP, TLS, WebSocket and secure WebSocket, each feeding {@linkcode Broker.handle}. Also
 * the rule that keeps a fresh install safe: a listener reachable from the network without any authentication
 * refuses to start unless it says `allowAnonymous` (as Mosquitto 2 does).
 *
 * @module
 */

import type { Authenticator, AuthResult, ClientIdentity, ConnectInfo } from "../auth/auth.ts";
import type { Broker } from "../broker.ts";
import type { ConnectionInfo } from "../connection.ts";
import { countTlsHandshakeFailure } from "../counters.ts";
import { type AcceptLoop, acceptLoop } from "./accept_loop.ts";

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
   * Bind with `SO_REUSEPORT`, so several broker processes listen on one port and Linux spreads the incoming
   * connections over them (README: Cluster). Needs Deno's `--unstable-net` (`deno.json` turns it on for the
   * tasks); not for tls listeners that ask for client certificates.
   *
   * @default {false}
   */
  reusePort?: boolean;
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
  /** The file `cert` was read from: {@linkcode RunningListeners.reloadCertificates} reads it again. */
  certFile?: string;
  /** The file `key` was read from: {@linkcode RunningListeners.reloadCertificates} reads it again. */
  keyFile?: string;
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
   * Reads the certificate and key files of every `tls` and `wss` listener again (on SIGHUP) and serves new
   * connections with them; connections already open keep theirs. A listener whose files cannot be read or do
   * not make a valid pair keeps its certificate. Each outcome is logged and returned; listeners given PEM text
   * without `certFile`/`keyFile`, and `requireCertificate` listeners, are left alone.
   */
  reloadCertificates(): Promise<CertificateReload[]>;
  /**
   * Stops every listener. Call it after `broker.close()`: closing a WebSocket server drops its clients at once
   * (close code 1001), before the broker could send them DISCONNECT and handle their wills.
   */
  close(): Promise<void>;
}

/** What {@linkcode RunningListeners.reloadCertificates} did for one listener. */
export type CertificateReload =
  /** New connections get the certificate read now. */
  | { readonly name: string; readonly kind: "reloaded" }
  /** The previous certificate stays; `reason` says why. */
  | { readonly name: string; readonly kind: "kept"; readonly reason: string };

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
    // A reload re-checks connected clients: a certificate's CN stands, others ask the inner authenticator.
    stillValid(client: ClientIdentity, cn?: string): boolean {
      if (cn !== undefined && client.username === cn) return true;
      return inner.stillValid?.(client, cn) ?? true;
    },
  };
}

interface Running {
  readonly bound: BoundListener;
  close(): Promise<void>;
  /** tls and wss listeners with certificate files. */
  reloadCertificate?(): Promise<CertificateReload>;
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
      { event: "listener.started", listener: bound.name, url: bound.url },
    );
  }
  let closing: Promise<void> | undefined;
  return {
    listeners: started.map((s) => s.bound),
    async reloadCertificates(): Promise<CertificateReload[]> {
      const results: CertificateReload[] = [];
      for (const s of started) {
        if (s.reloadCertificate === undefined) continue;
        const result = await s.reloadCertificate();
        if (result.kind === "reloaded") {
          broker.logger.info(`${result.name}: reloaded its certificate`, {
            event: "config.reloaded",
            listener: result.name,
          });
        } else {
          broker.logger.error(`${result.name}: kept the previous certificate: ${result.reason}`, {
            event: "config.reload_failed",
            listener: result.name,
          });
        }
        results.push(result);
      }
      return results;
    },
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
    if (listener.type === "tls" && listener.requireCertificate === true) {
      return await startClientCertificateTls(broker, listener, name, allowAnonymous);
    }
    const path = listener.type === "ws" || listener.type === "wss"
      ? listener.path ?? DEFAULT_WEBSOCKET_PATH
      : undefined;
    const reusePort = listener.reusePort === true;
    // Deno ends the process (not a catchable error) when an unstable option is used without its flag.
    if (reusePort && typeof (Deno as { listenDatagram?: unknown }).listenDatagram !== "function") {
      throw new ListenerError(
        `${name}: reusePort needs Deno's --unstable-net (deno.json's "unstable": ["net"], which \`deno task broker\` reads)`,
      );
    }
    const open = (port: number, certificate?: ServerCertificate): Deno.Listener =>
      certificate === undefined
        ? Deno.listen(reusePort ? { hostname, port, reusePort } : { hostname, port })
        : Deno.listenTls({
          hostname,
          port,
          cert: certificate.cert,
          key: certificate.key,
          ...(reusePort ? { reusePort } : {}),
        });
    const secure = listener.type === "tls" || listener.type === "wss" ? listener : undefined;
    const loop = acceptLoop(broker, open(listener.port, secure), {
      type: listener.type,
      name,
      allowAnonymous,
      ...(path === undefined ? {} : { path }),
    });
    const { hostname: host, port } = loop.addr;
    const bound: BoundListener = {
      type: listener.type,
      name,
      hostname: host,
      port,
      url: `${listener.type}://${urlHost(host)}:${port}${path ?? ""}`,
      allowAnonymous,
      ...(path === undefined ? {} : { path }),
    };
    if (secure === undefined || secure.certFile === undefined || secure.keyFile === undefined) {
      return { bound, close: () => loop.close() };
    }
    let certificate: ServerCertificate = secure;
    return {
      bound,
      close: () => loop.close(),
      reloadCertificate: async () => {
        const next = await readCertificate(secure.certFile!, secure.keyFile!);
        if (typeof next === "string") return { name, kind: "kept", reason: next };
        const problem = await swapCertificate(loop, open, port, next, certificate);
        if (problem !== undefined) return { name, kind: "kept", reason: problem };
        certificate = next;
        return { name, kind: "reloaded" };
      },
    };
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

/** The certificate and key files read, or why they cannot be. */
async function readCertificate(certFile: string, keyFile: string): Promise<ServerCertificate | string> {
  try {
    return {
      cert: await Deno.readTextFile(certFile),
      key: await Deno.readTextFile(keyFile),
      certFile,
      keyFile,
    };
  } catch (error) {
    return `cannot read ${String((error as Error).message)}`;
  }
}

/**
 * Serves `next` on `loop`'s port instead of `previous`; undefined when done, else why not. The pair is tried on
 * a throw-away listener first (Deno checks there that the key matches the certificate), so a bad file never
 * takes the listener down.
 */
async function swapCertificate(
  loop: AcceptLoop,
  open: (port: number, certificate: ServerCertificate) => Deno.Listener,
  port: number,
  next: ServerCertificate,
  previous: ServerCertificate,
): Promise<string | undefined> {
  try {
    open(0, next).close();
  } catch (error) {
    return `the new certificate and key cannot be used: ${(error as Error).message}`;
  }
  try {
    await loop.replace(() => open(port, next), () => open(port, previous));
    return undefined;
  } catch (error) {
    return `cannot listen with the new certificate: ${(error as Error).message}`;
  }
}

async function startClientCertificateTls(
  broker: Broker,
  listener: TlsListenerOptions,
  name: string,
  allowAnonymous: boolean,
): Promise<Running> {
  if (listener.ca === undefined) throw new ListenerError(`${name}: "requireCertificate" needs "ca"`);
  const useIdentity = listener.useIdentityAsUsername === true;
  // Loaded only for this kind of listener (its node:tls is loaded on first use even so).
  const { listenTlsWithClientCertificates } = await import("../../transport/tls.ts");
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
      broker.serve(stream, info);
    },
    (error) => {
      countTlsHandshakeFailure(broker.counters, name);
      broker.logger.info(`${name}: TLS handshake failed: ${error.message}`, {
        event: "tls.handshake_failed",
        listener: name,
      });
    },
  );
  const { hostname, port } = server.addr;
  return {
    bound: { type: "tls", name, hostname, port, url: `tls://${urlHost(hostname)}:${port}`, allowAnonymous },
    close: () => server.close(),
  };
}
