/**
 * Starts a throw-away Mosquitto on a free loopback port for a test. The configuration goes in on stdin
 * (`-c /dev/stdin`), so no file is written.
 *
 * @module
 */

/** A running Mosquitto. */
export interface MosquittoHandle {
  readonly port: number;
  /** Stops the process (SIGTERM) and waits for it. */
  stop(): Promise<void>;
}

/** Options for {@linkcode startMosquitto}. */
export interface MosquittoOptions {
  /** Lines added to the configuration (e.g. `max_qos 1`). */
  readonly extraConfig?: readonly string[];
  /** The port; a free one by default (restarting on the same port keeps clients' addresses valid). */
  readonly port?: number;
}

/** Why Mosquitto cannot run here, or undefined when it can. */
export function mosquittoUnavailable(): string | undefined {
  if (Deno.permissions.querySync({ name: "run", command: "mosquitto" }).state !== "granted") {
    return "needs --allow-run";
  }
  try {
    new Deno.Command("mosquitto", { args: ["-h"], stdout: "null", stderr: "null" }).outputSync();
    return undefined;
  } catch {
    return "needs mosquitto installed";
  }
}

/** A port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * Starts Mosquitto, or returns undefined when it is not installed or `--allow-run` was not granted (the caller
 * skips with a message).
 */
export async function startMosquitto(options: MosquittoOptions = {}): Promise<MosquittoHandle | undefined> {
  if (mosquittoUnavailable() !== undefined) return undefined;
  const port = options.port ?? freePort();
  const config = [
    `listener ${port} 127.0.0.1`,
    "allow_anonymous true",
    "persistence false",
    ...(options.extraConfig ?? []),
  ].join("\n") + "\n";
  const child = new Deno.Command("mosquitto", {
    args: ["-c", "/dev/stdin"],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(config));
  await writer.close();
  const stop = async (): Promise<void> => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
  };
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return { port, stop };
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`mosquitto did not start listening on port ${port}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
