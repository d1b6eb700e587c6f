/** Shared helpers for the benchmark groups: timing, medians and the printed table. */

/** One measured figure: ours, and optionally a peer measured in the same run. */
export interface BenchRow {
  /** What was measured, e.g. "PUBLISH decode (64 B payload)". */
  readonly name: string;
  /** Unit of the figures, e.g. "ops/s" or "msgs/s". */
  readonly unit: string;
  /** Median of our runs. */
  readonly ours: number;
  /** Peer name and median, when a peer was measured. */
  readonly peer?: { readonly name: string; readonly value: number };
  /** Whether a higher figure is better (throughput) or a lower one (latency, memory). */
  readonly higherIsBetter: boolean;
}

/** The result of one benchmark group. */
export interface BenchGroup {
  readonly title: string;
  readonly rows: readonly BenchRow[];
  /** Free-form lines printed under the table (machine, caveats). */
  readonly notes?: readonly string[];
}

/**
 * The options the load and cluster benchmarks share: both drive `_load_client.ts` for a warm-up and a measured
 * window per run, and take the median of their runs.
 */
export interface LoadRunOptions {
  /**
   * Runs per scenario and broker (or deployment); figures are their medians.
   * @default {3}
   */
  runs?: number;
  /**
   * Load before each measured window, ms.
   * @default {500}
   */
  warmupMs?: number;
  /**
   * The measured window of each throughput run, ms.
   * @default {2000}
   */
  durationMs?: number;
  /**
   * Messages per second in the latency scenario.
   * @default {5000}
   */
  latencyRate?: number;
  /**
   * Where progress lines go.
   * @default {console.error}
   */
  log?: (line: string) => void;
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("median() of an empty list");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A value at quantile `q` (0..1) of a list, nearest-rank. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new RangeError("quantile() of an empty list");
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index]!;
}

/**
 * Runs `fn` `iterations` times per run, `runs` times, after a warm-up run; returns the median operations per
 * second.
 */
export function opsPerSecond(fn: () => void, iterations: number, runs = 5): number {
  for (let i = 0; i < iterations; i++) fn();
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) fn();
    const seconds = (performance.now() - start) / 1000;
    rates.push(iterations / seconds);
  }
  return median(rates);
}

/** Formats a number with thousands separators and at most `digits` decimals. */
export function formatNumber(value: number, digits = 0): string {
  return value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/** The ratio of ours to the peer, oriented so that above 1.0 means we are better. */
export function ratio(row: BenchRow): number | undefined {
  if (row.peer === undefined || row.peer.value === 0 || row.ours === 0) return undefined;
  return row.higherIsBetter ? row.ours / row.peer.value : row.peer.value / row.ours;
}

/** Renders a group as a Markdown table (what the README shows). */
export function renderGroup(group: BenchGroup): string {
  const lines = [
    `### ${group.title}`,
    "",
    "| scenario | ours | peer | peer figure | ratio (ours vs peer) |",
    "|---|---:|---|---:|---:|",
  ];
  for (const row of group.rows) {
    const r = ratio(row);
    lines.push(
      `| ${row.name} | ${formatNumber(row.ours, row.ours < 100 ? 2 : 0)} ${row.unit} | ${
        row.peer?.name ?? "-"
      } | ${
        row.peer === undefined
          ? "-"
          : `${formatNumber(row.peer.value, row.peer.value < 100 ? 2 : 0)} ${row.unit}`
      } | ${r === undefined ? "-" : `${r.toFixed(2)}x`} |`,
    );
  }
  for (const note of group.notes ?? []) lines.push("", note);
  return lines.join("\n");
}
