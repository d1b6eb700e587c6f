/**
 * Starts a real `redis-server` for the cluster tests: in a temporary directory, with AOF on (`appendfsync
 * everysec` by default, as recommended for production), reachable on a Unix socket (no TCP port races) or, when a test needs
 * a `redis://` URL, on a free loopback port. It can be killed with SIGKILL and started again from its AOF or
 * empty, and is always stopped and its directory removed.
 *
 * Tests that need it register with `testIf(name, [redisUnavailable()], fn)` and skip, saying why, when the binary
 * or the permission to run it is missing.
 *
 * @module
 */

/** The binary; Debian's package `redis-server` installs it here. */
export const REDIS_SERVER = "/usr/bin/redis-server";

/** How long to wait for a started `redis-server` to answer PING. */
const START_WAIT_MS = 10_000;

/** Why a `redis-server` cannot be started here, or undefined when it can. */
export function redisUnavailable(): string | undefined {
  if (Deno.permissions.querySync({ name: "run", command: REDIS_SERVER }).state !== "granted") {
    return "needs --allow-run";
  }
  for (const name of ["read", "write"] as const) {
    if (Deno.permissions.querySync({ name }).state !== "granted") return `needs --allow-${name}`;
  }
  try {
    Deno.statSync(REDIS_SERVER);
  } catch {
    return `${REDIS_SERVER} is not installed (Debian package redis-server)`;
  }
  return undefined;
}

/** How to start it. */
export interface RedisServerOptions {
  /**
   * Also listen on a free loopback TCP port (for a `redis://` URL); otherwise the Unix socket only.
   * @default {false}
   */
  readonly tcp?: boolean;
  /**
   * The AOF fsync policy. `everysec` (production's) writes the AOF once a second, and while an fsync is still
   * running it may postpone writes by up to 2 s, acknowledged ones included: a SIGKILL then loses them. Tests that
   * check what survives a SIGKILL use `always`.
   *
   * @default {"everysec"}
   */
  readonly appendfsync?: "everysec" | "always";
  /** Start as a replica of the server listening on this loopback port. */
  readonly replicaOf?: number;
}

/** A running `redis-server`; see the module doc. */
export class RedisServer {
  /** The temporary directory holding the socket, the AOF and the log. */
  readonly dir: string;
  /** The Unix socket path. */
  readonly socket: string;
  /** The loopback TCP port, when started with `tcp: true`. */
  readonly port: number | undefined;
  readonly #appendfsync: "everysec" | "always";
  readonly #replicaOf: number | undefined;
  #child: Deno.ChildProcess | undefined;
  #status: Promise<Deno.CommandStatus> | undefined;

  private constructor(
    dir: string,
    port: number | undefined,
    appendfsync: "everysec" | "always",
    replicaOf: number | undefined,
  ) {
    this.dir = dir;
    this.#appendfsync = appendfsync;
    this.#replicaOf = replicaOf;
    this.socket = `${dir}/r.sock`;
    this.port = port;
  }

  /** Starts a new server and waits until it answers PING. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = await Deno.makeTempDir({ prefix: "mqtt-redis-" });
    const server = new RedisServer(
      dir,
      options.tcp === true ? freePort() : undefined,
      options.appendfsync ?? "everysec",
      options.replicaOf,
    );
    try {
      await server.#spawn();
    } catch (e) {
      await server.stop();
      throw e;
    }
    return server;
  }

  /** `unix:///…/r.sock`, or `redis://127.0.0.1:PORT` when it listens on TCP. */
  get url(): string {
    return this.port === undefined ? `unix://${this.socket}` : `redis://127.0.0.1:${this.port}`;
  }

  /** Its process id while it runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async #spawn(): Promise<void> {
    const args = [
      "--port",
      String(this.port ?? 0),
      "--bind",
      "127.0.0.1",
      "--unixsocket",
      this.socket,
      "--unixsocketperm",
      "700",
      "--save",
      "",
      "--appendonly",
      "yes",
      "--appendfsync",
      this.#appendfsync,
      "--dir",
      this.dir,
      "--logfile",
      `${this.dir}/redis.log`,
      "--daemonize",
      "no",
      ...(this.#replicaOf === undefined ? [] : ["--replicaof", "127.0.0.1", String(this.#replicaOf)]),
    ];
    const child = new Deno.Command(REDIS_SERVER, { args, stdin: "null", stdout: "null", stderr: "null" })
      .spawn();
    this.#child = child;
    this.#status = child.status;
    let exited = false;
    this.#status.then(() => exited = true);
    const deadline = Date.now() + START_WAIT_MS;
    while (true) {
      if (await this.#answers()) return;
      if (exited || Date.now() > deadline) {
        throw new Error(`redis-server ${exited ? "exited" : "did not answer"}:\n${await this.log()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async #answers(): Promise<boolean> {
    try {
      return await this.command("PING") === "PONG";
    } catch {
      return false;
    }
  }

  /** The server's log so far (for failure messages). */
  async log(): Promise<string> {
    try {
      return await Deno.readTextFile(`${this.dir}/redis.log`);
    } catch {
      return "(no log)";
    }
  }

  /**
   * Sends one command over the socket and returns its reply: a string for simple and bulk strings, a number for
   * integers, null for nil, an array for arrays; an error reply throws. For assertions and fault set-up only.
   */
  command(...args: readonly (string | number)[]): Promise<RespValue> {
    return sendCommand(() => Deno.connect({ transport: "unix", path: this.socket }), args);
  }

  /** SIGKILL, as a crash: whatever the AOF holds stays in `dir`. Waits for the process to exit. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await this.#status;
    this.#child = undefined;
    this.#status = undefined;
  }

  /** SIGSTOP: the server stops answering but keeps its connections (a hung Redis). */
  pause(): void {
    this.#child?.kill("SIGSTOP");
  }

  /** SIGCONT after `pause()`. */
  resume(): void {
    this.#child?.kill("SIGCONT");
  }

  /**
   * Starts the server again (killing it first if it runs) on the same socket and port: from its AOF, or empty
   * (`empty: true`, as a Redis that lost its data).
   */
  async restart(options: { readonly empty?: boolean } = {}): Promise<void> {
    await this.kill();
    if (options.empty === true) {
      for await (const entry of Deno.readDir(this.dir)) {
        if (entry.name !== "redis.log") await Deno.remove(`${this.dir}/${entry.name}`, { recursive: true });
      }
    }
    await this.#spawn();
  }

  /** Kills the server and removes its directory; safe to call twice. */
  async stop(): Promise<void> {
    await this.kill();
    try {
      await Deno.remove(this.dir, { recursive: true });
    } catch {
      // already removed
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Runs `body` with a fresh server; the server is always stopped and its directory removed. */
export async function withRedis(
  body: (redis: RedisServer) => Promise<void>,
  options: RedisServerOptions = {},
): Promise<void> {
  const redis = await RedisServer.start(options);
  try {
    await body(redis);
  } finally {
    await redis.stop();
  }
}

/**
 * A Redis Sentinel (`redis-server --sentinel`) watching one {@linkcode RedisServer} started with `tcp: true`, as
 * master `mymaster`; it declares the master down after 500 ms.
 */
export class RedisSentinel {
  /** Its loopback TCP port. */
  readonly port: number;
  readonly #child: Deno.ChildProcess;
  readonly #status: Promise<Deno.CommandStatus>;

  private constructor(port: number, child: Deno.ChildProcess) {
    this.port = port;
    this.#child = child;
    this.#status = child.status;
  }

  /** Starts one watching `master`; it runs in the master's directory. */
  static async start(master: RedisServer): Promise<RedisSentinel> {
    if (master.port === undefined) throw new Error("a Sentinel needs a master started with tcp: true");
    const port = freePort();
    const config = `${master.dir}/sentinel-${port}.conf`;
    await Deno.writeTextFile(
      config,
      [
        `port ${port}`,
        "bind 127.0.0.1",
        `dir ${master.dir}`,
        `logfile ${master.dir}/sentinel-${port}.log`,
        `sentinel monitor mymaster 127.0.0.1 ${master.port} 1`,
        "sentinel down-after-milliseconds mymaster 500",
        "sentinel failover-timeout mymaster 2000",
        "",
      ].join("\n"),
    );
    const child = new Deno.Command(REDIS_SERVER, {
      args: [config, "--sentinel"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const sentinel = new RedisSentinel(port, child);
    const deadline = Date.now() + START_WAIT_MS;
    while (true) {
      try {
        const reply = await sentinel.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster");
        if (Array.isArray(reply)) return sentinel;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) {
        await sentinel.stop();
        throw new Error("redis-server --sentinel did not answer");
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** `redis-sentinel://127.0.0.1:PORT/mymaster`. */
  get url(): string {
    return `redis-sentinel://127.0.0.1:${this.port}/mymaster`;
  }

  /** One command to the Sentinel (see {@linkcode RedisServer.command}). */
  command(...args: readonly (string | number)[]): Promise<RespValue> {
    return sendCommand(() => Deno.connect({ hostname: "127.0.0.1", port: this.port }), args);
  }

  /** Kills it and waits; safe to call twice. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await this.#status;
  }
}

async function sendCommand(
  open: () => Promise<Deno.Conn>,
  args: readonly (string | number)[],
): Promise<RespValue> {
  const conn = await open();
  try {
    await writeAll(conn, encodeCommand(args));
    return await new RespReader(conn).read();
  } finally {
    conn.close();
  }
}

/** A reply of {@linkcode RedisServer.command}. */
export type RespValue = string | number | null | RespValue[];

/** A loopback port nobody listens on right now (the small race with other processes is accepted). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function encodeCommand(args: readonly (string | number)[]): Uint8Array {
  const encoder = new TextEncoder();
  let text = `*${args.length}\r\n`;
  for (const arg of args) {
    const s = String(arg);
    text += `$${encoder.encode(s).length}\r\n${s}\r\n`;
  }
  return encoder.encode(text);
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

/** Just enough RESP2 to read one reply. */
class RespReader {
  readonly #conn: Deno.Conn;
  #buffer = new Uint8Array(0);

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async read(): Promise<RespValue> {
    const line = await this.#line();
    const rest = line.slice(1);
    switch (line[0]) {
      case "+":
        return rest;
      case "-":
        throw new Error(`redis: ${rest}`);
      case ":":
        return Number(rest);
      case "$": {
        const length = Number(rest);
        if (length < 0) return null;
        const bytes = await this.#bytes(length + 2);
        return new TextDecoder().decode(bytes.subarray(0, length));
      }
      case "*": {
        const count = Number(rest);
        if (count < 0) return null;
        const items: RespValue[] = [];
        for (let i = 0; i < count; i++) items.push(await this.read());
        return items;
      }
      default:
        throw new Error(`redis: unexpected reply ${JSON.stringify(line)}`);
    }
  }

  async #line(): Promise<string> {
    while (true) {
      const end = this.#buffer.findIndex((b, i) => b === 13 && this.#buffer[i + 1] === 10);
      if (end >= 0) {
        const line = new TextDecoder().decode(this.#buffer.subarray(0, end));
        this.#buffer = this.#buffer.subarray(end + 2);
        return line;
      }
      await this.#fill();
    }
  }

  async #bytes(length: number): Promise<Uint8Array> {
    while (this.#buffer.length < length) await this.#fill();
    const bytes = this.#buffer.subarray(0, length);
    this.#buffer = this.#buffer.subarray(length);
    return bytes;
  }

  async #fill(): Promise<void> {
    const chunk = new Uint8Array(4096);
    const n = await this.#conn.read(chunk);
    if (n === null) throw new Error("redis: connection closed");
    const next = new Uint8Array(this.#buffer.length + n);
    next.set(this.#buffer);
    next.set(chunk.subarray(0, n), this.#buffer.length);
    this.#buffer = next;
  }
}
