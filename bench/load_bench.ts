/**
 * Load benchmark (issue #10): our broker against Mosquitto and aedes, in the same run, on 127.0.0.1.
 *
 * Scenarios: fan-in and fan-out at QoS 0, QoS 1 and QoS 2 end to end with 100 messages in flight, latency at a
 * fixed rate, and 5,000 idle connections (connect rate, broker CPU per connect, RSS per connection, RSS with no
 * client), all with every broker in memory. The named scenario `idle-50k` (not run by default: it takes a few
 * minutes) does the same with 50,000 connections, spread over two ports per broker.
 * Then, with storage (issue #7): QoS 1 end to end into a persistent session and retained QoS 1 publishes, ours
 * with SQLite against ours in memory and Mosquitto with `persistence true`. Every figure is the median of `runs`
 * runs, interleaved between the brokers, and each row compares ours (the first broker of the scenario) with one
 * peer.
 *
 * The load generator (`_load_client.ts`) runs in this process, on one core; each broker is its own process
 * (`_peers.ts`), on the other.
 *
 * Run alone: `deno run -A bench/load_bench.ts [--runs N] [--peers a,b] [--connections N] [--many-connections N]
 * [scenario ...]`, e.g. `... --runs 3 idle idle-50k` (`--connections` sets the idle scenario's count,
 * `--many-connections` idle-50k's).
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
  renderGroup,
} from "./_report.ts";
import {
  fanIn,
  fanOut,
  type FlowResult,
  idleConnections,
  type IdleResult,
  latency,
  type LatencyResult,
  qosEndToEnd,
  retainedPublish,
  type Timing,
  type WindowHook,
} from "./_load_client.ts";
import {
  brokerTaskV8Flags,
  cpuMeter,
  cpuSecondsPrecise,
  environmentNotes,
  loadAverage,
  type Peer,
  PEER_NAMES,
  type PeerName,
  type PeerStorage,
  raiseOpenFileLimit,
  startPeer,
  unavailablePeers,
} from "./_peers.ts";

/** The scenarios run by default, in the order they run. */
export const LOAD_SCENARIOS = [
  "fan-in",
  "fan-out",
  "qos1",
  "qos2",
  "latency",
  "idle",
  "qos1-durable",
  "retained-durable",
] as const;
/** Scenarios run only when named: 50,000 idle connections take a few minutes and a raised open-file limit. */
export const EXTRA_LOAD_SCENARIOS = ["idle-50k"] as const;
/** One of {@linkcode LOAD_SCENARIOS} or {@linkcode EXTRA_LOAD_SCENARIOS}. */
export type LoadScenario = typeof LOAD_SCENARIOS[number] | typeof EXTRA_LOAD_SCENARIOS[number];

/** Options for {@linkcode loadBench}. */
export interface LoadBenchOptions extends LoadRunOptions {
  /**
   * Which scenarios to run.
   * @default {LOAD_SCENARIOS}
   */
  scenarios?: readonly LoadScenario[];
  /**
   * Which brokers to measure; `ours` always runs (in the storage scenarios both with SQLite and in memory).
   * `deno-floor` and `deno-floor-net` (a bare Deno accept/read/CONNACK server on `Deno.Conn` and on `node:net`)
   * run in the idle scenarios only. `ours-net` (ours with `node:net` TCP listeners) runs only when named here. Peers that are not
   * installed are skipped with a note.
   * @default {DEFAULT_PEERS}
   */
  peers?: readonly PeerName[];
  /**
   * Connections in the idle scenario (lowered to what the open-file limit allows).
   * @default {5000}
   */
  idleConnections?: number;
  /**
   * Connections in the `idle-50k` scenario. The open-file limit is raised for them when this process may (root);
   * else they are lowered to what it allows.
   * @default {50000}
   */
  manyIdleConnections?: number;
  /**
   * Connections per listening port in the idle scenarios; a broker gets as many ports as its count needs.
   * @default {CONNECTIONS_PER_PORT}
   */
  connectionsPerPort?: number;
}

/** One run's figures for one broker, by metric name, or why it failed. */
interface RunOutcome {
  readonly figures: Readonly<Record<string, number>>;
  /** A promise the broker broke (QoS 1/2 message lost), or a run that could not finish. */
  readonly failure?: string;
  /** What the checks found, short, for the notes. */
  readonly check: string;
  /** Throughput runs: deliveries expected and received, summed over runs in the notes. */
  readonly counts?: { readonly delivered: number; readonly expected: number; readonly duplicates: number };
}

/** A metric a scenario reports. */
interface Metric {
  readonly key: string;
  readonly name: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
}

/** The peers measured unless `peers` says otherwise: all but `ours-net`, which is for comparing transports. */
export const DEFAULT_PEERS: readonly PeerName[] = PEER_NAMES.filter((name) => name !== "ours-net");

/** One broker as a scenario runs it: which broker, where it keeps its state, and its name in the table. */
interface Contender {
  readonly label: string;
  readonly broker: PeerName;
  readonly storage: PeerStorage;
}

/** Every broker in memory, ours first. */
const IN_MEMORY: readonly Contender[] = PEER_NAMES.filter((name) => !name.startsWith("deno-floor")).map((
  broker,
) => ({
  label: broker,
  broker,
  storage: "memory",
}));

/**
 * The idle scenario also measures Deno's floor (`_deno_floor.ts`) on `Deno.Conn` and on `node:net`: how close ours
 * is to what Deno costs.
 */
const IDLE: readonly Contender[] = [
  ...IN_MEMORY,
  ...(["deno-floor", "deno-floor-net"] as const).map((broker) => ({
    label: broker,
    broker,
    storage: "memory" as const,
  })),
];

/** 50,000 connections: aedes is left out (it takes one port here, and 20 KiB a connection would take long). */
const IDLE_MANY: readonly Contender[] = IDLE.filter((c) => c.broker !== "aedes");

/**
 * Connections per listening port in the idle scenarios: one source address (127.0.0.1) reaches one port through
 * at most the ephemeral port range (32768-60999 by default, 28,232 ports), so 50,000 take two ports.
 */
export const CONNECTIONS_PER_PORT = 25_000;

/**
 * Ours with SQLite first (the figure each row shows), against ours in memory (the cost of storage) and Mosquitto
 * with its persistence on. aedes is left out: it keeps its state in memory unless given a store that needs a
 * database server.
 */
const WITH_STORAGE: readonly Contender[] = [
  { label: "ours-sqlite", broker: "ours", storage: "disk" },
  { label: "ours", broker: "ours", storage: "memory" },
  { label: "mosquitto (persistence true)", broker: "mosquitto", storage: "disk" },
];

interface ScenarioSpec {
  readonly scenario: LoadScenario;
  readonly group: string;
  /** The brokers it runs against; the first is the "ours" column of its rows. */
  readonly contenders: readonly Contender[];
  readonly metrics: readonly Metric[];
  /** A fresh broker process for every run (the idle scenario reads RSS growth). */
  readonly freshBroker: boolean;
  /** TCP listeners per broker. @default {1} */
  readonly listeners?: number;
  run(peer: Peer, tag: string, onWindow: WindowHook): Promise<RunOutcome>;
}

const GROUP_QOS0 = "Load: QoS 0 throughput";
const GROUP_QOS12 = "Load: QoS 1 and QoS 2 end to end";
const GROUP_LATENCY = "Load: latency";
const GROUP_IDLE = "Load: idle connections";
const GROUP_IDLE_MANY = "Load: 50,000 idle connections";
const GROUP_STORAGE = "Load: QoS 1 with storage (SQLite against memory)";

/** Connections the generator keeps for itself (listeners, brokers' pipes, other scenarios' stragglers). */
const FD_RESERVE = 200;

function flowCheck(
  result: FlowResult,
  promise: "all" | "none",
): { check: string; failure?: string; counts: NonNullable<RunOutcome["counts"]> } {
  const counts = { delivered: result.received, expected: result.expected, duplicates: result.duplicates };
  const lost = result.expected - result.received;
  let check = `${formatNumber(result.received)}/${formatNumber(result.expected)} delivered`;
  if (promise === "none") check += lost > 0 ? ` (${formatNumber(lost)} lost)` : " (0 lost)";
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
  return failure === undefined ? { check, counts } : { check, failure, counts };
}

/** The idle scenarios: `count` connections opened 100 at a time and left idle, on a fresh broker each run. */
function idleSpec(
  scenario: LoadScenario,
  group: string,
  count: number,
  perPort: number,
  contenders: readonly Contender[],
): ScenarioSpec {
  const n = formatNumber(count);
  const listeners = Math.ceil(count / perPort);
  return {
    scenario,
    group,
    metrics: [
      { key: "connectRate", name: `connect rate, ${n} connections`, unit: "conn/s", higherIsBetter: true },
      { key: "cpuUs", name: `broker CPU per connect (${n})`, unit: "µs", higherIsBetter: false },
      { key: "kib", name: `broker RSS per idle connection (${n})`, unit: "KiB", higherIsBetter: false },
      {
        key: "kibMarginal",
        name: `broker RSS per idle connection, marginal (${formatNumber(Math.floor(count / 2))} to ${n})`,
        unit: "KiB",
        higherIsBetter: false,
      },
      { key: "baseMiB", name: "broker RSS with no client", unit: "MiB", higherIsBetter: false },
    ],
    contenders,
    freshBroker: true,
    listeners,
    async run(peer, tag, onWindow) {
      const result: IdleResult = await idleConnections({
        port: peer.port,
        ports: peer.ports,
        tag,
        count,
        rssKiB: () => peer.rssKiB(),
        cpuSeconds: () => cpuSecondsPrecise(peer.pid),
        onWindow,
      });
      let check = `${formatNumber(result.connected)}/${formatNumber(result.attempted)} connected, RSS ${
        formatNumber(result.rssBeforeKiB)
      }→${formatNumber(result.rssHalfKiB)}→${formatNumber(result.rssAfterKiB)} KiB`;
      if (result.error !== undefined) check += `, first failure: ${result.error}`;
      const failure = result.connected < count
        ? `only ${result.connected} of ${count} connections succeeded: ${result.error}`
        : undefined;
      return {
        figures: {
          connectRate: result.connectRate,
          kib: result.kibPerConnection,
          kibMarginal: result.kibPerConnectionMarginal,
          baseMiB: result.rssBeforeKiB / 1024,
          ...(result.cpuPerConnectUs === undefined ? {} : { cpuUs: result.cpuPerConnectUs }),
        },
        check,
        ...(failure === undefined ? {} : { failure }),
      };
    },
  };
}

function specs(options: Required<Omit<LoadBenchOptions, "log" | "scenarios" | "peers">>): ScenarioSpec[] {
  const base = { warmupMs: options.warmupMs, durationMs: options.durationMs, drainMs: 5000 };
  const timed = (onWindow: WindowHook): Timing => ({ ...base, onWindow });
  const rate = (name: string, unit: string): Metric[] => [{ key: "rate", name, unit, higherIsBetter: true }];
  return [
    {
      scenario: "fan-in",
      group: GROUP_QOS0,
      metrics: rate("fan-in QoS 0: 4 publishers → 1 subscriber, 64 B", "msgs/s"),
      contenders: IN_MEMORY,
      freshBroker: false,
      async run(peer, tag, onWindow) {
        const result = await fanIn({ port: peer.port, tag, timing: timed(onWindow) });
        return { figures: { rate: result.rate }, ...flowCheck(result, "none") };
      },
    },
    {
      scenario: "fan-out",
      group: GROUP_QOS0,
      metrics: rate("fan-out QoS 0: 1 publisher → 100 subscribers, 64 B", "deliveries/s"),
      contenders: IN_MEMORY,
      freshBroker: false,
      async run(peer, tag, onWindow) {
        const result = await fanOut({ port: peer.port, tag, timing: timed(onWindow) });
        return { figures: { rate: result.rate }, ...flowCheck(result, "none") };
      },
    },
    ...([1, 2] as const).map((qos): ScenarioSpec => ({
      scenario: qos === 1 ? "qos1" : "qos2",
      group: GROUP_QOS12,
      metrics: rate(`QoS ${qos} end to end, 100 in flight, 64 B`, "msgs/s"),
      contenders: IN_MEMORY,
      freshBroker: false,
      async run(peer, tag, onWindow) {
        const result = await qosEndToEnd({ port: peer.port, tag, timing: timed(onWindow), qos });
        return { figures: { rate: result.rate }, ...flowCheck(result, "all") };
      },
    })),
    {
      scenario: "latency",
      group: GROUP_LATENCY,
      metrics: [
        {
          key: "p50",
          name: `latency p50, QoS 0 at ${formatNumber(options.latencyRate)} msgs/s`,
          unit: "µs",
          higherIsBetter: false,
        },
        {
          key: "p99",
          name: `latency p99, QoS 0 at ${formatNumber(options.latencyRate)} msgs/s`,
          unit: "µs",
          higherIsBetter: false,
        },
      ],
      contenders: IN_MEMORY,
      freshBroker: false,
      async run(peer, tag, onWindow) {
        const result: LatencyResult = await latency({
          port: peer.port,
          tag,
          timing: timed(onWindow),
          rate: options.latencyRate,
        });
        let check = `${formatNumber(result.samples)} samples, ${formatNumber(result.received)}/${
          formatNumber(result.sent)
        } delivered`;
        if (result.error !== undefined) check += `, error: ${result.error}`;
        const failure = result.samples === 0 ? result.error ?? "no message arrived" : undefined;
        return {
          figures: { p50: result.p50Us, p99: result.p99Us },
          check,
          counts: { delivered: result.received, expected: result.sent, duplicates: 0 },
          ...(failure === undefined ? {} : { failure }),
        };
      },
    },
    idleSpec("idle", GROUP_IDLE, options.idleConnections, options.connectionsPerPort, IDLE),
    idleSpec("idle-50k", GROUP_IDLE_MANY, options.manyIdleConnections, options.connectionsPerPort, IDLE_MANY),
    {
      scenario: "qos1-durable",
      group: GROUP_STORAGE,
      contenders: WITH_STORAGE,
      metrics: rate("QoS 1 end to end into a persistent session, 100 in flight, 64 B", "msgs/s"),
      freshBroker: false,
      async run(peer, tag, onWindow) {
        const result = await qosEndToEnd({
          port: peer.port,
          tag,
          timing: timed(onWindow),
          qos: 1,
          persistentSubscriber: true,
        });
        return { figures: { rate: result.rate }, ...flowCheck(result, "all") };
      },
    },
    {
      scenario: "retained-durable",
      group: GROUP_STORAGE,
      contenders: WITH_STORAGE,
      metrics: rate("retained QoS 1 publishes over 1,000 topics, 100 in flight, 64 B", "msgs/s"),
      freshBroker: false,
      async run(peer, tag, onWindow) {
        const result = await retainedPublish({ port: peer.port, tag, timing: timed(onWindow), topics: 1000 });
        return { figures: { rate: result.rate }, ...flowCheck(result, "all") };
      },
    },
  ];
}

/**
 * Runs the load scenarios against our broker and the available peers and returns one group per kind of
 * scenario (QoS 0 throughput, QoS 1/2 end to end, latency, idle connections).
 *
 * @example
 * ```ts ignore
 * import { loadBench } from "./load_bench.ts";
 * import { renderGroup } from "./_report.ts";
 * for (const group of await loadBench({ runs: 3, scenarios: ["fan-in"] })) console.log(renderGroup(group));
 * ```
 */
export async function loadBench(options: LoadBenchOptions = {}): Promise<BenchGroup[]> {
  const log = options.log ?? ((line: string) => console.error(line));
  const runs = Math.max(1, options.runs ?? 3);
  const began = performance.now();
  const wanted = options.scenarios ?? LOAD_SCENARIOS;
  const chosen = new Set<PeerName>(["ours", ...(options.peers ?? DEFAULT_PEERS)]);
  let idleCount = options.idleConnections ?? 5000;
  let manyIdleCount = options.manyIdleConnections ?? 50_000;
  // The generator holds one end of every connection, the broker (a child, which inherits the limit) the other.
  const limits = await raiseOpenFileLimit(wanted.includes("idle-50k") ? manyIdleCount + FD_RESERVE : 0);
  const setupNotes: string[] = [`Open-file limit (ulimit -n) ${limits.soft}, hard ${limits.hard}.`];
  const capped = (scenario: LoadScenario, count: number): number => {
    if (!wanted.includes(scenario) || limits.soft - FD_RESERVE >= count) return count;
    setupNotes.push(
      `The open-file limit is ${limits.soft} (hard ${limits.hard}), so the ${scenario} scenario uses ${
        limits.soft - FD_RESERVE
      } connections instead of ${count}.`,
    );
    return Math.max(1, limits.soft - FD_RESERVE);
  };
  idleCount = capped("idle", idleCount);
  manyIdleCount = capped("idle-50k", manyIdleCount);

  const all = specs({
    runs,
    warmupMs: options.warmupMs ?? 500,
    durationMs: options.durationMs ?? 2000,
    latencyRate: options.latencyRate ?? 5000,
    idleConnections: idleCount,
    manyIdleConnections: manyIdleCount,
    connectionsPerPort: options.connectionsPerPort ?? CONNECTIONS_PER_PORT,
  }).filter((spec) => wanted.includes(spec.scenario));
  // Only the brokers some chosen scenario runs are looked for (aedes needs an npm install).
  const needed = PEER_NAMES.filter((name) =>
    chosen.has(name) && all.some((spec) => spec.contenders.some((c) => c.broker === name))
  );
  const missing = await unavailablePeers(needed);
  for (const [name, reason] of missing) setupNotes.push(`${name} not measured: ${reason}.`);

  const rows = new Map<string, BenchRow[]>();
  const notes = new Map<string, string[]>();
  for (const spec of all) {
    const lineup = spec.contenders.filter((c) => chosen.has(c.broker) && !missing.has(c.broker));
    const labels = lineup.map((c) => c.label);
    const base = labels[0]!;
    const outcomes = new Map<string, RunOutcome[]>(labels.map((label) => [label, []]));
    const loadAtStart = await loadAverage();
    const running = new Map<string, Peer>();
    const crashes: string[] = [];
    const brokerFor = async (contender: Contender): Promise<Peer> => {
      const { label } = contender;
      const current = running.get(label);
      if (current !== undefined && current.alive() && !spec.freshBroker) return current;
      if (current !== undefined) {
        if (!current.alive()) {
          crashes.push(`${label} exited during ${spec.scenario}: ${current.stderrTail()}`);
        }
        await current.stop();
      }
      const peer = await startPeer(contender.broker, {
        storage: contender.storage,
        ...(spec.listeners === undefined ? {} : { listeners: spec.listeners }),
      });
      running.set(label, peer);
      return peer;
    };
    try {
      for (let run = 0; run < runs; run++) {
        // Rotate who goes first so that drift on the machine does not favour one broker.
        const order = lineup.map((_, i) => (i + run) % lineup.length);
        for (const index of order) {
          const contender = lineup[index]!;
          const name = contender.label;
          const tag = `${spec.scenario.replace("-", "").slice(0, 5)}${run}${name.slice(0, 2)}${index}`;
          let outcome: RunOutcome;
          try {
            const peer = await brokerFor(contender);
            const meter = cpuMeter(peer.pid);
            outcome = await spec.run(peer, tag, meter.onWindow);
            const cpu = meter.shares();
            if (cpu !== undefined) {
              outcome = {
                ...outcome,
                figures: { ...outcome.figures, brokerCpu: cpu.broker, generatorCpu: cpu.generator },
              };
            }
            if (!peer.alive()) {
              outcome = {
                ...outcome,
                failure: `the broker process exited: ${peer.stderrTail() || "no output"}`,
              };
            }
          } catch (error) {
            outcome = { figures: {}, check: "did not run", failure: (error as Error).message };
          }
          if (spec.freshBroker) {
            await running.get(name)?.stop();
            running.delete(name);
          }
          outcomes.get(name)!.push(outcome);
          log(
            `[${((performance.now() - began) / 1000).toFixed(0)} s] load ${spec.scenario} run ${
              run + 1
            }/${runs} ${name}: ${
              Object.entries(outcome.figures).map(([k, v]) => `${k}=${formatNumber(v, 1)}`).join(" ")
            } (${outcome.check})${outcome.failure === undefined ? "" : ` FAILED: ${outcome.failure}`}`,
          );
        }
      }
    } finally {
      await Promise.all([...running.values()].map((peer) => peer.stop()));
    }

    const medianOf = (name: string, key: string): number | undefined => {
      const values = outcomes.get(name)!.map((o) => o.figures[key]).filter((v): v is number =>
        v !== undefined && Number.isFinite(v)
      );
      return values.length === 0 ? undefined : median(values);
    };
    // A run that broke a promise (a QoS 1/2 message lost, a broker that died) is flagged in the row itself.
    const failedMark = (name: string) => {
      const failed = outcomes.get(name)!.filter((o) => o.failure !== undefined).length;
      return failed === 0 ? "" : ` (${name} FAILED ${failed}/${runs} runs)`;
    };
    const groupRows = rows.get(spec.group) ?? [];
    for (const metric of spec.metrics) {
      const ours = medianOf(base, metric.key) ?? 0;
      const versus = labels.slice(1);
      if (versus.length === 0) {
        groupRows.push({
          name: metric.name + failedMark(base),
          unit: metric.unit,
          ours,
          higherIsBetter: metric.higherIsBetter,
        });
      }
      for (const name of versus) {
        const value = medianOf(name, metric.key);
        // When "ours" is not plain ours (SQLite), the row says which of ours it shows.
        const which = base === "ours" ? "" : `, ${base} vs ${name}`;
        groupRows.push({
          name: metric.name + which + failedMark(base) + failedMark(name),
          unit: metric.unit,
          ours,
          higherIsBetter: metric.higherIsBetter,
          ...(value === undefined ? {} : { peer: { name, value } }),
        });
      }
    }
    rows.set(spec.group, groupRows);
    const groupNotes = notes.get(spec.group) ?? [];
    const perRun = labels.map((name) => {
      const list = outcomes.get(name)!;
      const figures = spec.metrics.map((metric) =>
        list.map((o) =>
          o.figures[metric.key] === undefined
            ? "-"
            : formatNumber(o.figures[metric.key]!, o.figures[metric.key]! < 100 ? 2 : 0)
        )
          .join("/")
      ).join(" and ");
      const failed = list.filter((o) => o.failure !== undefined);
      const counted = list.filter((o) => o.counts !== undefined);
      let checks: string;
      if (failed.length > 0) {
        checks = `FAILED ${failed.length}/${list.length} runs: ${failed.map((o) => o.failure).join("; ")}`;
      } else if (counted.length === list.length && list.length > 0) {
        const sum = (key: "delivered" | "expected" | "duplicates") =>
          counted.reduce((total, o) => total + o.counts![key], 0);
        const lost = sum("expected") - sum("delivered");
        checks = `${formatNumber(sum("delivered"))} of ${formatNumber(sum("expected"))} delivered, ${
          formatNumber(lost)
        } lost${sum("duplicates") > 0 ? `, ${formatNumber(sum("duplicates"))} duplicates` : ""}`;
      } else {
        checks = list.map((o) => o.check).join("; ");
      }
      const cpu = (key: string) => {
        const values = list.map((o) => o.figures[key]).filter((v): v is number => v !== undefined);
        return values.length === 0 ? "-" : `${Math.round(median(values))}%`;
      };
      // Throughput per second of broker CPU: what the broker would do with a core of its own, so it holds up
      // better than the raw rate when other work shares the machine.
      const main = spec.metrics[0]!;
      const perCpu = list.flatMap((o) => {
        const rate = o.figures[main.key];
        const brokerCpu = o.figures.brokerCpu;
        return main.higherIsBetter && rate !== undefined && brokerCpu !== undefined && brokerCpu > 0
          ? [rate / (brokerCpu / 100)]
          : [];
      });
      const efficiency = perCpu.length === 0
        ? ""
        : `, ${formatNumber(median(perCpu))} ${main.unit.split("/")[0]} per broker CPU-second`;
      return `${name} ${figures} (${checks}; CPU broker ${cpu("brokerCpu")}, generator ${
        cpu("generatorCpu")
      }${efficiency})`;
    });
    groupNotes.push(
      `${spec.scenario} runs (load average ${loadAtStart.toFixed(1)} at start): ${perRun.join(" · ")}`,
    );
    for (const contender of lineup.filter((c) => c.broker === "ours")) {
      const failed = outcomes.get(contender.label)!.filter((o) => o.failure !== undefined).length;
      if (failed > 0) {
        groupNotes.push(
          `**Our broker (${contender.label}) failed ${spec.scenario} in ${failed} of ${runs} runs.**`,
        );
      }
    }
    groupNotes.push(...crashes);
    notes.set(spec.group, groupNotes);
  }

  const env = await environmentNotes();
  const v8Flags = (await brokerTaskV8Flags()).join(" ");
  const method = [
    `Medians of ${runs} runs per broker, runs interleaved; ratio above 1.00x means ours is better. ` +
    `Each run: ${options.warmupMs ?? 500} ms warm-up, then a ${
      options.durationMs ?? 2000
    } ms measured window.`,
    "Load generator: this Deno process on one core (raw Deno.connect sockets, MQTT 3.1.1, pre-encoded PUBLISH " +
    "batches of 250 per write for fan-in and 20 for fan-out, a Framer over a reused 64 KiB read buffer, PUBLISH " +
    "counted from the header and payload stamp without decoding). Each broker is its own process on the other " +
    `core: ours via \`deno run ${v8Flags}${v8Flags === "" ? "" : " "}broker.ts --persistence memory ` +
    "--max-inflight 65535 --max-queued 0` (V8 flags as in the `broker` task), Mosquitto " +
    "with persistence off and `max_inflight_messages 0`, `max_queued_messages 0` (no inflight or queue limits " +
    "for either), aedes 1.2.0 with its defaults on Node (the runtime it is built for); the storage scenarios say how they " +
    "differ.",
    "QoS 0 publishers stay at most 2,500 messages (fan-in, per publisher) or 200 messages (fan-out) ahead of " +
    "what their subscribers saw, so the figures are sustained rates, not buffering.",
    ...env,
    ...setupNotes,
  ];
  const groups: BenchGroup[] = [];
  for (const [title, groupRows] of rows) {
    const extra = groups.length === 0 ? method : [];
    const groupNotes = notes.get(title) ?? [];
    if (title === GROUP_QOS12) {
      groupNotes.unshift(
        "A message counts when the publisher got its PUBACK/PUBCOMP and the subscriber (same QoS, acking " +
          "everything) received it; every run must deliver every message exactly as the QoS promises.",
      );
    }
    if (title === GROUP_LATENCY) {
      groupNotes.unshift(
        "One publisher writes what is due every millisecond, each message stamped with performance.now(); " +
          "latency is the subscriber's read completion minus the stamp (both in this process).",
      );
    }
    if (title === GROUP_STORAGE) {
      groupNotes.unshift(
        "ours-sqlite is `broker.ts --persistence sqlite:DIR/broker.db` on a fresh temporary directory (WAL, " +
          "synchronous NORMAL: what a PUBACK covers survives kill -9, not a power loss); it writes durable state " +
          "in one transaction per event-loop turn and sends PUBACK only after the commit holding the message. " +
          "ours is the same broker with --persistence memory; the ratio against it is the cost of storage.",
        "mosquitto (persistence true): `persistence_location DIR/`, autosave_interval left at its 1800 s. " +
          "Mosquitto 2.0 keeps its state in memory and writes mosquitto.db only on autosave and at shutdown, so " +
          "it does not commit per message and is not equally durable: a kill -9 loses all it took since the " +
          "last save. aedes is not measured here (its persistence needs a Redis or MongoDB server).",
        "qos1-durable: like qos1, but the subscriber connects with Clean Session 0 and a fixed client id, so " +
          "every message is queued in its session (written to storage before the publisher's PUBACK, deleted at " +
          "the subscriber's PUBACK); the session is discarded after each run. Every message must arrive.",
        "retained-durable: no subscriber during the window; message n goes retained to topic n mod 1,000, so " +
          "each PUBLISH replaces a stored retained message, and the rate counts PUBACKs. Afterwards a new " +
          'subscriber must receive each topic\'s last message ("delivered" counts topics that held it).',
      );
    }
    if (title === GROUP_IDLE || title === GROUP_IDLE_MANY) {
      groupNotes.unshift(
        "A fresh broker process per run; MQTT 3.1.1 CONNECT (keep alive 60 s, clean session) on raw sockets, " +
          '100 handshakes in flight; RSS is VmRSS from /proc/PID/status before the first CONNECT ("with no ' +
          'client"), 500 ms after the first half\'s last CONNACK and 500 ms after the last; "marginal" is the ' +
          "second half's growth per connection (without the fixed costs of the first ones: compiled code, the " +
          "young generation grown to its maximum); broker CPU is the run time of its threads (/proc/PID/task/*/schedstat) over the " +
          "connect phases divided by the connections. The load generator shares the machine, so " +
          "the connect rate is bounded by it too (see its CPU share).",
      );
      if (title === GROUP_IDLE_MANY) {
        const ports = Math.ceil(manyIdleCount / (options.connectionsPerPort ?? CONNECTIONS_PER_PORT));
        groupNotes.unshift(
          `Each broker listens on ${ports} port${
            ports === 1 ? "" : "s"
          } on 127.0.0.1 and the connections go ` +
            "round robin: one source address reaches one port through " +
            "at most the ephemeral port range (/proc/sys/net/ipv4/ip_local_port_range, 28,232 ports by default).",
        );
      }
    }
    groups.push({ title, rows: groupRows, notes: [...groupNotes, ...extra] });
  }
  return groups;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      runs: { type: "string" },
      duration: { type: "string" },
      peers: { type: "string" },
      connections: { type: "string" },
      "many-connections": { type: "string" },
    },
  });
  const known: readonly string[] = [...LOAD_SCENARIOS, ...EXTRA_LOAD_SCENARIOS];
  const scenarios = positionals.length === 0 ? undefined : positionals.map((name) => {
    if (!known.includes(name)) {
      console.error(`unknown scenario "${name}"; choose from ${known.join(", ")}`);
      Deno.exit(2);
    }
    return name as LoadScenario;
  });
  const options: LoadBenchOptions = {};
  if (values.runs !== undefined) options.runs = Number(values.runs);
  if (values.duration !== undefined) options.durationMs = Number(values.duration);
  if (values.peers !== undefined) options.peers = values.peers.split(",") as PeerName[];
  if (values.connections !== undefined) options.idleConnections = Number(values.connections);
  if (values["many-connections"] !== undefined) {
    options.manyIdleConnections = Number(values["many-connections"]);
  }
  if (scenarios !== undefined) options.scenarios = scenarios;
  for (const group of await loadBench(options)) console.log(renderGroup(group) + "\n");
}
