/**
 * Topic Name and Topic Filter rules (MQTT 3.1.1 and 5.0, section 4.7) and shared subscription filters
 * (MQTT 5.0, section 4.8.2), plus the single-filter matcher.
 *
 * The wildcard placement rules are cited by their MQTT 3.1.1 numbers (`#` last: [MQTT-4.7.1-2 (3.1.1)], `+` a
 * whole level: [MQTT-4.7.1-3 (3.1.1)]); MQTT 5.0 numbers the same rules [MQTT-4.7.1-1 (5.0)] and
 * [MQTT-4.7.1-2 (5.0)].
 *
 * Validation runs once per PUBLISH, so every function here scans the string once with `charCodeAt` and does
 * not split or use regular expressions. U+0000 and ill-formed UTF-16 are refused by the codec, not here.
 *
 * @module
 */

import { MqttError } from "../mqtt_error.ts";
import { REASON_CODE } from "../packet/reason_code.ts";

const SLASH = 0x2f; // "/"
const PLUS = 0x2b; // "+"
const HASH = 0x23; // "#"
const DOLLAR = 0x24; // "$"

/** The prefix of a shared subscription's Topic Filter [MQTT-4.8.2-1 (5.0)]. */
export const SHARED_PREFIX = "$share/";

/** The largest UTF-8 encoded string MQTT can carry, in bytes [MQTT-4.7.3-3 (5.0)]. */
export const MAX_TOPIC_BYTES = 65_535;

/** Limits a broker may put on topics beyond the protocol's own. */
export interface TopicLimits {
  /**
   * Largest Topic Name or Topic Filter, in UTF-8 bytes.
   *
   * @default {65535}
   */
  readonly maxLength?: number;
  /**
   * Largest number of topic levels (`a/b/c` has 3); for a shared filter, levels of the filter after the share
   * name.
   *
   * @default {Infinity}
   */
  readonly maxDepth?: number;
}

/** A shared subscription's Topic Filter `$share/{ShareName}/{filter}` taken apart. */
export interface SharedFilter {
  /** The ShareName. */
  readonly group: string;
  /** The Topic Filter after the ShareName, e.g. `sport/+` in `$share/g/sport/+`. */
  readonly filter: string;
}

/**
 * Checks a PUBLISH Topic Name.
 *
 * @throws {MqttError} with reason code Topic Name invalid (0x90) citing the broken rule.
 *
 * @example
 * ```ts
 * import { validateTopicName } from "./topic.ts";
 * validateTopicName("sport/tennis/player1");
 * ```
 */
export function validateTopicName(name: string, limits?: TopicLimits): void {
  const length = name.length;
  if (length === 0) throw nameError("Topic Name is empty [MQTT-4.7.3-1 (5.0)]");
  const maxDepth = limits?.maxDepth ?? Infinity;
  let depth = 1;
  for (let i = 0; i < length; i++) {
    const c = name.charCodeAt(i);
    if (c === SLASH) depth++;
    else if (c === PLUS || c === HASH) {
      throw nameError(`Topic Name "${clip(name)}" contains the wildcard "${name[i]}" [MQTT-3.3.2-2 (5.0)]`);
    }
  }
  if (depth > maxDepth) {
    throw nameError(`Topic Name has ${depth} levels; the limit is ${maxDepth}`);
  }
  checkLength(name, limits?.maxLength, REASON_CODE.TopicNameInvalid, "Topic Name");
}

/**
 * Checks a SUBSCRIBE or UNSUBSCRIBE Topic Filter, including shared ones (`$share/{ShareName}/{filter}`).
 *
 * @throws {MqttError} with reason code Topic Filter invalid (0x8F) citing the broken rule.
 *
 * @example
 * ```ts
 * import { validateTopicFilter } from "./topic.ts";
 * validateTopicFilter("sport/+/player1/#");
 * validateTopicFilter("$share/group/sport/#");
 * ```
 */
export function validateTopicFilter(filter: string, limits?: TopicLimits): void {
  const start = filter.startsWith(SHARED_PREFIX) ? sharedFilterStart(filter) : 0;
  checkFilterFrom(filter, start, limits?.maxDepth ?? Infinity);
  checkLength(filter, limits?.maxLength, REASON_CODE.TopicFilterInvalid, "Topic Filter");
}

/**
 * Takes a shared subscription's Topic Filter apart.
 *
 * @returns `undefined` when `filter` does not start with `$share/` (it is not a shared subscription).
 * @throws {MqttError} Topic Filter invalid (0x8F) when it starts with `$share/` but is malformed.
 *
 * @example
 * ```ts
 * import { parseSharedFilter } from "./topic.ts";
 * const shared = parseSharedFilter("$share/workers/jobs/+");
 * console.assert(shared?.group === "workers" && shared.filter === "jobs/+");
 * ```
 */
export function parseSharedFilter(filter: string): SharedFilter | undefined {
  if (!filter.startsWith(SHARED_PREFIX)) return undefined;
  const start = sharedFilterStart(filter);
  checkFilterFrom(filter, start, Infinity);
  return { group: filter.slice(SHARED_PREFIX.length, start - 1), filter: filter.slice(start) };
}

/**
 * Whether a (valid) Topic Filter contains a wildcard level.
 *
 * @example
 * ```ts
 * import { isWildcardFilter } from "./topic.ts";
 * console.assert(isWildcardFilter("a/+/c") && !isWildcardFilter("a/b/c"));
 * ```
 */
export function isWildcardFilter(filter: string): boolean {
  for (let i = 0; i < filter.length; i++) {
    const c = filter.charCodeAt(i);
    if (c === PLUS || c === HASH) return true;
  }
  return false;
}

/**
 * Whether a valid Topic Name matches a valid, non-shared Topic Filter (take `$share/` filters apart with
 * {@linkcode parseSharedFilter} first). `#` also matches the parent level, and a filter starting with a wildcard
 * does not match a topic starting with `$` [MQTT-4.7.2-1 (5.0)].
 *
 * @example
 * ```ts
 * import { matchesFilter } from "./topic.ts";
 * console.assert(matchesFilter("sport/#", "sport"));
 * console.assert(matchesFilter("sport/+/player1", "sport/tennis/player1"));
 * console.assert(!matchesFilter("#", "$SYS/uptime"));
 * ```
 */
export function matchesFilter(filter: string, topic: string): boolean {
  const fLength = filter.length;
  const tLength = topic.length;
  if (topic.charCodeAt(0) === DOLLAR) {
    const first = filter.charCodeAt(0);
    if (first === PLUS || first === HASH) return false; // [MQTT-4.7.2-1 (5.0)]
  }
  let f = 0;
  let t = 0;
  // Each turn starts at the beginning of a level in both strings.
  for (;;) {
    const c = filter.charCodeAt(f);
    if (c === HASH) return true; // the rest of the topic, including none of it
    if (c === PLUS && (f + 1 === fLength || filter.charCodeAt(f + 1) === SLASH)) {
      f++;
      const slash = topic.indexOf("/", t);
      t = slash === -1 ? tLength : slash;
    } else {
      while (f < fLength) {
        const fc = filter.charCodeAt(f);
        if (fc === SLASH) break;
        if (topic.charCodeAt(t) !== fc) return false; // NaN past the end never equals
        f++;
        t++;
      }
      if (t < tLength && topic.charCodeAt(t) !== SLASH) return false;
    }
    // Both at the end of a level: the string's end or a "/".
    if (f === fLength) return t === tLength;
    if (t === tLength) return f + 2 === fLength && filter.charCodeAt(f + 1) === HASH; // "sport/#" matches "sport"
    f++;
    t++;
  }
}

/** Index of the filter after `$share/{ShareName}/`; throws when the share part is malformed. */
function sharedFilterStart(filter: string): number {
  const groupStart = SHARED_PREFIX.length;
  const slash = filter.indexOf("/", groupStart);
  if (slash === groupStart) {
    throw filterError(`Shared subscription "${clip(filter)}" has an empty ShareName [MQTT-4.8.2-1 (5.0)]`);
  }
  if (slash === -1 || slash + 1 === filter.length) {
    throw filterError(
      `Shared subscription "${clip(filter)}" has no Topic Filter after its ShareName [MQTT-4.8.2-2 (5.0)]`,
    );
  }
  for (let i = groupStart; i < slash; i++) {
    const c = filter.charCodeAt(i);
    if (c === PLUS || c === HASH) {
      throw filterError(
        `Shared subscription "${clip(filter)}" has "${filter[i]}" in its ShareName [MQTT-4.8.2-2 (5.0)]`,
      );
    }
  }
  return slash + 1;
}

/** Checks the wildcard placement and depth of the filter that starts at `start`. */
function checkFilterFrom(filter: string, start: number, maxDepth: number): void {
  const length = filter.length;
  if (length === start) throw filterError("Topic Filter is empty [MQTT-4.7.3-1 (5.0)]");
  let depth = 1;
  for (let i = start; i < length; i++) {
    const c = filter.charCodeAt(i);
    if (c === SLASH) depth++;
    else if (c === PLUS) {
      if (
        (i > start && filter.charCodeAt(i - 1) !== SLASH) ||
        (i + 1 < length && filter.charCodeAt(i + 1) !== SLASH)
      ) {
        throw filterError(`Topic Filter "${clip(filter)}" uses "+" inside a level [MQTT-4.7.1-3 (3.1.1)]`);
      }
    } else if (c === HASH) {
      if (i > start && filter.charCodeAt(i - 1) !== SLASH) {
        throw filterError(`Topic Filter "${clip(filter)}" uses "#" inside a level [MQTT-4.7.1-2 (3.1.1)]`);
      }
      if (i + 1 < length) {
        throw filterError(
          `Topic Filter "${clip(filter)}" has "#" before its last level [MQTT-4.7.1-2 (3.1.1)]`,
        );
      }
    }
  }
  if (depth > maxDepth) throw filterError(`Topic Filter has ${depth} levels; the limit is ${maxDepth}`);
}

/** Refuses a string longer than `maxLength` UTF-8 bytes; counts bytes only when the UTF-16 length can't tell. */
function checkLength(value: string, maxLength: number | undefined, reasonCode: number, what: string): void {
  const max = Math.min(maxLength ?? MAX_TOPIC_BYTES, MAX_TOPIC_BYTES);
  // One UTF-16 unit is 1 to 3 UTF-8 bytes (a surrogate pair is 4 bytes for 2 units).
  if (value.length * 3 <= max) return;
  const bytes = value.length > max ? value.length : utf8Length(value);
  if (bytes > max) {
    const rule = max === MAX_TOPIC_BYTES ? " [MQTT-4.7.3-3 (5.0)]" : "";
    throw new MqttError(reasonCode, `${what} is longer than ${max} UTF-8 bytes${rule}`);
  }
}

function utf8Length(value: string): number {
  let bytes = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < value.length) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

function nameError(message: string): MqttError {
  return new MqttError(REASON_CODE.TopicNameInvalid, message);
}

function filterError(message: string): MqttError {
  return new MqttError(REASON_CODE.TopicFilterInvalid, message);
}

/** Keeps error messages short when a topic is huge. */
function clip(value: string): string {
  return value.length <= 64 ? value : `${value.slice(0, 61)}...`;
}
