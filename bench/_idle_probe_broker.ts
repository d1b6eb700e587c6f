/**
 * The broker side of `idle_probe.ts`: our broker (`benchBroker()` of `_ours_net.ts`), on `Deno.Conn` or with
 * `--net` on `node:net`, answering commands on stdin: `mem` prints a JSON line of `Deno.memoryUsage()` and the V8
 * heap spaces, `gc` collects (when run with `--expose-gc`), `snap PATH` writes a heap snapshot, `prof-start` and
 * `prof-stop PATH` take a CPU profile (100 µs samples) and write it as a `.cpuprofile`.
 *
 * @module
 */

import { benchBroker } from "./_ours_net.ts";
import { acceptTcp } from "../lib/broker/server/accept_loop.ts";
import { getHeapSpaceStatistics, writeHeapSnapshot } from "node:v8";
import { Session } from "node:inspector";

const inspector = new Session();
/** Posts an inspector command (the CPU profiler: `prof-start`, `prof-stop PATH`). */
function post(method: string, params: object = {}): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    inspector.post(method, params, (error: Error | null, result?: object) => {
      if (error) reject(error);
      else resolve((result ?? {}) as Record<string, unknown>);
    });
  });
}

if (import.meta.main) {
  const net = Deno.args.includes("--net");
  const broker = benchBroker();
  await broker.start();
  const port = net
    ? (await acceptTcp(broker, { hostname: "127.0.0.1", port: 0 }, { name: "tcp", allowAnonymous: true }))
      .addr.port
    : (await broker.listen({ hostname: "127.0.0.1", port: 0 })).port;
  console.log(`listening on 127.0.0.1:${port}`);
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  let pending = "";
  for await (const chunk of lines) {
    pending += chunk;
    let at;
    while ((at = pending.indexOf("\n")) >= 0) {
      const [command, arg] = pending.slice(0, at).split(" ");
      pending = pending.slice(at + 1);
      if (command === "gc") (globalThis as { gc?: () => void }).gc?.();
      if (command === "snap") writeHeapSnapshot(arg);
      if (command === "mem") {
        const spaces = Object.fromEntries(
          getHeapSpaceStatistics().map((s) => [s.space_name, [s.space_size, s.space_used_size]]),
        );
        console.log(JSON.stringify({ ...Deno.memoryUsage(), spaces }));
      }
      if (command === "prof-start") {
        inspector.connect();
        await post("Profiler.enable");
        await post("Profiler.setSamplingInterval", { interval: 100 });
        await post("Profiler.start");
      }
      if (command === "prof-stop") {
        const { profile } = await post("Profiler.stop");
        Deno.writeTextFileSync(arg!, JSON.stringify(profile));
        inspector.disconnect();
      }
      if (command === "ok") console.log("ok");
    }
  }
}
