/**
 * Whether two filters of one session can match the same topic, so that the router knows which deliveries it must
 * merge [MQTT-3.3.4-2 (5.0)]: a cheap shape test first, then a walk of both filters.
 *
 * @module
 */

const SLASH = 0x2f; // "/"
const PLUS = 0x2b; // "+"
const HASH = 0x23; // "#"

// A filter's shape, a small integer that rules out most pairs of a session's filters without reading them:
// bits 0-1 say whether it has a "+" or "#" level, bits 2-6 hold its depth (31 for 31 levels or more), and bits
// 7-26 a 5-bit hash of each of its first four levels (0 for a wildcard or a missing level).
const SHAPE_PLUS = 0b01;
const SHAPE_HASH = 0b10;
const SHAPE_WILD = 0b11;
const SHAPE_LEVELS = 4;

export function filterShape(filter: string): number {
  let level = 0;
  let bits = 0;
  let hashes = 0;
  let hash = 0;
  let start = 0;
  for (let i = 0; i <= filter.length; i++) {
    const c = i === filter.length ? SLASH : filter.charCodeAt(i);
    if (c !== SLASH) {
      hash = (hash * 31 + c) & 0xffff;
      continue;
    }
    const wildcard = i === start + 1 &&
      (filter.charCodeAt(start) === PLUS || filter.charCodeAt(start) === HASH);
    if (wildcard) bits |= filter.charCodeAt(start) === PLUS ? SHAPE_PLUS : SHAPE_HASH;
    else if (level < SHAPE_LEVELS) hashes |= ((hash % 31) + 1) << (5 * level);
    level++;
    hash = 0;
    start = i + 1;
  }
  return (hashes << 7) | (Math.min(level, 31) << 2) | bits;
}

/**
 * A cheap first test for {@linkcode filtersOverlap}: two different filters without wildcards never match the
 * same topic, nor do two without "#" of different depths, nor two with different words on the same level.
 */
export function shapesMayOverlap(a: number, b: number): boolean {
  const bits = a | b;
  if ((bits & SHAPE_WILD) === 0) return false;
  if ((bits & SHAPE_HASH) === 0 && ((a >>> 2) & 31) !== ((b >>> 2) & 31)) return false;
  for (let shift = 7; shift < 7 + 5 * SHAPE_LEVELS; shift += 5) {
    const ha = (a >>> shift) & 31;
    const hb = (b >>> shift) & 31;
    if (ha !== 0 && hb !== 0 && ha !== hb) return false;
  }
  return true;
}

/**
 * Whether some topic can match both (valid, non-shared) filters. Errs towards true: it ignores the `$` rule
 * [MQTT-4.7.2-1 (5.0)], which only makes match() merge a little more than needed.
 */
export function filtersOverlap(a: string, b: string): boolean {
  const aLength = a.length;
  const bLength = b.length;
  let i = 0;
  let j = 0;
  // Each turn starts at the beginning of a level in both filters.
  for (;;) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(j);
    if (ca === HASH || cb === HASH) return true;
    if (ca === PLUS && (i + 1 === aLength || a.charCodeAt(i + 1) === SLASH)) {
      i++;
      j = levelEnd(b, j);
    } else if (
      cb === PLUS && (j + 1 === bLength || b.charCodeAt(j + 1) === SLASH)
    ) {
      j++;
      i = levelEnd(a, i);
    } else {
      while (i < aLength && j < bLength) {
        const c = a.charCodeAt(i);
        if (c !== b.charCodeAt(j) || c === SLASH) break;
        i++;
        j++;
      }
      const aAtEnd = i === aLength || a.charCodeAt(i) === SLASH;
      const bAtEnd = j === bLength || b.charCodeAt(j) === SLASH;
      if (!aAtEnd || !bAtEnd) return false;
    }
    const aDone = i === aLength;
    const bDone = j === bLength;
    if (aDone && bDone) return true;
    // One filter is out of levels: the other overlaps only through a trailing "/#" (the parent match).
    if (aDone) return j + 2 === bLength && b.charCodeAt(j + 1) === HASH;
    if (bDone) return i + 2 === aLength && a.charCodeAt(i + 1) === HASH;
    i++;
    j++;
  }
}

/** The index of the "/" ending the level that starts at `start`, or the string's length. */
function levelEnd(value: string, start: number): number {
  const slash = value.indexOf("/", start);
  return slash === -1 ? value.length : slash;
}
