/**
 * Router benchmark: PUBLISH matching over 100,000 subscriptions and subscribe/unsubscribe churn, for
 * {@linkcode TopicRouter} and npm:qlobber (the matcher aedes uses), on the same data in the same run.
 *
 * Run alone: `deno run --allow-read --allow-env bench/router_bench.ts`
 *
 * @module
 */

import { Qlobber, QlobberDedup } from "qlobber";
import QlobberSubModule from "qlobber/aedes/qlobber-sub.js";
import { type BenchGroup, type BenchRow, median, renderGroup } from "./_report.ts";
import { type Subscription, TopicRouter } from "../lib/topic/router.ts";
import { mulberry32 } from "../tests/_prng.ts";

/** The part of qlobber's API used here (the package ships no types). */
interface QlobberLike<T, R> {
  add(topic: string, value: T): unknown;
  remove(topic: string, value?: T): unknown;
  match(topic: string): R;
}

type QlobberConstructor<T, R> = new (options: Record<string, unknown>) => QlobberLike<T, R>;

/** A value as aedes stores it in its QlobberSub. */
interface AedesValue {
  readonly clientId: string;
  readonly topic: string;
  readonly qos: number;
}

// MQTT semantics: "/" separates levels, "+" matches exactly one level (an empty one too), "#" zero or more.
// Qlobber does not implement [MQTT-4.7.2-1] ("$" topics); no benchmark topic starts with "$".
const QLOBBER_OPTIONS = { separator: "/", wildcard_one: "+", wildcard_some: "#", match_empty_levels: true };

const SUBSCRIPTIONS = 100_000;
const CLIENTS = 25_000;
const SITES = 200;
const DEVICES = 500;
const METRICS = ["temp", "humidity", "battery", "status"] as const;
const TOPICS = 20_000;
const CHURN = 20_000;
const RUNS = 7;

type Pair = readonly [clientId: string, filter: string];

interface Data {
  readonly subscriptions: readonly Pair[];
  /** Subscriptions made and removed again by the churn runs, none of them in `subscriptions`. */
  readonly churn: readonly Pair[];
  readonly topics: readonly string[];
}

function makeData(): Data {
  const random = mulberry32(2024);
  const int = (n: number): number => Math.floor(random() * n);
  const metric = (): string => METRICS[int(METRICS.length)]!;
  // Filters over topics shaped like site/{s}/device/{d}/{metric}: 70% exact, 15% "+", 15% "#".
  const filter = (): string => {
    const roll = random();
    if (roll < 0.70) return `site/${int(SITES)}/device/${int(DEVICES)}/${metric()}`;
    if (roll < 0.80) return `site/${int(SITES)}/device/+/${metric()}`;
    if (roll < 0.85) return `site/+/device/${int(DEVICES)}/${metric()}`;
    if (roll < 0.95) return `site/${int(SITES)}/device/${int(DEVICES)}/#`;
    return `site/${int(SITES)}/#`;
  };
  const taken = new Set<string>();
  const pairs = (count: number): Pair[] => {
    const out: Pair[] = [];
    while (out.length < count) {
      const pair = [`client-${int(CLIENTS)}`, filter()] as const;
      const key = `${pair[0]} ${pair[1]}`;
      if (taken.has(key)) continue;
      taken.add(key);
      out.push(pair);
    }
    return out;
  };
  const subscriptions = pairs(SUBSCRIPTIONS);
  const churn = pairs(CHURN);
  const topics: string[] = [];
  for (let i = 0; i < TOPICS; i++) topics.push(`site/${int(SITES)}/device/${int(DEVICES)}/${metric()}`);
  return { subscriptions, churn, topics };
}

function subscription(filter: string): Subscription {
  return { filter, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 };
}

/** Runs `fn`, which performs `ops` operations, once; returns operations per second. */
function rate(fn: () => number, ops: number): number {
  const start = performance.now();
  const result = fn();
  const seconds = (performance.now() - start) / 1000;
  if (result < 0) throw new Error("unreachable"); // keeps the work observable
  return ops / seconds;
}

/**
 * Measures ours and a peer alternately, run by run after a warm-up of each, so that load from elsewhere and
 * GC pauses hit both alike; returns the medians of `RUNS` runs.
 */
function compare(ours: () => number, peer: () => number, ops: number): [number, number] {
  rate(ours, ops);
  rate(peer, ops);
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    a.push(rate(ours, ops));
    b.push(rate(peer, ops));
  }
  return [median(a), median(b)];
}

function row(name: string, unit: string, ours: number, peer: string, value: number): BenchRow {
  return { name, unit, ours, peer: { name: peer, value }, higherIsBetter: true };
}

/** Runs the router benchmark group. `progress` gets a line as each step starts (on stderr by default). */
export async function routerBench(
  progress: (line: string) => void = (line) => console.error(line),
): Promise<BenchGroup> {
  await Promise.resolve(); // an async group like the others; all of the work here is synchronous
  progress("router 1/6: building 100k subscriptions in each matcher");
  const { subscriptions, churn, topics } = makeData();
  const QlobberSub = QlobberSubModule as unknown as QlobberConstructor<AedesValue, AedesValue[]>;
  const Plain = Qlobber as unknown as QlobberConstructor<string, string[]>;
  const Dedup = QlobberDedup as unknown as QlobberConstructor<string, Set<string>>;

  const router = new TopicRouter();
  const dedup = new Dedup(QLOBBER_OPTIONS);
  const aedesLike = new QlobberSub(QLOBBER_OPTIONS);
  const plain = new Plain(QLOBBER_OPTIONS);
  for (const [clientId, filter] of subscriptions) {
    router.subscribe(clientId, subscription(filter));
    dedup.add(filter, clientId);
    aedesLike.add(filter, { clientId, topic: filter, qos: 1 });
    plain.add(filter, clientId);
  }

  // The same sessions must come out of every matcher, so that the figures compare the same work.
  let deliveries = 0;
  for (const topic of topics) {
    const ours = router.match(topic).map((d) => d.clientId).sort().join();
    const viaDedup = [...dedup.match(topic)].sort().join();
    const viaAedes = [...new Set(aedesLike.match(topic).map((v) => v.clientId))].sort().join();
    if (ours !== viaDedup || ours !== viaAedes) {
      throw new Error(`router_bench: matchers disagree on ${topic}`);
    }
    deliveries += ours === "" ? 0 : ours.split(",").length;
  }

  const matchOurs = (): number => {
    let n = 0;
    for (let i = 0; i < topics.length; i++) n += router.match(topics[i]!).length;
    return n;
  };
  // Each receiving session once, as MQTT asks [MQTT-3.3.4-2]: a Set of client ids.
  const matchDedup = (): number => {
    let n = 0;
    for (let i = 0; i < topics.length; i++) n += dedup.match(topics[i]!).size;
    return n;
  };
  // What aedes does per PUBLISH: QlobberSub.match(), then one delivery per client at its highest QoS.
  const matchAedesLike = (): number => {
    let n = 0;
    for (let i = 0; i < topics.length; i++) {
      const perClient = new Map<string, number>();
      for (const value of aedesLike.match(topics[i]!)) {
        const qos = perClient.get(value.clientId);
        if (qos === undefined || value.qos > qos) perClient.set(value.clientId, value.qos);
      }
      n += perClient.size;
    }
    return n;
  };
  // Raw Qlobber: the matching values, duplicates included, nothing more.
  const matchPlain = (): number => {
    let n = 0;
    for (let i = 0; i < topics.length; i++) n += plain.match(topics[i]!).length;
    return n;
  };

  const churnOurs = (): number => {
    for (const [clientId, filter] of churn) router.subscribe(clientId, subscription(filter));
    for (const [clientId, filter] of churn) router.unsubscribe(clientId, filter);
    return router.size;
  };
  const churnDedup = (): number => {
    for (const [clientId, filter] of churn) dedup.add(filter, clientId);
    for (const [clientId, filter] of churn) dedup.remove(filter, clientId);
    return 0;
  };
  const churnAedesLike = (): number => {
    for (const [clientId, filter] of churn) aedesLike.add(filter, { clientId, topic: filter, qos: 1 });
    for (const [clientId, filter] of churn) aedesLike.remove(filter, { clientId, topic: filter, qos: 1 });
    return 0;
  };

  progress("router 2/6: match vs QlobberDedup");
  const [oursVsDedup, dedupFigure] = compare(matchOurs, matchDedup, topics.length);
  progress("router 3/6: match vs QlobberSub (as aedes)");
  const [oursVsAedes, aedesFigure] = compare(matchOurs, matchAedesLike, topics.length);
  progress("router 4/6: match vs raw Qlobber");
  const [oursVsPlain, plainFigure] = compare(matchOurs, matchPlain, topics.length);
  progress("router 5/6: subscribe/unsubscribe churn vs QlobberDedup");
  const [churnVsDedup, dedupChurn] = compare(churnOurs, churnDedup, churn.length * 2);
  progress("router 6/6: subscribe/unsubscribe churn vs QlobberSub");
  const [churnVsAedes, aedesChurn] = compare(churnOurs, churnAedesLike, churn.length * 2);
  if (router.size !== SUBSCRIPTIONS || router.nodeCount === 0) {
    throw new Error("router_bench: churn left the router changed");
  }

  const match = "match, 100k subscriptions";
  const churnName = "subscribe + unsubscribe, 100k subscriptions";
  const count = (n: number): string => n.toLocaleString("en-US");
  return {
    title: "Subscription router (lib/topic/router.ts)",
    rows: [
      row(match, "msgs/s", oursVsDedup, "qlobber QlobberDedup (set of client ids)", dedupFigure),
      row(
        match,
        "msgs/s",
        oursVsAedes,
        "qlobber QlobberSub + highest QoS per client (as aedes)",
        aedesFigure,
      ),
      row(match, "msgs/s", oursVsPlain, "qlobber Qlobber, raw (duplicates, no merge)", plainFigure),
      row(churnName, "ops/s", churnVsDedup, "qlobber QlobberDedup add + remove", dedupChurn),
      row(churnName, "ops/s", churnVsAedes, "qlobber QlobberSub add + remove (as aedes)", aedesChurn),
    ],
    notes: [
      `${count(SUBSCRIPTIONS)} subscriptions from ${count(CLIENTS)} clients, 70% exact, 15% "+", 15% "#" ` +
      `over site/{s}/device/{d}/{metric}; ${count(TOPICS)} topics, ` +
      `${(deliveries / TOPICS).toFixed(1)} receiving sessions per message; churn adds and removes ` +
      `${count(CHURN)} more subscriptions per run.`,
      `Medians of ${RUNS} runs, alternating with the peer of each row. Ours validates each filter on subscribe ` +
      `and returns one delivery per session (highest QoS, every subscription id) on match; raw Qlobber returns ` +
      `the matching values with duplicates (at times its own internal array). ` +
      `Deno ${Deno.version.deno}, V8 ${Deno.version.v8}, ${navigator.hardwareConcurrency} CPUs.`,
    ],
  };
}

if (import.meta.main) console.log(renderGroup(await routerBench()));
