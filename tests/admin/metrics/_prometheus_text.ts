/**
 * A small, strict parser of the Prometheus text format 0.0.4 for the tests: it reads an exposition back into
 * families and throws at the first rule broken (HELP/TYPE once and before the samples, samples of a family
 * together, names matching the family's type, label values escaped, a newline at the end).
 */

/** One sample line. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** One family: its HELP, TYPE and samples. */
export interface Family {
  readonly name: string;
  readonly type: string;
  readonly help: string;
  readonly samples: Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/;

function parseValue(text: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  const value = Number(text);
  if (text === "" || Number.isNaN(value)) throw new Error(`bad value ${text}`);
  return value;
}

/** Label pairs `a="x",b="y"`, with `\\`, `\"` and `\n` unescaped; throws on anything else. */
export function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf("=", i);
    const name = text.slice(i, eq);
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) throw new Error(`bad label name "${name}"`);
    if (text[eq + 1] !== '"') throw new Error(`label ${name}: value not quoted`);
    let value = "";
    let j = eq + 2;
    for (;; j++) {
      const c = text[j];
      if (c === undefined) throw new Error(`label ${name}: unterminated value`);
      if (c === "\n") throw new Error(`label ${name}: raw newline`);
      if (c === '"') break;
      if (c === "\\") {
        const next = text[++j];
        if (next === "n") value += "\n";
        else if (next === "\\" || next === '"') value += next;
        else throw new Error(`label ${name}: bad escape \\${next}`);
      } else {
        value += c;
      }
    }
    if (name in labels) throw new Error(`label ${name} twice`);
    labels[name] = value;
    i = j + 1;
    if (i < text.length) {
      if (text[i] !== ",") throw new Error(`expected "," after label ${name}`);
      i++;
    }
  }
  return labels;
}

/** Which family a sample name belongs to, for a family of `type`. */
function belongs(sample: string, family: string, type: string): boolean {
  if (type === "histogram") return [`${family}_bucket`, `${family}_sum`, `${family}_count`].includes(sample);
  return sample === family;
}

/** Parses `text`, checking the format's rules; the families by name. */
export function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith("\n")) throw new Error("the exposition must end with a newline");
  const families = new Map<string, Family>();
  let current: Family | undefined;
  let help: { name: string; text: string } | undefined;
  const lines = text.slice(0, -1).split("\n");
  for (const line of lines) {
    if (line.startsWith("# HELP ")) {
      const [name, ...rest] = line.slice(7).split(" ");
      if (families.has(name!) || help !== undefined) {
        throw new Error(`HELP for ${name} again or out of place`);
      }
      help = { name: name!, text: rest.join(" ") };
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const [name, type] = line.slice(7).split(" ");
      if (help === undefined || help.name !== name) {
        throw new Error(`TYPE ${name} without its HELP just before`);
      }
      if (families.has(name!)) throw new Error(`TYPE ${name} twice`);
      if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(type!)) {
        throw new Error(`type ${type}`);
      }
      if (type === "counter" && !name!.endsWith("_total")) throw new Error(`counter ${name} without _total`);
      current = { name: name!, type: type!, help: help.text, samples: [] };
      families.set(name!, current);
      help = undefined;
      continue;
    }
    if (line.startsWith("#")) continue;
    const m = SAMPLE.exec(line);
    if (m === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    if (current === undefined || !belongs(m[1]!, current.name, current.type)) {
      throw new Error(`sample ${m[1]} outside its family (current ${current?.name})`);
    }
    current.samples.push({ name: m[1]!, labels: parseLabels(m[3] ?? ""), value: parseValue(m[4]!) });
  }
  return families;
}

/** The value of the sample `name` whose labels include `labels`; throws when there is not exactly one. */
export function value(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const found: Sample[] = [];
  for (const family of families.values()) {
    for (const sample of family.samples) {
      if (sample.name !== name) continue;
      if (Object.entries(labels).every(([k, v]) => sample.labels[k] === v)) found.push(sample);
    }
  }
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]!.value;
}
