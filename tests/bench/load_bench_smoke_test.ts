/**
 * The load benchmark must keep working (issue #10: "the command reproduces it"), so CI runs every scenario once,
 * short and small, against ours, Deno's floor and Mosquitto when it is installed. This checks that each scenario
 * produces a figure and that its delivery checks pass; it checks no speed (speed is for `deno task bench`).
 */

import assert from "node:assert/strict";
import { LOAD_SCENARIOS, loadBench } from "../../bench/load_bench.ts";
import { benchTest, benchUnavailable } from "./_smoke.ts";

const skipped = await benchUnavailable();
const NAME =
  "deno task bench load: every scenario runs, yields a figure per broker and passes its delivery checks";

benchTest(NAME, skipped, async () => {
  const lines: string[] = [];
  const groups = await loadBench({
    runs: 1,
    scenarios: LOAD_SCENARIOS,
    peers: ["ours", "mosquitto", "deno-floor"],
    warmupMs: 100,
    durationMs: 300,
    idleConnections: 200,
    latencyRate: 1000,
    log: (line) => lines.push(line),
  });
  const rows = groups.flatMap((group) => group.rows);
  const text = groups.flatMap((group) => [group.title, ...(group.notes ?? [])]).join("\n");
  assert.ok(rows.length >= LOAD_SCENARIOS.length, `a row per scenario at least:\n${text}`);
  for (const row of rows) {
    assert.ok(Number.isFinite(row.ours) && row.ours > 0, `${row.name}: ours ${row.ours}`);
    assert.doesNotMatch(row.name, /FAILED/, `${row.name}\n${text}\n${lines.join("\n")}`);
    if (row.peer !== undefined) {
      assert.ok(row.peer.value > 0, `${row.name}: ${row.peer.name} ${row.peer.value}`);
    }
  }
  assert.ok(
    rows.some((row) => row.peer?.name === "deno-floor"),
    "the idle scenario measures Deno's floor",
  );
});
