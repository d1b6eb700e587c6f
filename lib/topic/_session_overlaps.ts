/**
 * Which of a session's non-shared subscriptions overlap (can match the same topic). A subscription with no
 * overlapping sibling is delivered by `TopicRouter.match()` as is; one with overlaps carries the `OVERLAPS` flag,
 * and match() merges the session's deliveries into one [MQTT-3.3.4-2 (5.0)]. The counts are kept up to date on
 * subscribe and unsubscribe, so match() never compares filters. Private to the router.
 *
 * @module
 */

import { filterShape, filtersOverlap, shapesMayOverlap } from "./_filter_overlap.ts";
import { type ClientRecord, type DirectEntry, writeEntry } from "./_router_nodes.ts";

/**
 * Above this many non-shared subscriptions a session's filters are no longer compared pairwise on subscribe;
 * all of them are merged at match time instead. Keeps subscribe O(limit) for sessions with huge subscription
 * lists (see bench/router_bench.ts for the match cost this pairing saves).
 */
const OVERLAP_SCAN_LIMIT = 128;

/**
 * Counts a new entry's overlaps with its session's other direct subscriptions, then adds it to the session's
 * direct list. The caller writes the entry's flags afterwards ({@linkcode writeEntry}).
 */
export function trackOverlaps(entry: DirectEntry): void {
  const client = entry.client;
  const filter = entry.subscription.filter;
  const shape = filterShape(filter);
  const direct = client.direct;
  if (!client.crowded) {
    if (direct.length >= OVERLAP_SCAN_LIMIT) {
      client.crowded = true;
      for (const other of direct) writeEntry(other);
    } else {
      const filters = client.directFilters;
      const shapes = client.directShapes;
      for (let i = 0; i < filters.length; i++) {
        if (!shapesMayOverlap(shape, shapes[i]!) || !filtersOverlap(filter, filters[i]!)) continue;
        const other = direct[i]!;
        entry.overlaps++;
        if (other.overlaps++ === 0) writeEntry(other);
      }
    }
  }
  direct.push(entry);
  client.directFilters.push(filter);
  client.directShapes.push(shape);
}

/** Takes a removed entry out of its session's direct list and overlap counts. */
export function untrackOverlaps(entry: DirectEntry): void {
  const client = entry.client;
  const direct = client.direct;
  const filters = client.directFilters;
  const shapes = client.directShapes;
  const moved = direct.pop()!;
  const movedFilter = filters.pop()!;
  const movedShape = shapes.pop()!;
  if (moved !== entry) {
    direct[entry.directIndex] = moved;
    filters[entry.directIndex] = movedFilter;
    shapes[entry.directIndex] = movedShape;
    moved.directIndex = entry.directIndex;
  }
  if (client.crowded) {
    if (direct.length > OVERLAP_SCAN_LIMIT / 2) return;
    // Few enough again: count the overlaps afresh.
    client.crowded = false;
    for (const other of direct) other.overlaps = 0;
    for (let i = 0; i < direct.length; i++) {
      for (let j = i + 1; j < direct.length; j++) {
        if (shapesMayOverlap(shapes[i]!, shapes[j]!) && filtersOverlap(filters[i]!, filters[j]!)) {
          direct[i]!.overlaps++;
          direct[j]!.overlaps++;
        }
      }
    }
    for (const other of direct) writeEntry(other);
    return;
  }
  if (entry.overlaps === 0) return;
  const filter = entry.subscription.filter;
  const shape = filterShape(filter);
  for (let i = 0; i < filters.length; i++) {
    if (!shapesMayOverlap(shape, shapes[i]!) || !filtersOverlap(filter, filters[i]!)) continue;
    if (--direct[i]!.overlaps === 0) writeEntry(direct[i]!);
  }
}

/** Forgets a session's direct list whole; its overlap counts need no upkeep as the session goes away. */
export function clearOverlaps(client: ClientRecord): void {
  client.direct.length = 0;
  client.directFilters.length = 0;
  client.directShapes.length = 0;
}
