/**
 * The broker of the metrics benchmark, run as its own process: the same settings as the load benchmark's `ours`
 * (memory, no inflight or queue limit, no `$SYS`, errors only), plus a `Deno.serve` on 127.0.0.1 answering
 * `GET /metrics` with `renderMetrics()` (the admin listener's `/metrics` does the same), and optionally `--idle N`
 * sessions connected over in-memory streams, so a scrape walks N clients. Prints one JSON line
 * `{"mqtt": port, "http": port, "idle": N}` once ready.
 *
 * Run alone: `deno run --allow-net bench/_metrics_broker.ts [--idle 10000]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Broker } from "../lib/broker/broker.ts";
import { SILENT_LOGGER } from "../lib/broker/logger.ts";
import { METRICS_CONTENT_TYPE, renderMetrics } from "../lib/admin/metrics/render.ts";
import { connectIdle } from "./_idle_clients.ts";

const { values } = parseArgs({ args: Deno.args, options: { idle: { type: "string", default: "0" } } });
const idle = Number(values.idle);
const broker = new Broker({
  sysInterval: 0,
  logger: SILENT_LOGGER,
  maxInflight: 65535,
  maxQueued: Infinity,
  maxConnectionsPerAddress: Infinity,
});
const { port } = await broker.listen({ hostname: "127.0.0.1", port: 0 });
const streams = await connectIdle(broker, idle);
/** Time spent rendering, ms, per scrape: reported at /scrape-times for the benchmark. */
const renders: number[] = [];
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
  const path = new URL(request.url).pathname;
  if (path === "/metrics") {
    const start = performance.now();
    const body = renderMetrics(broker);
    renders.push(performance.now() - start);
    return new Response(body, { headers: { "content-type": METRICS_CONTENT_TYPE } });
  }
  if (path === "/scrape-times") return Response.json(renders.splice(0));
  return new Response("not found", { status: 404 });
});
console.log(JSON.stringify({ mqtt: port, http: server.addr.port, idle: streams.length }));
Deno.addSignalListener("SIGTERM", async () => {
  await server.shutdown();
  await broker.close();
  Deno.exit(0);
});
