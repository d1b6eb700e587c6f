/**
 * A TCP proxy a test can cut: every connection through it can be dropped at once, and the server-to-client
 * direction can be held back (bytes dropped), to lose acknowledgements on purpose.
 *
 * @module
 */

interface Pair {
  readonly client: Deno.Conn;
  readonly server: Deno.Conn;
  readonly done: Promise<void>;
}

/** A proxy from a loopback port to `127.0.0.1:targetPort`. */
export class CuttableProxy {
  #listener: Deno.Listener;
  #target: number;
  #pairs = new Set<Pair>();
  #loop: Promise<void>;
  #closed = false;
  /** While true, bytes from the server are dropped. */
  holdDownstream = false;
  /** Connections made through the proxy so far. */
  connections = 0;

  constructor(targetPort: number) {
    this.#target = targetPort;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#loop = this.#acceptLoop();
  }

  /** The proxy's port. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  async #acceptLoop(): Promise<void> {
    try {
      for await (const client of this.#listener) {
        let server: Deno.Conn;
        try {
          server = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
        } catch {
          client.close();
          continue;
        }
        this.connections++;
        const pair: Pair = {
          client,
          server,
          done: Promise.all([
            this.#pump(client, server, false),
            this.#pump(server, client, true),
          ]).then(() => {}),
        };
        this.#pairs.add(pair);
        pair.done.then(() => this.#pairs.delete(pair));
      }
    } catch {
      // listener closed
    }
  }

  async #pump(from: Deno.Conn, to: Deno.Conn, downstream: boolean): Promise<void> {
    const buffer = new Uint8Array(65_536);
    try {
      for (;;) {
        const n = await from.read(buffer);
        if (n === null) break;
        if (downstream && this.holdDownstream) continue;
        let offset = 0;
        while (offset < n) offset += await to.write(buffer.subarray(offset, n));
      }
    } catch {
      // one side closed
    }
    closeQuietly(from);
    closeQuietly(to);
  }

  /** Drops every connection through the proxy (both sides see the connection close). */
  async cut(): Promise<void> {
    const pairs = [...this.#pairs];
    for (const pair of pairs) {
      closeQuietly(pair.client);
      closeQuietly(pair.server);
    }
    await Promise.all(pairs.map((pair) => pair.done));
  }

  /** Cuts every connection and stops listening. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#listener.close();
    }
    await this.#loop;
    await this.cut();
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
