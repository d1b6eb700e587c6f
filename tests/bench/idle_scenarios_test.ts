/**
 * The idle scenarios of the load benchmark (issue 19): each broker's connect rate, CPU per connect, RSS per idle
 * connection and RSS with no client, and the large scenario spread over several ports. Run small here; the
 * figures themselves are for `deno run -A bench/load_bench.ts idle idle-50k`.
 */

import assert from "node:assert/strict";
import { loadBench } from "../../bench/load_bench.ts";
import { benchTest, benchUnavailable } from "./_smoke.ts";

const skipped = await benchUnavailable();
const NAME = "load bench idle-50k: spread over several ports, four figures per broker, ours included";

benchTest(NAME, skipped, async () => {
  const lines: string[] = [];
  const groups = await loadBench({
    runs: 1,
    scenarios: ["idle-50k"],
    peers: ["ours", "mosquitto", "deno-floor"],
    manyIdleConnections: 300,
    connectionsPerPort: 120,
    log: (line) => lines.push(line),
  });
  const rows = groups.flatMap((group) => group.rows);
  const text = groups.flatMap((group) => [group.title, ...(group.notes ?? [])]).join("\n");
  const metrics = [
    "connect rate",
    "broker CPU per connect",
    "broker RSS per idle connection",
    "with no client",
  ];
  for (const metric of metrics) {
    const row = rows.find((r) => r.name.includes(metric));
    assert.ok(row !== undefined, `a "${metric}" row:\n${text}`);
    assert.ok(
      Number.isFinite(row.ours) && row.ours > 0,
      `${row.name}: ours ${row.ours}\n${lines.join("\n")}`,
    );
  }
  for (const row of rows) {
    assert.doesNotMatch(row.name, /FAILED/, `${row.name}\n${text}\n${lines.join("\n")}`);
  }
  assert.match(text, /listens on 3 ports/);
  assert.match(text, /300\/300 connected/);
});
