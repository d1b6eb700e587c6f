/** The metrics benchmark's scrape-cost group runs and reports its three figures (a small broker, quickly). */

import assert from "node:assert/strict";
import { scrapeCost } from "../../bench/metrics_bench.ts";

Deno.test("bench metrics: the scrape cost group times renderMetrics() with connected clients", async () => {
  const group = await scrapeCost(200, () => {});
  assert.deepEqual(group.rows.map((row) => row.unit), ["ms", "ms", "ms"]);
  assert.match(group.rows[0]!.name, /^renderMetrics\(\), 200 connected clients$/);
  for (const row of group.rows) assert.ok(row.ours > 0 && row.ours < 1000, `${row.name}: ${row.ours} ms`);
});
