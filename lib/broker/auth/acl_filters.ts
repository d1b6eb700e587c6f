/**
 * Sets of topic filters for the ACL: matching a topic against many filters in one walk, and the filter algebra
 * (intersection, coverage) that decides whether a SUBSCRIBE can deliver anything a read rule allows.
 *
 * @module
 */

interface TrieNode {
  children: Map<string, TrieNode> | undefined;
  /** The `+` child. */
  plus: TrieNode | undefined;
  /** A filter ends in `#` here. */
  hash: boolean;
  /** A filter ends here. */
  end: boolean;
}

const DOLLAR = 0x24; // "$"

function node(): TrieNode {
  return { children: undefined, plus: undefined, hash: false, end: false };
}

/**
 * A set of topic filters, matched against a topic in one walk of its levels (a trie keyed by level, with `+`
 * and `#` branches), with the same rules as `matchesFilter`: `#` also matches the parent level, and a filter
 * starting with a wildcard does not match a topic starting with `$` [MQTT-4.7.2-1 (5.0)].
 *
 * @example
 * ```ts
 * import { FilterSet } from "./acl_filters.ts";
 * const set = new FilterSet(["sensors/+/temp", "alerts/#"]);
 * console.assert(set.matches("sensors/kitchen/temp") && set.matches("alerts"));
 * console.assert(!set.matches("sensors/kitchen/humidity"));
 * ```
 */
export class FilterSet {
  readonly #root: TrieNode = node();
  #size = 0;

  /** A set holding `filters` (valid, non-shared topic filters). */
  constructor(filters: Iterable<string> = []) {
    for (const filter of filters) this.add(filter);
  }

  /** Number of distinct filters added. */
  get size(): number {
    return this.#size;
  }

  /** Adds a (valid, non-shared) topic filter. */
  add(filter: string): void {
    let at = this.#root;
    const levels = filter.split("/");
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i]!;
      if (level === "#") {
        if (!at.hash) this.#size++;
        at.hash = true;
        return;
      }
      if (level === "+") at = at.plus ??= node();
      else {
        const children = at.children ??= new Map();
        let next = children.get(level);
        if (next === undefined) children.set(level, next = node());
        at = next;
      }
    }
    if (!at.end) this.#size++;
    at.end = true;
  }

  /** Whether any filter in the set matches `topic` (a valid Topic Name). */
  matches(topic: string): boolean {
    return this.#size !== 0 && matchFrom(this.#root, topic, 0, topic.charCodeAt(0) === DOLLAR);
  }
}

/** Matches the levels of `topic` from index `start` (past its end: no levels left) below `at`. */
function matchFrom(at: TrieNode, topic: string, start: number, dollarLevel: boolean): boolean {
  // Wildcards at the first level skip "$" topics [MQTT-4.7.2-1 (5.0)]; `dollarLevel` is true only there.
  if (at.hash && !dollarLevel) return true; // "#" matches the rest, including nothing
  if (start > topic.length) return at.end;
  let end = topic.indexOf("/", start);
  if (end === -1) end = topic.length;
  if (at.plus !== undefined && !dollarLevel && matchFrom(at.plus, topic, end + 1, false)) return true;
  if (at.children === undefined) return false;
  const child = at.children.get(topic.slice(start, end));
  return child !== undefined && matchFrom(child, topic, end + 1, false);
}

/**
 * The filter matching exactly the topics both `a` and `b` match, or `undefined` when no topic matches both.
 * Both must be valid, non-shared filters.
 *
 * @example
 * ```ts
 * import { filterIntersection } from "./acl_filters.ts";
 * console.assert(filterIntersection("sensors/#", "+/kitchen/+") === "sensors/kitchen/+");
 * console.assert(filterIntersection("sensors/#", "alerts/#") === undefined);
 * console.assert(filterIntersection("#", "$SYS/#") === undefined);
 * ```
 */
export function filterIntersection(a: string, b: string): string | undefined {
  const as = a.split("/");
  const bs = b.split("/");
  // A wildcard first level matches no "$" topic; a "$" first level matches only those.
  if (isWildcard(as[0]!) && bs[0]!.startsWith("$")) return undefined;
  if (isWildcard(bs[0]!) && as[0]!.startsWith("$")) return undefined;
  const out: string[] = [];
  for (let i = 0;; i++) {
    const x = as[i];
    const y = bs[i];
    if (x === "#") return [...out, ...bs.slice(i)].join("/");
    if (y === "#") return [...out, ...as.slice(i)].join("/");
    if (x === undefined || y === undefined) return x === y ? out.join("/") : undefined;
    if (x === "+") out.push(y);
    else if (y === "+" || x === y) out.push(x);
    else return undefined;
  }
}

/**
 * Whether every topic `inner` matches is also matched by `outer`. Both must be valid, non-shared filters.
 *
 * @example
 * ```ts
 * import { filterCovers } from "./acl_filters.ts";
 * console.assert(filterCovers("sensors/#", "sensors/+/temp"));
 * console.assert(!filterCovers("sensors/+", "sensors/#"));
 * console.assert(!filterCovers("#", "$SYS/uptime"));
 * ```
 */
export function filterCovers(outer: string, inner: string): boolean {
  const os = outer.split("/");
  const is = inner.split("/");
  if (isWildcard(os[0]!) && is[0]!.startsWith("$")) return false;
  for (let i = 0;; i++) {
    const o = os[i];
    const x = is[i];
    if (o === "#") return true;
    if (x === undefined || o === undefined) return x === o;
    if (x === "#") return false; // inner also matches the parent level and anything deeper
    if (o === "+") continue;
    if (x !== o) return false; // a literal level covers only itself
  }
}

function isWildcard(level: string): boolean {
  return level === "+" || level === "#";
}
