/**
 * The one accept loop per transport, used by the listeners a config starts and by {@linkcode Broker.listen}
 * alike: it accepts TCP (or TLS) connections, finishes what comes before MQTT (the TLS handshake, the WebSocket
 * upgrade) within the connect timeout, and hands the byte stream to {@linkcode Broker.handle}.
 *
 * @module
 */

import type { Broker } from "../broker.ts";
import type { ConnectionInfo } from "../connection.ts";
import type { ByteStream } from "../../transport/transport.ts";
import type { NetListenOptions } from "../../transport/net.ts";
import type { NodeSocketStream } from "../../transport/node_socket.ts";

/** What an accept loop serves. */
export interface AcceptOptions {
  /** `tcp` and `tls`: MQTT straight on the stream; `ws` and `wss`: after a WebSocket upgrade on `path`. */
  readonly type: "tcp" | "tls" | "ws" | "wss";
  /** Names the listener in the log. */
  readonly name: string;
  /** Whether clients without a user name get in. */
  readonly allowAnonymous: boolean;
  /** `ws` and `wss`: the URL path served. */
  readonly path?: string;
}

/** A running accept loop. */
export interface AcceptLoop {
  /** Where the first listener was bound. */
  readonly addr: Deno.NetAddr;
  /**
   * Closes the listener and accepts from `open()` from now on (bound to the same address, say with a new
   * certificate); connections already accepted stay. Should `open` throw, `restore` opens a listener like the old
   * one in its place and the error is rethrown. New connections are refused for the moment in between.
   */
  replace(open: () => Deno.Listener, restore: () => Deno.Listener): Promise<void>;
  /** Stops accepting, aborts handshakes in progress and resolves when the loop has ended. */
  close(): Promise<void>;
}

/** After a failed accept (say, out of file descriptors), wait this long before the next, rather than spin. */
const ACCEPT_RETRY_MS = 100;

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
    return remoteAddress(this.#addr);
  }
}

/** Where a plain TCP client came from: like {@linkcode PeerInfo}, read from the socket when asked. */
class SocketPeerInfo implements ConnectionInfo {
  readonly #stream: NodeSocketStream;
  /** See {@linkcode ConnectionInfo.allowAnonymous}. */
  readonly allowAnonymous: boolean;

  constructor(stream: NodeSocketStream, allowAnonymous: boolean) {
    this.#stream = stream;
    this.allowAnonymous = allowAnonymous;
  }

  /** See {@linkcode ConnectionInfo.remoteAddress}. */
  get remoteAddress(): string {
    return this.#stream.remoteAddress;
  }
}

/** `host:port` of a network address. */
export function remoteAddress(addr: Deno.Addr): string {
  return addr.transport === "tcp" || addr.transport === "udp"
    ? `${addr.hostname}:${addr.port}`
    : addr.transport;
}

function closeQuietly(conn: ByteStream): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** How long {@linkcode AcceptLoop.replace} tries to bind while the closed listener still holds the port. */
const REBIND_MS = 1000;

/**
 * The WebSocket upgrade, loaded by the first WebSocket listener rather than at start: a broker without one saves
 * the memory of its modules (bench/results/2026-12-07-h4.md).
 */
let websocketUpgrade: Promise<typeof import("../../transport/websocket_upgrade.ts")> | undefined;

/** `open()`, tried again while the address is still held by the listener just closed (Deno frees it a turn later). */
async function bind(open: () => Deno.Listener): Promise<Deno.Listener> {
  const deadline = performance.now() + REBIND_MS;
  for (;;) {
    try {
      return open();
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse) || performance.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

/** Accepts connections from `listener` for `broker` until closed. */
export function acceptLoop(broker: Broker, listener: Deno.Listener, options: AcceptOptions): AcceptLoop {
  const { type, name, allowAnonymous } = options;
  const secure = type === "tls" || type === "wss";
  const websocket = type === "ws" || type === "wss";
  const upgrading = websocket
    ? websocketUpgrade ??= import("../../transport/websocket_upgrade.ts")
    : undefined;
  let current = listener;
  let closed = false;
  /** Set while {@linkcode AcceptLoop.replace} binds the next listener. */
  let swapping: Promise<void> | undefined;
  /** Connections still before MQTT (TLS handshake, WebSocket upgrade). */
  const preparing = new Set<Deno.Conn>();
  // The handshake and the upgrade are finished before the broker sees the connection, so a failed one is a line in
  // the log rather than an error from the connection, and one that never finishes is given up after
  // connectTimeout. Deno 2.9 then drops the TlsConn but keeps its TCP socket open until the peer sends or closes
  // (closing waits for the handshake, denoland/deno#14547). The node:tls listener (requireCertificate) can close
  // it, but moved 145 MB/s where Deno.listenTls moved 251 MB/s (one 256 MiB upload over loopback, Deno 2.9.6).
  const prepare = async (conn: Deno.Conn, info: ConnectionInfo) => {
    preparing.add(conn);
    const timer = setTimeout(() => closeQuietly(conn), broker.options.connectTimeout);
    let stream: ByteStream = conn;
    try {
      if (secure) {
        try {
          await (conn as Deno.TlsConn).handshake();
        } catch (error) {
          if (!closed) {
            broker.logger.info(`${name}: TLS handshake with ${info.remoteAddress} failed: ${String(error)}`, {
              event: "tls.handshake_failed",
              listener: name,
              remote: info.remoteAddress,
            });
          }
          closeQuietly(conn);
          return;
        }
      }
      if (upgrading !== undefined) {
        const address = info.remoteAddress;
        const { upgradeWebSocket } = await upgrading;
        const upgrade = await upgradeWebSocket(conn, {
          path: options.path ?? "/mqtt",
          maxFrameBytes: broker.options.maxPacketSize,
          onRefuse: (code, reason) =>
            broker.logger.info(`${name}: closed WebSocket of ${address} (${code}): ${reason}`),
        });
        if (upgrade.kind === "refused") {
          if (!closed) {
            broker.logger.info(
              `${name}: refused WebSocket from ${address}: ${
                upgrade.status === 0 ? "" : `${upgrade.status} `
              }${upgrade.reason}`,
            );
          }
          return;
        }
        stream = upgrade.stream;
      }
    } finally {
      clearTimeout(timer);
      preparing.delete(conn);
    }
    broker.serve(stream, info);
  };
  const accepting = (async () => {
    while (!closed) {
      const from = current;
      let conn: Deno.Conn;
      try {
        conn = await from.accept();
      } catch (error) {
        if (swapping !== undefined) await swapping;
        if (closed) return;
        if (from !== current) continue; // replaced: accept from the new listener
        if (error instanceof Deno.errors.BadResource) return;
        broker.logger.error(`${name}: accept failed: ${String(error)}`);
        await new Promise((resolve) => setTimeout(resolve, ACCEPT_RETRY_MS));
        continue;
      }
      const info = new PeerInfo(conn.remoteAddr, allowAnonymous);
      if (!secure) (conn as Deno.TcpConn).setNoDelay(true);
      if (!secure && !websocket) {
        broker.serve(conn, info);
      } else if (preparing.size >= broker.options.maxConnections) {
        // Handshakes are not connections yet, so maxConnections would not bound them otherwise.
        broker.logger.warn(
          `${name}: connection from ${info.remoteAddress} refused: too many handshakes in progress`,
        );
        closeQuietly(conn);
      } else {
        prepare(conn, info);
      }
    }
  })();
  return {
    addr: listener.addr as Deno.NetAddr,
    async replace(open: () => Deno.Listener, restore: () => Deno.Listener): Promise<void> {
      if (closed) throw new Error(`${name} is closed`);
      const swapped = Promise.withResolvers<void>();
      swapping = swapped.promise;
      const previous = current;
      try {
        previous.close();
      } catch {
        // already closed
      }
      try {
        current = await bind(open);
      } catch (error) {
        try {
          current = await bind(restore);
        } catch {
          closed = true; // neither could bind: the loop ends
        }
        throw error;
      } finally {
        swapping = undefined;
        swapped.resolve();
      }
    },
    async close(): Promise<void> {
      closed = true;
      try {
        current.close();
      } catch {
        // already closed
      }
      for (const conn of preparing) closeQuietly(conn);
      await accepting;
    },
  };
}

/**
 * Serves MQTT over plain TCP on `node:net` (`transport/net.ts`) rather than `Deno.listen`: idle connections then
 * hold no read pending, 5.0 instead of 6.2 KiB marginal RSS per idle connection, but 10 µs more CPU per connect
 * and 7-22% fewer messages per broker CPU-second in fan-in, fan-out and QoS 1 (bench/load_bench.ts, peer
 * `ours-net`; README, "Idle connections"). So it is not the default: the listeners use {@linkcode acceptLoop}.
 * Its `replace` rejects (plain TCP has no certificate to swap).
 */
export async function acceptTcp(
  broker: Broker,
  address: NetListenOptions,
  options: Pick<AcceptOptions, "name" | "allowAnonymous">,
): Promise<AcceptLoop> {
  const { name, allowAnonymous } = options;
  // node:net is loaded only by a listener that uses it.
  const { listenNet } = await import("../../transport/net.ts");
  const server = await listenNet(address, (stream) => {
    broker.serve(stream, new SocketPeerInfo(stream, allowAnonymous));
  });
  let closed = false;
  return {
    addr: server.addr,
    replace(): Promise<void> {
      return Promise.reject(new Error(`${name} is plain TCP: there is no certificate to replace`));
    },
    close(): Promise<void> {
      if (!closed) {
        closed = true;
        server.close();
      }
      return Promise.resolve();
    },
  };
}
