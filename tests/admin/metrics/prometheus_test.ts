/**
 * A real Prometheus (Debian's `prometheus`) scrapes `renderMetrics()` from a `Deno.serve` endpoint every second,
 * and a query through its HTTP API returns the connected-clients gauge of a broker with known clients. Bounded
 * to 20 s; the Prometheus process and its temporary directory are removed in every case.
 */

import assert from "node:assert/strict";
import { METRICS_CONTENT_TYPE, renderMetrics } from "../../../lib/admin/metrics/render.ts";
import { testIf } from "../../_permissions.ts";
import { withBroker } from "../../broker/_wire.ts";

const PROMETHEUS = "/usr/bin/prometheus";
const DEADLINE_MS = 20_000;

/** Why a Prometheus cannot be started here, or undefined. */
function prometheusUnavailable(): string | undefined {
  for (const name of ["run", "read", "write"] as const) {
    if (Deno.permissions.querySync({ name }).state !== "granted") return `needs --allow-${name}`;
  }
  try {
    Deno.statSync(PROMETHEUS);
  } catch {
    return `${PROMETHEUS} is not installed (Debian package prometheus)`;
  }
  return undefined;
}

/** A port free a moment ago on 127.0.0.1. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

interface QueryResult {
  status: string;
  data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
}

testIf(
  "a real Prometheus scrapes renderMetrics() and its query API returns denomqtt_clients_connected",
  [prometheusUnavailable()],
  async () => {
    const started = performance.now();
    await withBroker({}, async ({ connect, broker }) => {
      await connect({ version: 5, clientId: "a" });
      await connect({ version: 4, clientId: "b" });
      await connect({ version: 4, clientId: "c" });
      const server = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen: () => {} },
        (request) =>
          new URL(request.url).pathname === "/metrics"
            ? new Response(renderMetrics(broker), { headers: { "content-type": METRICS_CONTENT_TYPE } })
            : new Response("not found", { status: 404 }),
      );
      const dir = await Deno.makeTempDir({ prefix: "denomqtt_prometheus_" });
      let child: Deno.ChildProcess | undefined;
      try {
        const target = `127.0.0.1:${server.addr.port}`;
        await Deno.writeTextFile(
          `${dir}/prometheus.yml`,
          [
            "global:",
            "  scrape_interval: 1s",
            "  evaluation_interval: 1s",
            "scrape_configs:",
            "  - job_name: denomqtt",
            "    static_configs:",
            `      - targets: ["${target}"]`,
            "",
          ].join("\n"),
        );
        const webPort = freePort();
        child = new Deno.Command(PROMETHEUS, {
          args: [
            `--config.file=${dir}/prometheus.yml`,
            `--storage.tsdb.path=${dir}/data`,
            `--web.listen-address=127.0.0.1:${webPort}`,
            "--log.level=error",
          ],
          stdout: "null",
          stderr: "piped",
        }).spawn();
        const query = `http://127.0.0.1:${webPort}/api/v1/query?query=denomqtt_clients_connected`;
        let connected: number | undefined;
        let last = "";
        while (performance.now() - started < DEADLINE_MS - 1000) {
          try {
            const response = await fetch(query);
            const body = (await response.json()) as QueryResult;
            last = JSON.stringify(body);
            const series = body.data?.result ?? [];
            if (body.status === "success" && series.length === 3) {
              connected = series.reduce((sum, s) => sum + Number(s.value[1]), 0);
              const byProtocol = Object.fromEntries(
                series.map((s) => [s.metric.protocol, Number(s.value[1])]),
              );
              assert.deepEqual(byProtocol, { "3.1": 0, "3.1.1": 2, "5.0": 1 });
              assert.equal(series[0]!.metric.job, "denomqtt");
              break;
            }
          } catch (error) {
            if (error instanceof assert.AssertionError) throw error;
            last = String(error); // not listening yet
          }
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
        assert.equal(connected, 3, `Prometheus answered: ${last}`);
      } finally {
        if (child !== undefined) {
          try {
            child.kill("SIGTERM");
          } catch {
            // already gone
          }
          const killer = setTimeout(() => {
            try {
              child!.kill("SIGKILL");
            } catch {
              // already gone
            }
          }, 3000);
          await child.stderr.cancel();
          await child.status;
          clearTimeout(killer);
        }
        await server.shutdown();
        await Deno.remove(dir, { recursive: true });
      }
    });
    assert.ok(performance.now() - started < DEADLINE_MS, "within 20 s");
  },
);
