/**
 * Deno's floor for idle connections: the least a Deno TCP server can do per MQTT connection. It accepts, turns
 * Nagle off, keeps one read pending on a 256-byte buffer (ours keeps the same size while a connection is idle)
 * and answers every read with a CONNACK (0x20 0x02 0x00 0x00). No parsing, no session, no keep-alive.
 *
 * With `--net` it does the same on `node:net` instead of `Deno.Conn`, the way `node:net` is cheapest: no read
 * pending while idle (the socket's `readable` event reads what arrived), so no buffer, promise or suspended
 * function per idle connection.
 *
 * The load benchmark runs it as the `deno-floor` and `deno-floor-net` peers of the idle scenarios, with the V8
 * flags of the `broker` task, so that "how close are we to what Deno itself costs" is measured in the same run
 * as our broker.
 *
 * Run alone: `deno run --allow-net bench/_deno_floor.ts [--net] [LISTENERS]` (prints `listening on
 * 127.0.0.1:PORT` for each of LISTENERS listeners, default 1: the 50,000-connection scenario spreads its
 * connections over several ports).
 *
 * @module
 */

import type { Socket } from "node:net";

const CONNACK = Uint8Array.of(0x20, 2, 0, 0);
const READ_BUFFER = 256;

async function serve(conn: Deno.TcpConn): Promise<void> {
  const buffer = new Uint8Array(READ_BUFFER);
  try {
    conn.setNoDelay(true);
    while ((await conn.read(buffer)) !== null) await conn.write(CONNACK);
  } catch {
    // reset by the peer
  }
  try {
    conn.close();
  } catch {
    // already closed
  }
}

async function accept(listener: Deno.TcpListener): Promise<void> {
  for await (const conn of listener) serve(conn);
}

/** The `node:net` floor: a shared `readable` listener, no read pending while idle. */
function onReadable(this: Socket): void {
  while (this.read() !== null) this.write(CONNACK);
}

function ignore(): void {}

/** node:net is imported only here: loading it costs about 5 MiB of RSS, which the Deno.Conn floor must not pay. */
async function listenNet(): Promise<number> {
  const { createServer } = await import("node:net");
  const server = createServer({ noDelay: true }, (socket: Socket) => {
    socket.on("readable", onReadable);
    socket.on("error", ignore);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port));
  });
}

if (import.meta.main) {
  const net = Deno.args.includes("--net");
  const count = Math.max(1, Number(Deno.args.find((arg) => arg !== "--net") ?? 1));
  Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
  for (let i = 0; i < count; i++) {
    if (net) {
      console.log(`listening on 127.0.0.1:${await listenNet()}`);
    } else {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      console.log(`listening on 127.0.0.1:${listener.addr.port}`);
      accept(listener);
    }
  }
}
