/**
 * `deno task bench`: runs the benchmark groups and prints each as a Markdown table.
 *
 * ```sh
 * deno task bench                    # every group
 * deno task bench load --runs 5      # the load benchmark only, medians of 5 runs
 * deno task bench codec router       # some groups
 * deno task bench cluster            # the cluster benchmark (Redis, 3 nodes, aedes anchor); only when named
 * ```
 *
 * `--runs N` sets the runs per figure of the load benchmark (the micro-benchmarks use their own counts).
 * Progress lines go to stderr while it works; the Markdown tables go to stdout.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type BenchGroup, renderGroup } from "./_report.ts";
import { adminBench } from "./admin_bench.ts";
import { clusterBench } from "./cluster_bench.ts";
import { codecBench } from "./codec_bench.ts";
import { loadBench } from "./load_bench.ts";
import { metricsBench } from "./metrics_bench.ts";
import { routerBench } from "./router_bench.ts";
import { storageBench } from "./storage_bench.ts";

/** What the command line chose. */
interface BenchArgs {
  readonly runs: number | undefined;
}

/** The groups by name, in the order they run; the load benchmark last, as it takes the longest. */
const GROUPS: Readonly<Record<string, (args: BenchArgs) => Promise<BenchGroup | BenchGroup[]>>> = {
  codec: () => codecBench(),
  router: () => routerBench(),
  storage: () => storageBench(),
  admin: () => adminBench(),
  metrics: (args) => metricsBench(args.runs === undefined ? {} : { runs: args.runs }),
  load: (args) => loadBench(args.runs === undefined ? {} : { runs: args.runs }),
  // Not part of the default run: it starts Redis and six more broker processes (`deno task bench cluster`).
  cluster: (args) => clusterBench(args.runs === undefined ? {} : { runs: args.runs }),
};

/** Groups that run only when named. */
const ON_REQUEST: ReadonlySet<string> = new Set(["cluster"]);

const USAGE = `Usage: deno task bench [--runs N] [group ...]

Groups: ${Object.keys(GROUPS).join(", ")} (default: all but ${[...ON_REQUEST].join(", ")}).
  --runs N   runs per figure of the load, metrics and cluster benchmarks (default 3, 5 and 3)
  -h, --help show this help
`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { runs: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(USAGE);
    return 0;
  }
  let runs: number | undefined;
  if (parsed.values.runs !== undefined) {
    runs = Number(parsed.values.runs);
    if (!Number.isInteger(runs) || runs < 1) {
      console.error(`bench: --runs must be a positive integer, got "${parsed.values.runs}"`);
      return 2;
    }
  }
  const names = parsed.positionals.length === 0
    ? Object.keys(GROUPS).filter((name) => !ON_REQUEST.has(name))
    : parsed.positionals;
  const unknown = names.filter((name) => !(name in GROUPS));
  if (unknown.length > 0) {
    console.error(`bench: unknown group ${unknown.join(", ")}\n\n${USAGE}`);
    return 2;
  }
  for (const name of names) {
    // Progress goes to stderr (each group adds its own steps), the tables to stdout.
    const started = performance.now();
    console.error(`bench: ${name} group…`);
    const result = await GROUPS[name]!({ runs });
    console.error(`bench: ${name} group done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    for (const group of Array.isArray(result) ? result : [result]) console.log(`${renderGroup(group)}\n`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
