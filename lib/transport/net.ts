/**
 * TCP listeners on `node:net`, whose idle connections hold no read pending: a connection polls its
 * {@linkcode NodeSocketStream} and the socket's `readable` event starts its read loop again. Under Deno 2.9 an
 * idle connection then costs about 1.2 KiB less than on `Deno.Conn` (whose pending read pins its buffer, op and
 * promise), but each read allocates a buffer and connects and throughput cost more CPU (README, "Idle
 * connections"; bench/load_bench.ts, peer `ours-net`). `node:net` is loaded on first use, not at start (it
 * costs about 5 MiB of RSS).
 *
 * @module
 */

import type { Server, Socket } from "node:net";
import { NodeSocketStream } from "./node_socket.ts";

/** Where to listen. */
export interface NetListenOptions {
  /** Address to bind. @default {"127.0.0.1"} */
  hostname?: string;
  /** 0 picks a free port. */
  port: number;
}

/** A running {@linkcode listenNet} server. */
export interface NetListener {
  /** Where it is bound. */
  readonly addr: Deno.NetAddr;
  /** Stops accepting; connections already accepted stay open. */
  close(): void;
}

/** Accept errors (out of file descriptors) are retried by the runtime; they must not end the process. */
function ignore(): void {}

/**
 * Listens for TCP connections and hands each to `onConnection` as a {@linkcode NodeSocketStream}, Nagle off.
 * Rejects when the address cannot be bound.
 */
export async function listenNet(
  options: NetListenOptions,
  onConnection: (stream: NodeSocketStream) => void,
): Promise<NetListener> {
  const { createServer } = await import("node:net");
  const server: Server = createServer({ noDelay: true }, (socket: Socket) => {
    onConnection(new NodeSocketStream(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", ignore);
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("TCP server has no address");
  return {
    addr: { transport: "tcp", hostname: address.address, port: address.port },
    close: () => server.close(),
  };
}
