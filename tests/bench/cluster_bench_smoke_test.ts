/**
 * The cluster benchmark must keep working (issue 17: `deno task bench cluster`), so CI runs every scenario once,
 * short and small, on a single node and on three nodes on one Redis. It checks that each scenario yields a figure
 * for both and that its delivery checks pass; it checks no speed (speed is for `deno task bench cluster`).
 */

import assert from "node:assert/strict";
import { CLUSTER_SCENARIOS, clusterBench } from "../../bench/cluster_bench.ts";
import { redisUnavailable } from "../../bench/_cluster_peers.ts";
import { benchTest, benchUnavailable } from "./_smoke.ts";

const skipped = await benchUnavailable() ?? await redisUnavailable();
const NAME =
  "deno task bench cluster: every scenario runs on one node and on three, with its delivery checks";

benchTest(NAME, skipped, async () => {
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
});
