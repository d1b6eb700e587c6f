/**
 * Storage benchmark: group commits of QoS 1 queue traffic (putOutgoing of new 64-byte messages plus deleteOutgoing
 * of the ones acknowledged since the last commit) for {@linkcode SqlitePersistence} (synchronous NORMAL and FULL)
 * against {@linkcode MemoryPersistence}, a 1-to-100 fan-out, and the time to load a large queue at start.
 *
 * Run alone: `deno run --allow-read --allow-write bench/storage_bench.ts`
 *
 * @module
 */

import { type BenchGroup, type BenchRow, median, renderGroup } from "./_report.ts";
import { MemoryPersistence } from "../lib/broker/storage/memory_persistence.ts";
import {
  SqlitePersistence,
  type SqlitePersistenceOptions,
} from "../lib/broker/storage/sqlite_persistence.ts";
import type { Message, Persistence, PersistenceOp } from "../lib/broker/storage/persistence.ts";

const RUNS = 5;
const SESSIONS = 100;
const BATCHES = [1, 10, 100] as const;
/** Enough commits per run for about a quarter of a second at the slowest setting measured here. */
const OPS_PER_RUN = 20_000;
const LOAD_ENTRIES = 100_000;

interface Store {
  readonly label: string;
  open(): Promise<{ store: Persistence; cleanup: () => Promise<void> }>;
}

function memoryStore(): Store {
  return {
    label: "memory",
    open: () => Promise.resolve({ store: new MemoryPersistence(), cleanup: () => Promise.resolve() }),
  };
}

function sqliteStore(options: SqlitePersistenceOptions): Store {
  return {
    label: `SQLite ${options.synchronous ?? "normal"}`,
    open: async () => {
      const dir = await Deno.makeTempDir({ prefix: "mqtt_storage_bench_" });
      const store = new SqlitePersistence(`${dir}/broker.db`, options);
      return {
        store,
        cleanup: async () => {
          await store.close();
          await Deno.remove(dir, { recursive: true });
        },
      };
    },
  };
}

function message(n: number): Message {
  const payload = new Uint8Array(64);
  payload.fill(n & 0xff);
  return { topic: `sensors/${n % 1000}/temp`, payload, qos: 1, retain: false };
}

function sessionOps(): PersistenceOp[] {
  return Array.from({ length: SESSIONS }, (_, i): PersistenceOp => ({
    kind: "putSession",
    session: { clientId: `c${i}`, protocolVersion: 5, expiryInterval: 3600, subscriptions: [] },
  }));
}

/**
 * Commits of `batch` putOutgoing (each a new message to the next session) plus `batch` deleteOutgoing (the
 * previous commit's entries, as if their PUBACKs arrived); returns commits per second.
 */
async function queueTraffic(
  store: Persistence,
  batch: number,
  commits: number,
  start: number,
): Promise<number> {
  const began = performance.now();
  for (let c = 0; c < commits; c++) {
    const ops: PersistenceOp[] = [];
    for (let i = 0; i < batch; i++) {
      const seq = start + c * batch + i;
      const clientId = `c${seq % SESSIONS}`;
      ops.push({
        kind: "putOutgoing",
        clientId,
        entry: { seq, message: message(seq), qos: 1, retain: false, state: "queued" },
      });
      if (c > 0) {
        ops.push({ kind: "deleteOutgoing", clientId: `c${(seq - batch) % SESSIONS}`, seq: seq - batch });
      }
    }
    await store.commit(ops);
  }
  return commits / ((performance.now() - began) / 1000);
}

/** One message queued to every session per commit (shared message row), the next commit deleting them all. */
async function fanOut(store: Persistence, commits: number, start: number): Promise<number> {
  const began = performance.now();
  for (let c = 0; c < commits; c++) {
    const seq = start + c;
    const m = message(seq);
    const ops: PersistenceOp[] = [];
    for (let i = 0; i < SESSIONS; i++) {
      ops.push({
        kind: "putOutgoing",
        clientId: `c${i}`,
        entry: { seq, message: m, qos: 1, retain: false, state: "queued" },
      });
      if (c > 0) ops.push({ kind: "deleteOutgoing", clientId: `c${i}`, seq: seq - 1 });
    }
    await store.commit(ops);
  }
  return commits / ((performance.now() - began) / 1000);
}

/** Median commits/s over {@linkcode RUNS} runs after a warm-up, one fresh store for all of them. */
async function measure(
  store: Store,
  run: (p: Persistence, commits: number, start: number) => Promise<number>,
  commits: number,
): Promise<number> {
  const { store: p, cleanup } = await store.open();
  try {
    await p.load();
    await p.commit(sessionOps());
    let start = 1;
    await run(p, Math.max(10, commits >> 3), start);
    const rates: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      start += 10_000_000;
      rates.push(await run(p, commits, start));
    }
    return median(rates);
  } finally {
    await cleanup();
  }
}

/** Median milliseconds for load() of a store holding {@linkcode LOAD_ENTRIES} queued messages. */
async function loadTime(store: Store): Promise<number> {
  const { store: p, cleanup } = await store.open();
  try {
    await p.load();
    await p.commit(sessionOps());
    for (let seq = 1; seq <= LOAD_ENTRIES; seq += 1000) {
      const ops: PersistenceOp[] = [];
      for (let i = seq; i < seq + 1000; i++) {
        ops.push({
          kind: "putOutgoing",
          clientId: `c${i % SESSIONS}`,
          entry: { seq: i, message: message(i), qos: 1, retain: false, state: "queued" },
        });
      }
      await p.commit(ops);
    }
    const times: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      await p.close();
      const began = performance.now();
      const state = await p.load();
      times.push(performance.now() - began);
      const entries = state.sessions.reduce((n, s) => n + s.outgoing.length, 0);
      if (entries !== LOAD_ENTRIES) {
        throw new Error(`load() returned ${entries} entries, not ${LOAD_ENTRIES}`);
      }
    }
    return median(times);
  } finally {
    await cleanup();
  }
}

/**
 * Runs the storage benchmark group. Needs `--allow-read --allow-write` (a temporary directory). `progress`
 * gets a line as each measurement starts (on stderr by default).
 */
export async function storageBench(
  progress: (line: string) => void = (line) => console.error(line),
): Promise<BenchGroup> {
  const memory = memoryStore();
  const sqlites = [sqliteStore({ synchronous: "normal" }), sqliteStore({ synchronous: "full" })];
  const rows: BenchRow[] = [];
  for (const batch of BATCHES) {
    const commits = Math.max(200, Math.round(OPS_PER_RUN / (2 * batch)));
    const traffic = (p: Persistence, n: number, start: number): Promise<number> =>
      queueTraffic(p, batch, n, start);
    progress(`storage: ${batch} + ${batch} ops per commit, memory`);
    const base = await measure(memory, traffic, commits);
    for (const sqlite of sqlites) {
      progress(`storage: ${batch} + ${batch} ops per commit, ${sqlite.label}`);
      // FSYNC per commit: fewer commits keep the run short; the rate is what matters.
      const n = sqlite.label.endsWith("full") ? Math.max(50, commits >> 4) : commits;
      const rate = await measure(sqlite, traffic, n);
      const what = `${batch} putOutgoing + ${batch} deleteOutgoing per commit, ${sqlite.label}`;
      rows.push({
        name: `${what}: commits`,
        unit: "commits/s",
        ours: rate,
        peer: { name: "memory", value: base },
        higherIsBetter: true,
      });
      rows.push({
        name: `${what}: ops`,
        unit: "ops/s",
        ours: rate * 2 * batch,
        peer: { name: "memory", value: base * 2 * batch },
        higherIsBetter: true,
      });
    }
  }
  progress(`storage: 1 message to ${SESSIONS} sessions per commit`);
  const fanOutBase = await measure(memory, fanOut, 2000);
  rows.push({
    name: `1 message to ${SESSIONS} sessions (+ ${SESSIONS} deletes) per commit, SQLite normal`,
    unit: "commits/s",
    ours: await measure(sqlites[0]!, fanOut, 2000),
    peer: { name: "memory", value: fanOutBase },
    higherIsBetter: true,
  });
  progress(`storage: load() of ${LOAD_ENTRIES.toLocaleString("en-US")} queued messages`);
  rows.push({
    name: `load() of ${LOAD_ENTRIES.toLocaleString("en-US")} queued 64 B messages, SQLite normal`,
    unit: "ms",
    ours: await loadTime(sqlites[0]!),
    peer: { name: "memory", value: await loadTime(memory) },
    higherIsBetter: false,
  });
  return {
    title: "Storage (group commit of QoS 1 queue traffic, 64 B payloads)",
    rows,
    notes: [
      `Medians of ${RUNS} runs after a warm-up; ${SESSIONS} sessions; each commit also deletes the previous ` +
      "commit's entries. The ratio column is SQLite relative to the in-memory store (below 1.0 = slower).",
      "SQLite normal survives a process crash; full also fsyncs every commit (survives power loss).",
      `Deno ${Deno.version.deno}, SQLite files in the system temp directory.`,
    ],
  };
}

if (import.meta.main) {
  console.log(renderGroup(await storageBench()));
}
