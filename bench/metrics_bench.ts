/**
 * Metrics benchmark (issue 18): what `/metrics` costs the broker.
 *
 * 1. One `renderMetrics()` with 10,000 connected clients (in-memory streams, one subscription each): broker time
 *    per scrape, target under 50 ms; also `brokerGauges()` alone and an empty broker.
 * 2. Load throughput of the broker with a scrape every second against the same broker not scraped: fan-in
 *    QoS 0 and QoS 1 end to end, as in the load benchmark, on a broker process (`_metrics_broker.ts`); runs
 *    interleaved, medians. Target: within 3%. Also the broker's CPU time per message in both modes, which a busy
 *    machine disturbs less than the rate.
 * 3. The same two scenarios on two `broker.ts` processes started as the load benchmark starts ours: one with an
 *    admin listener (`--admin-port 0`: admin API, dashboard, stats history, event counting) scraped at its
 *    `/metrics` every second, one without; runs interleaved, medians. This is the issue's figure: throughput
 *    with the http listener on and scraped, against the broker without it. Target: within 3%.
 *
 * Run alone: `deno run -A bench/metrics_bench.ts [--runs N] [--idle N]` (`--idle`: idle clients on the load runs'
 * broker, so each scrape there walks them too).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type BenchGroup, type BenchRow, median, renderGroup } from "./_report.ts";
import { fanIn, type FlowResult, qosEndToEnd, type Timing } from "./_load_client.ts";
import {
  brokerTaskV8Flags,
  cpuMeter,
  environmentNotes,
  loadAverage,
  type Peer,
  startPeer,
} from "./_peers.ts";
import { connectIdle } from "./_idle_clients.ts";
import { Broker } from "../lib/broker/broker.ts";
import { SILENT_LOGGER } from "../lib/broker/logger.ts";
import { brokerGauges } from "../lib/broker/gauges.ts";
import { renderMetrics } from "../lib/admin/metrics/render.ts";

/** Options for {@linkcode metricsBench}. */
export interface MetricsBenchOptions {
  /** Runs per load figure (each mode). @default {5} */
  runs?: number;
  /** Connected clients for the scrape cost. @default {10000} */
  clients?: number;
  /** Idle clients on the broker of the load runs (0: as the load benchmark). @default {0} */
  idle?: number;
  /** Progress lines. @default {console.error} */
  log?: (line: string) => void;
}

const SCRAPE_REPEATS = 21;

/** Median ms of `fn` over {@linkcode SCRAPE_REPEATS} calls after three warm-up calls. */
function timeMs(fn: () => unknown): number {
  for (let i = 0; i < 3; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < SCRAPE_REPEATS; i++) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  return median(times);
}

/** The cost of one scrape, in this process, with `clients` connected (the first metrics group). */
export async function scrapeCost(clients: number, log: (line: string) => void): Promise<BenchGroup> {
  const broker = new Broker({ sysInterval: 0, logger: SILENT_LOGGER, maxConnectionsPerAddress: Infinity });
  await broker.start();
  try {
    const empty = timeMs(() => renderMetrics(broker));
    log(`metrics: connecting ${clients} in-memory clients…`);
    const ends = await connectIdle(broker, clients);
    const full = timeMs(() => renderMetrics(broker));
    const gauges = timeMs(() => brokerGauges(broker));
    const bytes = renderMetrics(broker).length;
    const rows: BenchRow[] = [
      {
        name: `renderMetrics(), ${clients.toLocaleString("en-US")} connected clients`,
        unit: "ms",
        ours: full,
        higherIsBetter: false,
      },
      {
        name: `brokerGauges() alone, ${clients.toLocaleString("en-US")} clients`,
        unit: "ms",
        ours: gauges,
        higherIsBetter: false,
      },
      { name: "renderMetrics(), no client", unit: "ms", ours: empty, higherIsBetter: false },
    ];
    for (const end of ends) end.close();
    return {
      title: "Metrics: broker time of one scrape",
      rows,
      notes: [
        `Median of ${SCRAPE_REPEATS} calls after 3 warm-up calls, in one process; the exposition is ${bytes} bytes. ` +
        "Each client is an MQTT 3.1.1 session over an in-memory stream with one subscription (one in ten shared). " +
        "Target: under 50 ms with 10,000 clients.",
      ],
    };
  } finally {
    await broker.close();
  }
}

interface MetricsBroker {
  readonly mqtt: number;
  readonly http: number;
  readonly pid: number;
  stop(): Promise<void>;
}

async function startMetricsBroker(idle: number): Promise<MetricsBroker> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      ...await brokerTaskV8Flags(),
      new URL("./_metrics_broker.ts", import.meta.url).pathname,
      "--idle",
      String(idle),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`metrics broker exited before it was ready: ${text}`);
    text += value;
  }
  reader.releaseLock();
  const ready = JSON.parse(text.slice(0, text.indexOf("\n"))) as { mqtt: number; http: number };
  return {
    mqtt: ready.mqtt,
    http: ready.http,
    pid: child.pid,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // gone
      }
      await child.stdout.cancel().catch(() => {});
      await child.status;
    },
  };
}

/** Fetches `/metrics` every second until stopped; counts the scrapes. */
function scraper(port: number): { stop(): Promise<number> } {
  let scrapes = 0;
  let pending: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    pending = pending.then(async () => {
      const response = await fetch(`http://127.0.0.1:${port}/metrics`);
      await response.text();
      scrapes++;
    });
  }, 1000);
  return {
    async stop() {
      clearInterval(timer);
      await pending;
      return scrapes;
    },
  };
}

/** Throughput with a scrape every second against without, same broker process, runs interleaved. */
async function loadWithScrapes(runs: number, idle: number, log: (line: string) => void): Promise<BenchGroup> {
  const broker = await startMetricsBroker(idle);
  const timed = (meter?: ReturnType<typeof cpuMeter>): Timing => ({
    warmupMs: 500,
    durationMs: 3000,
    drainMs: 5000,
    ...(meter === undefined ? {} : { onWindow: meter.onWindow }),
  });
  type Run = (tag: string, meter?: ReturnType<typeof cpuMeter>) => Promise<FlowResult>;
  const scenarios: { name: string; run: Run }[] = [
    {
      name: "fan-in QoS 0: 4 publishers → 1 subscriber, 64 B",
      run: (tag, meter) => fanIn({ port: broker.mqtt, tag, timing: timed(meter) }),
    },
    {
      name: "QoS 1 end to end, 100 in flight, 64 B",
      run: (tag, meter) => qosEndToEnd({ port: broker.mqtt, tag, timing: timed(meter), qos: 1 }),
    },
  ];
  const rows: BenchRow[] = [];
  let scrapes = 0;
  let renders: number[] = [];
  try {
    for (const scenario of scenarios) {
      const plain: number[] = [];
      const scraped: number[] = [];
      const cpuPlain: number[] = [];
      const cpuScraped: number[] = [];
      await scenario.run(`mw${rows.length}`); // warm-up run: connections, JIT; not counted
      for (let r = 0; r < runs; r++) {
        for (const scrape of r % 2 === 0 ? [false, true] : [true, false]) {
          const tag = `m${r}${scrape ? "s" : "p"}${rows.length}`;
          const running = scrape ? scraper(broker.http) : undefined;
          const meter = cpuMeter(broker.pid);
          const result = await scenario.run(tag, meter);
          if (running !== undefined) scrapes += await running.stop();
          (scrape ? scraped : plain).push(result.rate);
          const share = meter.shares()?.broker;
          if (share !== undefined && result.rate > 0) {
            (scrape ? cpuScraped : cpuPlain).push((share / 100) * 1e6 / result.rate); // µs per message
          }
          log(
            `metrics: ${scenario.name}, run ${r + 1}${scrape ? " scraped" : ""}: ${
              Math.round(result.rate)
            }/s`,
          );
        }
      }
      rows.push({
        name: `${scenario.name}, scraped every 1 s`,
        unit: "msgs/s",
        ours: median(scraped),
        peer: { name: "not scraped", value: median(plain) },
        higherIsBetter: true,
      });
      if (cpuPlain.length > 0 && cpuScraped.length > 0) {
        rows.push({
          name: `${scenario.name}: broker CPU per message, scraped every 1 s`,
          unit: "µs",
          ours: median(cpuScraped),
          peer: { name: "not scraped", value: median(cpuPlain) },
          higherIsBetter: false,
        });
      }
    }
    const response = await fetch(`http://127.0.0.1:${broker.http}/scrape-times`);
    renders = await response.json() as number[];
  } finally {
    await broker.stop();
  }
  if (renders.length > 0) {
    rows.push({
      name: `renderMetrics() under that load, ${idle.toLocaleString("en-US")} idle clients`,
      unit: "ms",
      ours: median(renders),
      higherIsBetter: false,
    });
  }
  return {
    title: "Metrics: load throughput with a scrape every second",
    rows,
    notes: [
      `Medians of ${runs} runs per mode (3 s windows), scraped and not scraped interleaved on the same broker ` +
      `process (\`bench/_metrics_broker.ts\`: the load benchmark's settings, ${
        idle.toLocaleString("en-US")
      } ` +
      `idle in-memory clients, and a Deno.serve answering /metrics); ${scrapes} scrapes in all. Target: the ` +
      "throughput ratio within 3% of 1.00.",
      `load average ${await loadAverage()}`,
      ...await environmentNotes(),
    ],
  };
}

/**
 * Throughput of `broker.ts` with its admin listener on and `/metrics` scraped every second, against `broker.ts`
 * without one: two processes, runs interleaved.
 */
export async function loadWithAdminListener(runs: number, log: (line: string) => void): Promise<BenchGroup> {
  const plain = await startPeer("ours");
  let admin: Peer | undefined;
  try {
    admin = await startPeer("ours", { adminListener: true });
    const adminPort = admin.adminPort!;
    const timed = (meter?: ReturnType<typeof cpuMeter>): Timing => ({
      warmupMs: 500,
      durationMs: 3000,
      drainMs: 5000,
      ...(meter === undefined ? {} : { onWindow: meter.onWindow }),
    });
    type Run = (port: number, tag: string, meter?: ReturnType<typeof cpuMeter>) => Promise<FlowResult>;
    const scenarios: { name: string; run: Run }[] = [
      {
        name: "fan-in QoS 0: 4 publishers → 1 subscriber, 64 B",
        run: (port, tag, meter) => fanIn({ port, tag, timing: timed(meter) }),
      },
      {
        name: "QoS 1 end to end, 100 in flight, 64 B",
        run: (port, tag, meter) => qosEndToEnd({ port, tag, timing: timed(meter), qos: 1 }),
      },
    ];
    const rows: BenchRow[] = [];
    let scrapes = 0;
    for (const scenario of scenarios) {
      const rates = { on: [] as number[], off: [] as number[] };
      const cpu = { on: [] as number[], off: [] as number[] };
      for (const peer of [plain, admin]) await scenario.run(peer.port, `aw${rows.length}${peer.pid}`); // warm-up
      for (let r = 0; r < runs; r++) {
        for (const on of r % 2 === 0 ? [false, true] : [true, false]) {
          const peer = on ? admin : plain;
          const running = on ? scraper(adminPort) : undefined;
          const meter = cpuMeter(peer.pid);
          const result = await scenario.run(peer.port, `a${r}${on ? "on" : "off"}${rows.length}`, meter);
          if (running !== undefined) scrapes += await running.stop();
          rates[on ? "on" : "off"].push(result.rate);
          const share = meter.shares()?.broker;
          if (share !== undefined && result.rate > 0) {
            cpu[on ? "on" : "off"].push((share / 100) * 1e6 / result.rate);
          }
          log(
            `metrics: ${scenario.name}, run ${r + 1}${on ? " admin listener" : ""}: ${
              Math.round(result.rate)
            }/s`,
          );
        }
      }
      rows.push({
        name: `${scenario.name}, admin listener on, scraped every 1 s`,
        unit: "msgs/s",
        ours: median(rates.on),
        peer: { name: "no admin listener", value: median(rates.off) },
        higherIsBetter: true,
      });
      if (cpu.on.length > 0 && cpu.off.length > 0) {
        rows.push({
          name: `${scenario.name}: broker CPU per message, admin listener on, scraped every 1 s`,
          unit: "µs",
          ours: median(cpu.on),
          peer: { name: "no admin listener", value: median(cpu.off) },
          higherIsBetter: false,
        });
      }
    }
    return {
      title: "Metrics: broker.ts with its admin listener on and scraped, against broker.ts without it",
      rows,
      notes: [
        `Medians of ${runs} runs per broker (3 s windows), the two broker.ts processes interleaved (started as the ` +
        `load benchmark starts ours, one with --admin-port 0); ${scrapes} scrapes of /metrics in all. Target: the ` +
        "throughput ratio within 3% of 1.00.",
        `load average ${await loadAverage()}`,
      ],
    };
  } finally {
    await admin?.stop();
    await plain.stop();
  }
}

/** The three metrics groups. */
export async function metricsBench(options: MetricsBenchOptions = {}): Promise<BenchGroup[]> {
  const log = options.log ?? ((line: string) => console.error(line));
  const clients = options.clients ?? 10_000;
  const cost = await scrapeCost(clients, log);
  const load = await loadWithScrapes(options.runs ?? 5, options.idle ?? 0, log);
  const listener = await loadWithAdminListener(options.runs ?? 5, log);
  return [cost, load, listener];
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { runs: { type: "string" }, idle: { type: "string" } },
  });
  const options: MetricsBenchOptions = {};
  if (values.runs !== undefined) options.runs = Number(values.runs);
  if (values.idle !== undefined) options.idle = Number(values.idle);
  for (const group of await metricsBench(options)) console.log(`${renderGroup(group)}\n`);
}
