/**
 * The cluster benchmark must keep working (issue 17: `deno task bench cluster`), so CI runs every scenario once,
 * short and small, on a single node and on three nodes on one Redis. It checks that each scenario yields a figure
 * for both and that its delivery checks pass; it checks no speed (speed is for `deno task bench cluster`).
 */

import assert from "node:assert/strict";
import { CLUSTER_SCENARIOS, clusterBench } from "../../bench/cluster_bench.ts";
import { redisUnavailable } from "../../bench/_cluster_peers.ts";

const permissions = await Promise.all(
  (["run", "env", "sys", "read", "write", "net"] as const).map((name) => Deno.permissions.query({ name })),
);
const missing = permissions.filter((p) => p.state !== "granted").length;
/** Why the test cannot run here (said in its name, as every skipped test does), or undefined. */
const skipped = missing > 0
  ? "needs --allow-run --allow-env --allow-sys --allow-read --allow-write --allow-net"
  : Deno.build.os !== "linux"
  ? "runs on Linux only"
  : await redisUnavailable();
const NAME =
  "deno task bench cluster: every scenario runs on one node and on three, with its delivery checks";

Deno.test({
  name: skipped === undefined ? NAME : `${NAME} (skipped: ${skipped})`,
  ignore: skipped !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const lines: string[] = [];
    const groups = await clusterBench({
      runs: 1,
      scenarios: CLUSTER_SCENARIOS,
      deployments: ["single-node", "cluster"],
      warmupMs: 100,
      durationMs: 300,
      connects: 50,
      queued: 100,
      takeovers: 1,
      latencyRate: 1000,
      routeProbes: 3,
      log: (line) => lines.push(line),
    });
    const text = groups.flatMap((group) => group.notes ?? []).join("\n");
    assert.doesNotMatch(text, /FAILED|not measured:/, text);
    const rows = groups.flatMap((group) => group.rows);
    for (const row of rows) {
      assert.ok(row.ours > 0, `no cluster figure for ${row.name}\n${text}`);
      assert.ok((row.peer?.value ?? 0) > 0, `no single-node figure for ${row.name}\n${text}`);
    }
    assert.ok(lines.length > 0);
  },
});
