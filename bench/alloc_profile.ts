/**
 * What the broker allocates per message: starts `broker.ts` (with the `broker` task's V8 flags) under
 * `--inspect`, runs the latency scenario at 5,000 msgs/s once to warm up, then once more under V8's sampling heap
 * profiler (objects already collected included), and prints the bytes per message and the functions that
 * allocated most. Function names and lines are V8's (of the code it ran), so they are places to look, not exact.
 *
 * Run: `deno run -A bench/alloc_profile.ts [PORT]` (default 18666; the inspector listens on PORT + 1).
 *
 * @module
 */

import { join } from "node:path";
import { latency } from "./_load_client.ts";
import { brokerTaskV8Flags } from "./_peers.ts";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly callFrame: CallFrame;
  readonly selfSize: number;
  readonly children: readonly ProfileNode[];
}

interface SamplingHeapProfile {
  readonly head: ProfileNode;
}

/** A minimal Chrome DevTools Protocol client over the inspector's WebSocket. */
class Inspector {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, (result: unknown) => void>();
  #id = 0;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
      if (message.id === undefined) return;
      this.#pending.get(message.id)?.(message.result);
      this.#pending.delete(message.id);
    };
  }

  static async open(port: number): Promise<Inspector> {
    const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
      webSocketDebuggerUrl: string;
    }[];
    const socket = new WebSocket(targets[0]!.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = reject;
    });
    return new Inspector(socket);
  }

  call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.#id;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve as (result: unknown) => void);
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.#socket.close();
  }
}

async function waitForInspector(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await (await fetch(`http://127.0.0.1:${port}/json/list`)).body?.cancel();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error("the broker's inspector never answered");
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? 18666);
  const broker = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--inspect=127.0.0.1:${port + 1}`,
      ...await brokerTaskV8Flags(),
      "--allow-net",
      join(new URL("..", import.meta.url).pathname, "broker.ts"),
      "-p",
      String(port),
      "--persistence",
      "memory",
      "--sys-interval",
      "0",
      "--log-level",
      "error",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitForInspector(port + 1);
    await new Promise((resolve) => setTimeout(resolve, 500)); // the listener is up after the inspector
    const inspector = await Inspector.open(port + 1);
    const run = (tag: string) =>
      latency({ port, tag, timing: { warmupMs: 100, durationMs: 2000, drainMs: 1000 }, rate: 5000 });
    await run("warm");
    await inspector.call("HeapProfiler.enable");
    await inspector.call("HeapProfiler.startSampling", {
      samplingInterval: 512,
      includeObjectsCollectedByMinorGC: true,
      includeObjectsCollectedByMajorGC: true,
    });
    const result = await run("measured");
    const { profile } = await inspector.call<{ profile: SamplingHeapProfile }>("HeapProfiler.stopSampling");
    inspector.close();
    const bySite = new Map<string, number>();
    let total = 0;
    const walk = (node: ProfileNode) => {
      const { functionName, url, lineNumber } = node.callFrame;
      const site = `${functionName || "(anonymous)"} ${url.split("/").at(-1)}:${lineNumber + 1}`;
      bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
      total += node.selfSize;
      for (const child of node.children) walk(child);
    };
    walk(profile.head);
    console.log(
      `${result.sent.toLocaleString("en")} messages at 5,000 msgs/s: ${
        (total / 1024).toFixed(0)
      } KiB allocated, ` +
        `${(total / result.sent).toFixed(0)} B per message`,
    );
    for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
      console.log(`${(bytes / 1024).toFixed(0).padStart(8)} KiB  ${site}`);
    }
  } finally {
    broker.kill("SIGKILL");
    await broker.status;
  }
}
