/**
 * Cluster benchmark (issue 17): three of our brokers on one Redis, against our broker alone and against aedes
 * with `mqemitter-redis` + `aedes-persistence-redis` (three nodes on their own Redis), in the same run.
 *
 * Scenarios (A, B, C are the three nodes; for the single node all three are the same broker):
 * - `local-fan-in`, `local-fan-out`: QoS 0 fan-in (4 → 1) and fan-out (1 → 100) with every client on A, so
 *   nothing needs another node: the cost of clustering being on;
 * - `cross-fan-in`: QoS 0, 4 publishers on A, 1 subscriber on B;
 * - `cross-fan-out`: QoS 0, 1 publisher on A, 100 subscribers spread over A, B and C (deliveries/s), with the
 *   Redis commands per published message, to show one forward per node rather than per subscriber;
 * - `cross-qos1`: QoS 1, publisher on A with 100 in flight, subscriber on B;
 * - `latency`: QoS 0 at a fixed 5,000 msgs/s from A to B, p50 and p99;
 * - `routes`: SUBSCRIBE on B until a message published on A arrives, p50 and p99 of 100 subscriptions per run;
 * - `connects`: 1,000 connects with Clean Session 0 (persistent sessions) to A, 50 at a time;
 * - `takeover`: a client's offline session on A holds 1,000 queued messages (half QoS 1, half QoS 2); it
 *   connects to B: CONNACK time, loss, QoS 2 duplicates.
 *
 * Every figure is the median of `runs` runs; within a run the three deployments go one after the other, in an
 * order that rotates between runs. CPU of the brokers, of Redis and of the load generator is read from /proc
 * over each measured window, so the notes say where Redis is the ceiling.
 *
 * Run alone: `deno run -A bench/cluster_bench.ts [--runs N] [--duration MS] [--deployments single-node,cluster,aedes-redis]
 * [--anchor-runtime node|deno] [--connects N] [scenario ...]` (`--connects`: persistent connects per run, 1,000
 * by default)
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type BenchGroup,
  type BenchRow,
  formatNumber,
  type LoadRunOptions,
  median,
  quantile,
  renderGroup,
} from "./_report.ts";
import { fanIn, fanOut, type FlowResult, type Timing, type WindowHook } from "./_load_client.ts";
import { environmentNotes, loadAverage, raiseOpenFileLimit } from "./_peers.ts";
import {
  crossFanIn,
  crossFanOut,
  crossLatency,
  crossQoS,
  persistentConnects,
  routePropagation,
  takeover,
} from "./_cluster_load.ts";
import {
  type AnchorRuntime,
  anchorVersions,
  type Deployment,
  deploymentMeter,
  type DeploymentName,
  DEPLOYMENTS,
  prepareAnchor,
  redisUnavailable,
  redisVersion,
  startDeployment,
} from "./_cluster_peers.ts";

/** The scenarios, in the order they run (the ones that leave sessions behind last). */
export const CLUSTER_SCENARIOS = [
  "local-fan-in",
  "local-fan-out",
  "cross-fan-in",
  "cross-fan-out",
  "cross-qos1",
  "latency",
  "routes",
  "connects",
  "takeover",
] as const;
/** One of {@linkcode CLUSTER_SCENARIOS}. */
export type ClusterScenario = typeof CLUSTER_SCENARIOS[number];

/** Options for {@linkcode clusterBench}. */
export interface ClusterBenchOptions extends LoadRunOptions {
  /**
   * Which scenarios to run.
   * @default {CLUSTER_SCENARIOS}
   */
  scenarios?: readonly ClusterScenario[];
  /**
   * Which deployments to measure; `cluster` always runs.
   * @default {DEPLOYMENTS}
   */
  deployments?: readonly DeploymentName[];
  /**
   * Connects per run of the connects scenario.
   * @default {1000}
   */
  connects?: number;
  /**
   * Messages queued for the session taken over (half QoS 1, half QoS 2).
   * @default {1000}
   */
  queued?: number;
  /**
   * Takeovers per run.
   * @default {10}
   */
  takeovers?: number;
  /**
   * Subscriptions timed per run of the routes scenario.
   * @default {100}
   */
  routeProbes?: number;
  /**
   * Where the aedes anchor runs: on Node (the runtime it is written for), or on Deno through `deno.json`'s
   * imports. Deno is used anyway when Node is missing.
   * @default {"node"}
   */
  anchorRuntime?: AnchorRuntime;
}

/** The sizes a run uses: {@linkcode ClusterBenchOptions} with the defaults filled in. */
interface Sizes {
  readonly connects: number;
  readonly queued: number;
  readonly takeovers: number;
  readonly latencyRate: number;
  readonly routeProbes: number;
}

/** A figure a scenario reports. */
interface Metric {
  readonly key: string;
  readonly name: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
}

/** One run's figures for one deployment, or why it failed. */
interface RunOutcome {
  readonly figures: Readonly<Record<string, number>>;
  /** What the checks found, short. */
  readonly check: string;
  /** A broken promise (a QoS 1/2 message lost, a QoS 2 duplicate) or a run that could not finish. */
  readonly failure?: string;
}

interface ScenarioSpec {
  readonly scenario: ClusterScenario;
  readonly metrics: readonly Metric[];
  /** What the table's row says about where the clients are. */
  readonly placement: string;
  run(deployment: Deployment, tag: string, onWindow: WindowHook): Promise<RunOutcome>;
}

/** Subscribers of the fan-out scenarios. */
const FAN_OUT_SUBSCRIBERS = 100;
/** Those of the cross-node fan-out on B and C (every third is on A), reached from A only through Redis. */
const REMOTE_SUBSCRIBERS = FAN_OUT_SUBSCRIBERS - Math.ceil(FAN_OUT_SUBSCRIBERS / 3);
/** Payload of every benchmark message, bytes (the load client's default). */
const PAYLOAD = 64;

function flowCheck(result: FlowResult, promise: "all" | "none"): Omit<RunOutcome, "figures"> {
  const lost = result.expected - result.received;
  let check = `${formatNumber(result.received)}/${formatNumber(result.expected)} delivered`;
  if (result.duplicates > 0) check += `, ${formatNumber(result.duplicates)} duplicates`;
  let failure: string | undefined;
  if (promise === "all") {
    if (lost > 0) {
      failure = `${formatNumber(lost)} of ${formatNumber(result.expected)} messages never arrived`;
    } else if (result.acked < result.sent) {
      failure = `${formatNumber(result.sent - result.acked)} messages never acknowledged to the publisher`;
    }
  }
  if (result.error !== undefined) {
    check += `, error: ${result.error}`;
    failure ??= result.error;
  }
  return failure === undefined ? { check } : { check, failure };
}

function specs(timingBase: Omit<Timing, "onWindow">, sizes: Sizes): ScenarioSpec[] {
  const { connects, queued, takeovers, latencyRate } = sizes;
  const timed = (onWindow: WindowHook): Timing => ({ ...timingBase, onWindow });
  const rate = (name: string, unit: string): Metric[] => [{ key: "rate", name, unit, higherIsBetter: true }];
  const spread = (ports: readonly number[], n: number) => Array.from({ length: n }, (_, i) => ports[i % 3]!);
  return [
    {
      scenario: "local-fan-in",
      placement: "all on A",
      metrics: rate("(a) local fan-in QoS 0, 4 → 1, 64 B", "msgs/s"),
      async run(d, tag, onWindow) {
        const result = await fanIn({ port: d.ports[0], tag, timing: timed(onWindow) });
        return { figures: { rate: result.rate }, ...flowCheck(result, "none") };
      },
    },
    {
      scenario: "local-fan-out",
      placement: "all on A",
      metrics: rate(`(a) local fan-out QoS 0, 1 → ${FAN_OUT_SUBSCRIBERS}, 64 B`, "deliveries/s"),
      async run(d, tag, onWindow) {
        const result = await fanOut({ port: d.ports[0], tag, timing: timed(onWindow) });
        return { figures: { rate: result.rate }, ...flowCheck(result, "none") };
      },
    },
    {
      scenario: "cross-fan-in",
      placement: "4 publishers on A, subscriber on B",
      metrics: rate("(b) cross-node fan-in QoS 0, 4 on A → 1 on B, 64 B", "msgs/s"),
      async run(d, tag, onWindow) {
        const a = d.ports[0];
        const result = await crossFanIn({
          publisherPorts: [a, a, a, a],
          subscriberPort: d.ports[1],
          tag,
          timing: timed(onWindow),
        });
        return { figures: { rate: result.rate }, ...flowCheck(result, "none") };
      },
    },
    {
      scenario: "cross-fan-out",
      placement: `publisher on A, ${FAN_OUT_SUBSCRIBERS} subscribers over A, B, C`,
      metrics: rate(
        `(c) cross-node fan-out QoS 0, 1 on A → ${FAN_OUT_SUBSCRIBERS} over A/B/C`,
        "deliveries/s",
      ),
      async run(d, tag, onWindow) {
        const result = await crossFanOut({
          publisherPort: d.ports[0],
          subscriberPorts: spread(d.ports, FAN_OUT_SUBSCRIBERS),
          tag,
          timing: timed(onWindow),
        });
        // Published messages during the window, for the Redis commands per message (see the notes).
        return {
          figures: { rate: result.rate, messages: result.rate / FAN_OUT_SUBSCRIBERS },
          ...flowCheck(result, "none"),
        };
      },
    },
    {
      scenario: "cross-qos1",
      placement: "publisher on A, subscriber on B",
      metrics: rate("(d) cross-node QoS 1, A → B, 100 in flight", "msgs/s"),
      async run(d, tag, onWindow) {
        const result = await crossQoS({
          publisherPort: d.ports[0],
          subscriberPort: d.ports[1],
          tag,
          timing: timed(onWindow),
          qos: 1,
        });
        return { figures: { rate: result.rate, messages: result.rate }, ...flowCheck(result, "all") };
      },
    },
    {
      scenario: "latency",
      placement: "publisher on A, subscriber on B",
      metrics: [
        {
          key: "p50",
          name: `(e) latency p50, QoS 0 at ${formatNumber(latencyRate)} msgs/s, A → B`,
          unit: "µs",
          higherIsBetter: false,
        },
        {
          key: "p99",
          name: `(e) latency p99, QoS 0 at ${formatNumber(latencyRate)} msgs/s, A → B`,
          unit: "µs",
          higherIsBetter: false,
        },
      ],
      async run(d, tag, onWindow) {
        const result = await crossLatency({
          publisherPort: d.ports[0],
          subscriberPort: d.ports[1],
          tag,
          timing: timed(onWindow),
          rate: latencyRate,
        });
        let check = `${formatNumber(result.samples)} samples, ${formatNumber(result.received)}/${
          formatNumber(result.sent)
        } delivered`;
        if (result.error !== undefined) check += `, error: ${result.error}`;
        const failure = result.samples === 0 ? result.error ?? "no message arrived" : undefined;
        return {
          figures: { p50: result.p50Us, p99: result.p99Us },
          check,
          ...(failure === undefined ? {} : { failure }),
        };
      },
    },
    {
      scenario: "routes",
      placement: "SUBSCRIBE on B, publisher on A",
      metrics: [
        {
          key: "p50",
          name: `(f) route propagation p50, SUBSCRIBE on B → routable on A, ${sizes.routeProbes} per run`,
          unit: "ms",
          higherIsBetter: false,
        },
        {
          key: "p99",
          name: `(f) route propagation p99, SUBSCRIBE on B → routable on A, ${sizes.routeProbes} per run`,
          unit: "ms",
          higherIsBetter: false,
        },
      ],
      async run(d, tag, onWindow) {
        const result = await routePropagation({
          publisherPort: d.ports[0],
          subscriberPort: d.ports[1],
          tag,
          probes: sizes.routeProbes,
          onWindow,
        });
        let check = `${result.samplesMs.length} probes, ${result.missed} missed`;
        if (result.error !== undefined) check += `, error: ${result.error}`;
        const failure = result.samplesMs.length === 0 ? result.error ?? "no probe arrived" : undefined;
        return {
          figures: result.samplesMs.length === 0
            ? {}
            : { p50: quantile(result.samplesMs, 0.5), p99: quantile(result.samplesMs, 0.99) },
          check,
          ...(failure === undefined ? {} : { failure }),
        };
      },
    },
    {
      scenario: "connects",
      placement: "all on A",
      metrics: rate(
        `(g) connects, Clean Session 0, ${formatNumber(connects)} clients, 50 at a time`,
        "conn/s",
      ),
      async run(d, tag, onWindow) {
        const result = await persistentConnects({ port: d.ports[0], tag, count: connects, onWindow });
        let check = `${result.connected}/${result.attempted} connected`;
        if (result.error !== undefined) check += `, first failure: ${result.error}`;
        const failure = result.connected < connects
          ? `only ${result.connected} of ${connects} connects succeeded: ${result.error}`
          : undefined;
        return { figures: { rate: result.rate }, check, ...(failure === undefined ? {} : { failure }) };
      },
    },
    {
      scenario: "takeover",
      placement: `session on A with ${formatNumber(queued)} queued, reconnect to B`,
      metrics: [
        {
          key: "p50",
          name: `(h) takeover CONNACK p50, ${formatNumber(queued)} queued, A → B, ${takeovers} per run`,
          unit: "ms",
          higherIsBetter: false,
        },
        {
          key: "p99",
          name: `(h) takeover CONNACK p99, ${formatNumber(queued)} queued, A → B, ${takeovers} per run`,
          unit: "ms",
          higherIsBetter: false,
        },
        {
          key: "drain",
          name: `(h) takeover until all ${formatNumber(queued)} delivered, median`,
          unit: "ms",
          higherIsBetter: false,
        },
      ],
      async run(d, tag, onWindow) {
        const result = await takeover({
          fromPort: d.ports[0],
          toPort: d.ports[1],
          tag,
          queued,
          iterations: takeovers,
          onWindow,
        });
        const check =
          `${result.connackMs.length} takeovers, ${result.lost} lost, ${result.qos2Duplicates} QoS 2 ` +
          `duplicates, ${result.qos1Duplicates} QoS 1 duplicates${
            result.error === undefined ? "" : `, error: ${result.error}`
          }`;
        let failure: string | undefined;
        if (result.lost > 0) failure = `${result.lost} queued messages lost`;
        else if (result.qos2Duplicates > 0) {
          failure = `${result.qos2Duplicates} QoS 2 messages delivered twice`;
        } else if (result.error !== undefined) failure = result.error;
        return {
          figures: {
            ...(result.connackMs.length === 0
              ? {}
              : { p50: quantile(result.connackMs, 0.5), p99: quantile(result.connackMs, 0.99) }),
            ...(result.drainMs.length === 0 ? {} : { drain: median(result.drainMs) }),
            connacks: result.connackMs.length,
          },
          check,
          ...(failure === undefined ? {} : { failure }),
        };
      },
    },
  ];
}

/** What one deployment's runs of one scenario gave: outcomes plus CPU and Redis commands per run. */
interface Measured {
  readonly outcome: RunOutcome;
  /** Length of the measured window, s. */
  readonly seconds: number | undefined;
  /** Bytes Redis read from the brokers during the window. */
  readonly inputBytes: number | undefined;
  readonly cpu: { brokers: number; redis: number | undefined; generator: number } | undefined;
  readonly commands: ReadonlyMap<string, number> | undefined;
}

/**
 * Runs the cluster benchmark and returns its groups: the cluster against the single node, the cluster against
 * the aedes anchor, then the targets and the CPU in the notes.
 */
export async function clusterBench(options: ClusterBenchOptions = {}): Promise<BenchGroup[]> {
  const runs = options.runs ?? 3;
  const log = options.log ?? ((line: string) => console.error(line));
  const wanted = new Set<DeploymentName>(["cluster", ...(options.deployments ?? DEPLOYMENTS)]);
  const scenarioNames = options.scenarios ?? CLUSTER_SCENARIOS;
  const timing = { warmupMs: options.warmupMs ?? 500, durationMs: options.durationMs ?? 2000, drainMs: 5000 };
  const setupNotes: string[] = [];
  await raiseOpenFileLimit();
  const noRedis = await redisUnavailable();
  if (noRedis !== undefined) {
    return [{
      title: "Cluster: not measured",
      rows: [],
      notes: [`The cluster benchmark needs redis-server: ${noRedis}.`],
    }];
  }
  if (wanted.has("aedes-redis")) {
    const ready = await prepareAnchor(options.anchorRuntime);
    if ("error" in ready) {
      wanted.delete("aedes-redis");
      setupNotes.push(`aedes-redis: not measured: ${ready.error}`);
    } else {
      setupNotes.push(`The aedes anchor ran on ${ready.runtime === "node" ? "Node" : "Deno"}.`);
    }
  }
  const loadAtStart = await loadAverage();
  const order = DEPLOYMENTS.filter((name) => wanted.has(name));
  const running = new Map<DeploymentName, Deployment>();
  const failedToStart = new Map<DeploymentName, string>();
  const ensure = async (name: DeploymentName): Promise<Deployment | undefined> => {
    const current = running.get(name);
    if (current !== undefined && current.alive()) return current;
    if (current !== undefined) {
      setupNotes.push(`${name} died and was restarted: ${current.stderrTail()}`);
      await current.stop();
      running.delete(name);
    }
    if (failedToStart.has(name)) return undefined;
    try {
      log(`bench: cluster: starting ${name}…`);
      const started = await startDeployment(name);
      running.set(name, started);
      return started;
    } catch (error) {
      failedToStart.set(name, (error as Error).message);
      return undefined;
    }
  };

  const sizes: Sizes = {
    connects: options.connects ?? 1000,
    queued: options.queued ?? 1000,
    takeovers: options.takeovers ?? 10,
    latencyRate: options.latencyRate ?? 5000,
    routeProbes: options.routeProbes ?? 100,
  };
  const all = specs(timing, sizes).filter((spec) => scenarioNames.includes(spec.scenario));
  const results = new Map<ClusterScenario, Map<DeploymentName, Measured[]>>();
  let runId = 0;
  try {
    for (const spec of all) {
      const byDeployment = new Map<DeploymentName, Measured[]>(order.map((name) => [name, []]));
      results.set(spec.scenario, byDeployment);
      for (let run = 0; run < runs; run++) {
        // Rotate the order, so no deployment always runs right after the same other one.
        const turn = order.map((_, i) => order[(i + run) % order.length]!);
        for (const name of turn) {
          const deployment = await ensure(name);
          if (deployment === undefined) continue;
          const tag = `c${(runId++).toString(36)}`;
          log(`bench: cluster: ${spec.scenario} run ${run + 1}/${runs} on ${name}…`);
          const meter = deploymentMeter(deployment);
          let outcome: RunOutcome;
          try {
            outcome = await spec.run(deployment, tag, (edge) => meter.onWindow(edge));
          } catch (error) {
            outcome = { figures: {}, check: "did not finish", failure: (error as Error).message };
          }
          if (!deployment.alive()) {
            outcome = {
              ...outcome,
              failure: `a process exited during the run: ${deployment.stderrTail()}`,
            };
          }
          byDeployment.get(name)!.push({
            outcome,
            cpu: meter.cpu(),
            commands: meter.commands(),
            seconds: meter.seconds(),
            inputBytes: meter.redisInputBytes(),
          });
        }
      }
    }
  } finally {
    await Promise.all([...running.values()].map((d) => d.stop()));
  }
  return report(all, results, order, runs, loadAtStart, failedToStart, setupNotes);
}

const LABEL: Readonly<Record<DeploymentName, string>> = {
  "single-node": "single-node",
  cluster: "cluster (3 nodes)",
  "aedes-redis": "aedes + mqemitter-redis (3 nodes)",
};

async function report(
  all: readonly ScenarioSpec[],
  results: ReadonlyMap<ClusterScenario, ReadonlyMap<DeploymentName, readonly Measured[]>>,
  order: readonly DeploymentName[],
  runs: number,
  loadAtStart: number,
  failedToStart: ReadonlyMap<DeploymentName, string>,
  setupNotes: readonly string[],
): Promise<BenchGroup[]> {
  const medianOf = (list: readonly Measured[] | undefined, key: string): number | undefined => {
    const values = (list ?? []).map((m) => m.outcome.figures[key]).filter((v): v is number =>
      v !== undefined && Number.isFinite(v)
    );
    return values.length === 0 ? undefined : median(values);
  };
  const failedMark = (name: DeploymentName, list: readonly Measured[] | undefined) => {
    const failed = (list ?? []).filter((m) => m.outcome.failure !== undefined).length;
    return failed === 0 ? "" : ` (${name} FAILED ${failed}/${runs})`;
  };
  const vsSingle: BenchRow[] = [];
  const vsAedes: BenchRow[] = [];
  const runNotes: string[] = [];
  const cpuLines: string[] = [
    "| scenario | deployment | brokers CPU | Redis CPU | generator CPU | CPU µs per message (brokers + Redis) | " +
    "Redis input per message | Redis commands per message |",
    "|---|---|---:|---:|---:|---:|---:|---|",
  ];
  const figure = (value: number | undefined) =>
    value === undefined ? "-" : formatNumber(value, value < 100 ? 2 : 0);
  for (const spec of all) {
    const byDeployment = results.get(spec.scenario)!;
    const cluster = byDeployment.get("cluster");
    for (const metric of spec.metrics) {
      const ours = medianOf(cluster, metric.key);
      const row = (peer: DeploymentName, into: BenchRow[]) => {
        const list = byDeployment.get(peer);
        if (list === undefined) return;
        const value = medianOf(list, metric.key);
        into.push({
          name: metric.name + failedMark("cluster", cluster) + failedMark(peer, list),
          unit: metric.unit,
          ours: ours ?? 0,
          higherIsBetter: metric.higherIsBetter,
          ...(value === undefined ? {} : { peer: { name: LABEL[peer], value } }),
        });
      };
      row("single-node", vsSingle);
      row("aedes-redis", vsAedes);
    }
    const perRun = order.filter((name) => (byDeployment.get(name) ?? []).length > 0).map((name) => {
      const list = byDeployment.get(name) ?? [];
      const figures = spec.metrics.map((metric) =>
        list.map((m) => figure(m.outcome.figures[metric.key])).join("/")
      ).join(" and ");
      const failed = list.filter((m) => m.outcome.failure !== undefined);
      const checks = failed.length > 0
        ? `FAILED ${failed.length}/${list.length}: ${failed.map((m) => m.outcome.failure).join("; ")}`
        : list.map((m) => m.outcome.check).join("; ");
      return `${name} ${figures} (${checks})`;
    });
    runNotes.push(`${spec.scenario} (${spec.placement}): ${perRun.join(" · ")}`);
    for (const name of order) {
      const list = byDeployment.get(name) ?? [];
      const cpus = list.flatMap((m) => m.cpu === undefined ? [] : [m.cpu]);
      if (cpus.length === 0) continue;
      const med = (pick: (c: NonNullable<Measured["cpu"]>) => number | undefined) => {
        const values = cpus.map(pick).filter((v): v is number => v !== undefined);
        return values.length === 0 ? "-" : `${Math.round(median(values))}%`;
      };
      cpuLines.push(
        `| ${spec.scenario} | ${name} | ${med((c) => c.brokers)} | ${med((c) => c.redis)} | ${
          med((c) => c.generator)
        } | ${cpuPerMessageText(list)} | ${bytesText(redisBytesPerMessage(list))} | ${
          commandsPerMessage(list)
        } |`,
      );
    }
  }

  const env = await environmentNotes();
  const versions = await anchorVersions();
  const notes = [
    `Medians of ${runs} runs per deployment; the three deployments take turns within each run (order rotating). ` +
    "Ratio above 1.00x means the cluster is better (for times: lower).",
    `Load average ${loadAtStart.toFixed(1)} at start, ${(await loadAverage()).toFixed(1)} at the end ` +
    `(${await nproc()} cores shared by the brokers, Redis, the load generator and whatever else runs here).`,
    `cluster: three \`broker.ts --cluster redis://127.0.0.1:PORT --persistence memory --max-inflight 65535 ` +
    "--max-queued 0` processes on one `redis-server` (AOF, appendfsync everysec, no RDB). single-node: the same " +
    `broker without --cluster. aedes-redis: three aedes ${versions.aedes} processes with mqemitter-redis ` +
    `${versions["mqemitter-redis"]} and aedes-persistence-redis ${
      versions["aedes-persistence-redis"]
    } on their ` +
    `own redis-server ${await redisVersion()} with the same settings.`,
    ...[...failedToStart].map(([name, why]) => `**${name}: not measured: ${why}**`),
    ...setupNotes,
    ...env,
  ];
  const summary = [
    "Targets (issue 17), from the medians above:",
    targetTable(all, results),
    "CPU over the measured windows (percent of one core; medians), and the Redis commands per published message:",
    cpuLines.join("\n"),
    ...runNotes,
  ];
  const groups: BenchGroup[] = [
    { title: "Cluster: 3 nodes on one Redis against a single node", rows: vsSingle, notes },
  ];
  if (order.includes("aedes-redis")) {
    groups.push({ title: "Cluster: ours against aedes + mqemitter-redis", rows: vsAedes, notes: summary });
  } else {
    groups[0] = { ...groups[0]!, notes: [...notes, ...summary] };
  }
  return groups;
}

/**
 * CPU time of the brokers and Redis per message (per delivery for fan-out) in the throughput scenarios, µs,
 * median over the runs: unlike a rate it holds up when other work on the machine takes CPU from the run.
 */
function cpuPerMessageText(list: readonly Measured[]): string {
  const perRun = list.flatMap((m) => {
    const rate = m.outcome.figures.rate;
    if (m.cpu === undefined || rate === undefined || rate <= 0) return [];
    return [((m.cpu.brokers + (m.cpu.redis ?? 0)) / 100 / rate) * 1e6];
  });
  return perRun.length === 0 ? "-" : `${formatNumber(median(perRun), 2)} µs`;
}

function bytesText(bytes: number | undefined): string {
  return bytes === undefined ? "-" : `${formatNumber(bytes)} B`;
}

async function nproc(): Promise<string> {
  try {
    const out = await new Deno.Command("nproc", { stdout: "piped", stderr: "null" }).output();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return "?";
  }
}

/** Redis commands per published message, medians over the runs, the largest first (e.g. `xadd 2.00`). */
function commandsPerMessage(list: readonly Measured[]): string {
  const perRun = list.flatMap((m) => {
    const messages = m.outcome.figures.messages;
    if (m.commands === undefined || messages === undefined || messages <= 0 || m.seconds === undefined) {
      return [];
    }
    return [{ commands: m.commands, messages: messages * m.seconds }];
  });
  if (perRun.length === 0) return "-";
  const names = new Set(perRun.flatMap((r) => [...r.commands.keys()]));
  const values = [...names].map((name) => ({
    name,
    value: median(perRun.map((r) => (r.commands.get(name) ?? 0) / r.messages)),
  })).filter((c) => c.value >= 0.01).sort((a, b) => b.value - a.value).slice(0, 4);
  return values.length === 0 ? "none" : values.map((c) => `${c.name} ${c.value.toFixed(2)}`).join(", ");
}

/** A scenario's target, judged from the medians of the same run. */
interface Target {
  readonly scenario: ClusterScenario;
  /** The metric the table shows. */
  readonly key: string;
  readonly text: string;
  /** Whether it is met, from the medians (undefined: not measured). */
  judge(m: (name: DeploymentName, key: string) => number | undefined, list: Lists): boolean | undefined;
}

type Lists = ReadonlyMap<DeploymentName, readonly Measured[]>;

const ratioAtLeast =
  (share: number) => (m: (name: DeploymentName, key: string) => number | undefined): boolean | undefined => {
    const cluster = m("cluster", "rate");
    const single = m("single-node", "rate");
    return cluster === undefined || single === undefined ? undefined : cluster >= share * single;
  };

const noFailure = (list: Lists): boolean =>
  (list.get("cluster") ?? []).every((x) => x.outcome.failure === undefined);

const TARGETS: readonly Target[] = [
  { scenario: "local-fan-in", key: "rate", text: "≥ 90 % of single-node", judge: ratioAtLeast(0.9) },
  { scenario: "local-fan-out", key: "rate", text: "≥ 90 % of single-node", judge: ratioAtLeast(0.9) },
  {
    scenario: "cross-fan-in",
    key: "rate",
    text: "≥ 100,000 msgs/s",
    judge: (m) => m("cluster", "rate") === undefined ? undefined : m("cluster", "rate")! >= 100_000,
  },
  {
    scenario: "cross-fan-out",
    key: "rate",
    text:
      `one forward per node, not per subscriber: Redis input per message < ¼ of ${REMOTE_SUBSCRIBERS} remote ` +
      `subscribers × ${PAYLOAD} B`,
    judge: (_m, list) => {
      const bytes = redisBytesPerMessage(list.get("cluster") ?? []);
      return bytes === undefined ? undefined : bytes < (REMOTE_SUBSCRIBERS * PAYLOAD) / 4;
    },
  },
  {
    scenario: "cross-qos1",
    key: "rate",
    text: "≥ 30,000 msgs/s",
    judge: (m, list) =>
      m("cluster", "rate") === undefined ? undefined : m("cluster", "rate")! >= 30_000 && noFailure(list),
  },
  {
    scenario: "latency",
    key: "p50",
    text: "p50 ≤ single-node + 300 µs",
    judge: (m) => {
      const c = m("cluster", "p50"), s = m("single-node", "p50");
      return c === undefined || s === undefined ? undefined : c <= s + 300;
    },
  },
  {
    scenario: "latency",
    key: "p99",
    text: "p99 ≤ single-node + 1,500 µs",
    judge: (m) => {
      const c = m("cluster", "p99"), s = m("single-node", "p99");
      return c === undefined || s === undefined ? undefined : c <= s + 1500;
    },
  },
  {
    scenario: "routes",
    key: "p99",
    text: "p99 ≤ 50 ms",
    judge: (m) => m("cluster", "p99") === undefined ? undefined : m("cluster", "p99")! <= 50,
  },
  { scenario: "connects", key: "rate", text: "≥ 50 % of single-node", judge: ratioAtLeast(0.5) },
  {
    scenario: "takeover",
    key: "p99",
    text: "CONNACK p99 ≤ 100 ms, 0 lost, 0 QoS 2 duplicates",
    judge: (m, list) =>
      m("cluster", "p99") === undefined ? undefined : m("cluster", "p99")! <= 100 && noFailure(list),
  },
];

/** Bytes Redis read from the brokers per published message during the window, median over the runs. */
function redisBytesPerMessage(list: readonly Measured[]): number | undefined {
  const perRun = list.flatMap((m) => {
    const messages = m.outcome.figures.messages;
    if (m.inputBytes === undefined || messages === undefined || messages <= 0 || m.seconds === undefined) {
      return [];
    }
    return [m.inputBytes / (messages * m.seconds)];
  });
  return perRun.length === 0 ? undefined : median(perRun);
}

function targetTable(
  all: readonly ScenarioSpec[],
  results: ReadonlyMap<ClusterScenario, Lists>,
): string {
  const lines = [
    "| scenario | cluster | single-node | cluster / single | aedes-redis | cluster vs aedes (≥ 3x) | target | met |",
    "|---|---:|---:|---:|---:|---:|---|---|",
  ];
  const show = (value: number | undefined, unit: string) =>
    value === undefined ? "-" : `${formatNumber(value, value < 100 ? 2 : 0)} ${unit}`;
  for (const spec of all) {
    const list = results.get(spec.scenario)!;
    const m = (name: DeploymentName, key: string): number | undefined => {
      const values = (list.get(name) ?? []).map((x) => x.outcome.figures[key]).filter((v): v is number =>
        v !== undefined && Number.isFinite(v)
      );
      return values.length === 0 ? undefined : median(values);
    };
    for (const metric of spec.metrics) {
      const cluster = m("cluster", metric.key);
      const single = m("single-node", metric.key);
      const aedes = m("aedes-redis", metric.key);
      const oriented = (peer: number | undefined) =>
        cluster === undefined || peer === undefined || cluster === 0 || peer === 0
          ? undefined
          : metric.higherIsBetter
          ? cluster / peer
          : peer / cluster;
      const vsSingle = oriented(single);
      const vsAedes = oriented(aedes);
      const target = TARGETS.find((t) => t.scenario === spec.scenario && t.key === metric.key);
      const judged = target?.judge(m, list);
      const met3x = vsAedes === undefined ? "" : vsAedes >= 3 ? " ✓" : " ✗";
      lines.push(
        `| ${metric.name} | ${show(cluster, metric.unit)} | ${show(single, metric.unit)} | ${
          vsSingle === undefined
            ? "-"
            : metric.higherIsBetter
            ? `${Math.round(vsSingle * 100)} %`
            : `${vsSingle.toFixed(2)}x`
        } | ${show(aedes, metric.unit)} | ${
          vsAedes === undefined ? "-" : `${vsAedes.toFixed(2)}x${met3x}`
        } | ${target?.text ?? "-"} | ${
          judged === undefined ? (target === undefined ? "-" : "not measured") : judged ? "yes" : "**no**"
        } |`,
      );
    }
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      runs: { type: "string" },
      duration: { type: "string" },
      deployments: { type: "string" },
      "anchor-runtime": { type: "string" },
      connects: { type: "string" },
    },
  });
  const options: ClusterBenchOptions = {};
  for (const name of positionals) {
    if (!(CLUSTER_SCENARIOS as readonly string[]).includes(name)) {
      console.error(`unknown scenario "${name}"; choose from ${CLUSTER_SCENARIOS.join(", ")}`);
      Deno.exit(2);
    }
  }
  if (positionals.length > 0) options.scenarios = positionals as ClusterScenario[];
  if (values.runs !== undefined) options.runs = Number(values.runs);
  if (values.duration !== undefined) options.durationMs = Number(values.duration);
  if (values.connects !== undefined) {
    const connects = Number(values.connects);
    if (!Number.isInteger(connects) || connects < 1) {
      console.error(`--connects must be a positive integer, got "${values.connects}"`);
      Deno.exit(2);
    }
    options.connects = connects;
  }
  if (values["anchor-runtime"] === "deno" || values["anchor-runtime"] === "node") {
    options.anchorRuntime = values["anchor-runtime"];
  }
  if (values.deployments !== undefined) {
    options.deployments = values.deployments.split(",") as DeploymentName[];
  }
  for (const group of await clusterBench(options)) console.log(renderGroup(group) + "\n");
}
