/**
 * TLS that asks for client certificates. `Deno.listenTls` (Deno 2.9) can neither request nor verify a client
 * certificate nor show the peer's (denoland/deno#26825), while `node:tls` servers honour `requestCert` and `ca`
 * and fill `getPeerCertificate()` since denoland/deno#33439. So a listener that requires certificates uses
 * `node:tls`, adapted to a {@linkcode ByteStream} by `node_socket.ts`; every other TLS listener uses
 * `Deno.listenTls`, which is faster (DESIGN.md, "Rules that make it fast").
 *
 * @module
 */

import type { Socket } from "node:net";
import type { Server, TLSSocket } from "node:tls";
import { NodeSocketStream } from "./node_socket.ts";
import type { ByteStream } from "./transport.ts";

/** Options for {@linkcode listenTlsWithClientCertificates}. */
export interface ClientCertificateTlsOptions {
  /** Address to bind. @default {"127.0.0.1"} */
  hostname?: string;
  /** 0 picks a free port. */
  port: number;
  /** Server certificate chain, PEM. */
  cert: string;
  /** Server private key, PEM. */
  key: string;
  /** The CA certificates (PEM) that client certificates must chain to. */
  ca: string;
  /** A handshake not finished after this many ms is aborted. @default {10000} */
  handshakeTimeout?: number;
}

/** What a verified client presented. */
export interface TlsPeer {
  /** e.g. "127.0.0.1:53422" */
  readonly remoteAddress: string;
  /** The subject CN of the client's verified certificate, if it has one. */
  readonly commonName?: string;
}

/** A running {@linkcode listenTlsWithClientCertificates} server. */
export interface ClientCertificateTlsServer {
  /** Where it is bound. */
  readonly addr: Deno.NetAddr;
  /** Stops accepting; resolves once every connection it accepted has closed. */
  close(): Promise<void>;
}

/**
 * Listens for TLS connections that must present a client certificate signed by `ca`; a client without one, or
 * with one that does not verify, fails the handshake and never reaches `onConnection`.
 */
export async function listenTlsWithClientCertificates(
  options: ClientCertificateTlsOptions,
  onConnection: (stream: ByteStream, peer: TlsPeer) => void,
  onHandshakeError?: (error: Error) => void,
): Promise<ClientCertificateTlsServer> {
  // Sockets still in the handshake, by remote address. In Deno, neither `handshakeTimeout` nor destroying the
  // TLS socket closes the TCP connection of a peer that never finishes the handshake (the close waits for the
  // handshake); destroying the raw socket does.
  const handshaking = new Map<string, { raw: Socket; timer: ReturnType<typeof setTimeout> }>();
  const handshakeTimeout = options.handshakeTimeout ?? 10_000;
  // Loaded here, not at the top: node:tls (and the node:net under it) cost every broker about 5 MiB of RSS at
  // start (bench/load_bench.ts "idle", RSS with no client), and only this listener needs them.
  const { createServer } = await import("node:tls");
  const server: Server = createServer({
    cert: options.cert,
    key: options.key,
    ca: options.ca,
    requestCert: true,
    rejectUnauthorized: true,
  }, (socket: TLSSocket) => {
    const remoteAddress = `${socket.remoteAddress}:${socket.remotePort}`;
    const pending = handshaking.get(remoteAddress);
    if (pending !== undefined) {
      clearTimeout(pending.timer);
      handshaking.delete(remoteAddress);
    }
    if (!socket.authorized) {
      // rejectUnauthorized already refuses these; kept so a regression cannot let one through.
      socket.destroy();
      return;
    }
    const cn = socket.getPeerCertificate()?.subject?.CN;
    const commonName = typeof cn === "string" ? cn : Array.isArray(cn) ? cn[0] : undefined;
    onConnection(
      new NodeSocketStream(socket),
      commonName === undefined ? { remoteAddress } : { remoteAddress, commonName },
    );
  });
  server.on("connection", (raw: Socket) => {
    const key = `${raw.remoteAddress}:${raw.remotePort}`;
    const timer = setTimeout(() => {
      handshaking.delete(key);
      onHandshakeError?.(new Error(`no TLS handshake from ${key} within ${handshakeTimeout} ms`));
      raw.destroy();
    }, handshakeTimeout);
    handshaking.set(key, { raw, timer });
    raw.once("close", () => {
      if (handshaking.get(key)?.raw !== raw) return;
      clearTimeout(timer);
      handshaking.delete(key);
    });
  });
  server.on("tlsClientError", (error: Error) => onHandshakeError?.(error));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("TLS server has no address");
  return {
    addr: { transport: "tcp", hostname: address.address, port: address.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const { raw, timer } of handshaking.values()) {
          clearTimeout(timer);
          raw.destroy();
        }
        handshaking.clear();
      }),
  };
}
