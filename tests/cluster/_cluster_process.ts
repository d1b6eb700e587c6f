/**
 * Cluster brokers as subprocesses for the fault tests: `deno run broker.ts -p 0` with a config file whose
 * `cluster` key names the Redis URL, the node and a short lease, so a test can SIGKILL, SIGSTOP and SIGCONT a
 * node. Each learns its port from the "mqtt broker listening on URL" line; every process is always reaped.
 *
 * @module
 */

const BROKER = new URL("../../broker.ts", import.meta.url).pathname;
const WAIT_MS = 20_000;

/**
 * The permissions a cluster broker runs with: exactly `deno task broker`'s, so these tests prove the task can run
 * a cluster node (on a `redis://` URL; a `unix://` socket would also need write access to the socket).
 */
export const CLUSTER_BROKER_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write=./data",
  "--allow-env=INIT_CWD",
];

/** Why cluster brokers cannot be run as subprocesses here, or undefined when they can. */
export function clusterProcessUnavailable(): string | undefined {
  if (Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state !== "granted") {
    return "needs --allow-run";
  }
  return undefined;
}

/** How one node starts. */
export interface ClusterBrokerOptions {
  /** Redis URL. */
  readonly redis: string;
  /** Node name. */
  readonly node: string;
  /** Lease, ms. @default {1000} */
  readonly leaseMs?: number;
  /** Directory for its config file. */
  readonly dir: string;
  /** More `broker.ts` flags. */
  readonly args?: readonly string[];
}

/** One broker node in its own process. */
export class ClusterBroker {
  readonly node: string;
  readonly #child: Deno.ChildProcess;
  readonly #status: Promise<Deno.CommandStatus>;
  readonly #pumps: Promise<void>[];
  #output = "";
  #port: number | undefined;

  private constructor(node: string, child: Deno.ChildProcess) {
    this.node = node;
    this.#child = child;
    this.#status = child.status;
    this.#pumps = [this.#pump(child.stdout), this.#pump(child.stderr)];
  }

  /** Starts a node and waits until it listens. */
  static async start(options: ClusterBrokerOptions): Promise<ClusterBroker> {
    const config = `${options.dir}/${options.node}.json`;
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        cluster: { redis: options.redis, node: options.node, leaseMs: options.leaseMs ?? 1000 },
      }),
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        ...CLUSTER_BROKER_PERMISSIONS,
        BROKER,
        "-c",
        config,
        "-p",
        "0",
        "--sys-interval",
        "1",
        ...(options.args ?? []),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const broker = new ClusterBroker(options.node, child);
    try {
      await broker.#listening();
    } catch (e) {
      await broker.stop();
      throw e;
    }
    return broker;
  }

  /** Its TCP port. */
  get port(): number {
    if (this.#port === undefined) throw new Error(`${this.node} is not listening`);
    return this.#port;
  }

  /** Everything it printed so far. */
  get output(): string {
    return this.#output;
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) this.#output += text;
  }

  async #listening(): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    let exited = false;
    this.#status.then(() => exited = true);
    while (true) {
      const match = this.#output.match(/mqtt broker listening on tcp:\/\/[^\s]*:(\d+)/);
      if (match !== null) {
        this.#port = Number(match[1]);
        return;
      }
      if (exited || Date.now() > deadline) {
        await Promise.race([Promise.all(this.#pumps), new Promise((r) => setTimeout(r, 200))]);
        throw new Error(`${this.node} ${exited ? "exited" : "did not listen"}:\n${this.#output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  signal(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** SIGKILL (SIGCONT first, in case it was stopped) and reap; safe to call twice. */
  async stop(): Promise<void> {
    for (const signal of ["SIGCONT", "SIGKILL"] as const) {
      try {
        this.#child.kill(signal);
      } catch {
        // already exited
      }
    }
    await this.#status;
    await Promise.all(this.#pumps);
  }
}

/** A loopback port free now, for a process that must be told its port (HAProxy's config, `--reuse-port`). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
