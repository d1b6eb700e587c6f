/**
 * A writer of the Prometheus text exposition format 0.0.4: each family once with its `# HELP` and `# TYPE`
 * lines and then its samples, `_total` on counters, histograms as cumulative `_bucket{le}` lines ending in `+Inf`
 * (equal to `_count`) plus `_sum` and `_count`, label values escaped, and a trailing newline.
 *
 * Written here rather than taken from prom-client: the broker already keeps its counters, so a scrape only
 * reads them (`../shared/OPERATIONS.md` section 3.7).
 *
 * @module
 */

import type { Histogram } from "./histogram.ts";

/** The `Content-Type` of the text format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A metric family's type. */
export type MetricType = "counter" | "gauge" | "histogram";

/** Label names and values of one sample; values are escaped by the writer. */
export type Labels = Readonly<Record<string, string>>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value with `\`, `"` and newlines escaped, as the format asks. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
}

/** A HELP text with `\` and newlines escaped. */
function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => c === "\n" ? "\\n" : "\\\\");
}

/** A sample value: integers as they are, `NaN`, `+Inf`, `-Inf` spelled as the format spells them. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function labelText(labels: Labels | undefined, extra?: string): string {
  let text = "";
  if (labels !== undefined) {
    for (const name in labels) {
      if (!LABEL_NAME.test(name) || name.startsWith("__")) throw new RangeError(`bad label name ${name}`);
      text += `${text === "" ? "" : ","}${name}="${escapeLabelValue(labels[name]!)}"`;
    }
  }
  if (extra !== undefined) text += `${text === "" ? "" : ","}${extra}`;
  return text === "" ? "" : `{${text}}`;
}

/**
 * Builds one exposition. Start a family with {@linkcode MetricsWriter.counter}, {@linkcode MetricsWriter.gauge}
 * or {@linkcode MetricsWriter.histogram}, then add its samples; a family name given twice throws.
 *
 * @example
 * ```ts
 * import { MetricsWriter } from "./text_format.ts";
 * const w = new MetricsWriter();
 * w.counter("app_requests", "Requests served.").sample(3, { code: "2xx" });
 * console.assert(w.text().includes('app_requests_total{code="2xx"} 3\n'));
 * ```
 */
export class MetricsWriter {
  readonly #lines: string[] = [];
  readonly #families = new Set<string>();
  #name = "";
  #type: MetricType = "gauge";

  /** Starts a counter family; its samples are named `name_total`. */
  counter(name: string, help: string): this {
    return this.#family(`${name}_total`, "counter", help);
  }

  /** Starts a gauge family. */
  gauge(name: string, help: string): this {
    return this.#family(name, "gauge", help);
  }

  /** Starts a histogram family; add its label sets with {@linkcode MetricsWriter.buckets}. */
  histogram(name: string, help: string): this {
    return this.#family(name, "histogram", help);
  }

  /** One sample of the current counter or gauge family. */
  sample(value: number, labels?: Labels): this {
    if (this.#type === "histogram") throw new TypeError(`${this.#name} is a histogram: use buckets()`);
    this.#lines.push(`${this.#name}${labelText(labels)} ${formatValue(value)}`);
    return this;
  }

  /** The buckets, sum and count of `histogram` as one label set of the current histogram family. */
  buckets(histogram: Histogram, labels?: Labels): this {
    if (this.#type !== "histogram") throw new TypeError(`${this.#name} is not a histogram`);
    const name = this.#name;
    const cumulative = histogram.cumulative();
    const bounds = histogram.bounds;
    for (let i = 0; i < bounds.length; i++) {
      this.#lines.push(
        `${name}_bucket${labelText(labels, `le="${formatValue(bounds[i]!)}"`)} ${
          formatValue(cumulative[i]!)
        }`,
      );
    }
    this.#lines.push(`${name}_bucket${labelText(labels, 'le="+Inf"')} ${formatValue(histogram.count)}`);
    this.#lines.push(`${name}_sum${labelText(labels)} ${formatValue(histogram.sum)}`);
    this.#lines.push(`${name}_count${labelText(labels)} ${formatValue(histogram.count)}`);
    return this;
  }

  /** The exposition: every line ends with a newline, the last one included. */
  text(): string {
    return this.#lines.length === 0 ? "" : `${this.#lines.join("\n")}\n`;
  }

  #family(name: string, type: MetricType, help: string): this {
    if (!NAME.test(name)) throw new RangeError(`bad metric name ${name}`);
    if (this.#families.has(name)) throw new RangeError(`metric family ${name} written twice`);
    this.#families.add(name);
    this.#name = name;
    this.#type = type;
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    return this;
  }
}
