/**
 * Paging for the admin view (`inspect.ts`): the first page of a sorted list without sorting all of it, and the
 * cursor of a count-sorted page.
 *
 * @module
 */

import type { Page } from "./inspect.ts";

/** The `count:id` cursor of a count-sorted page. */
export function parseCursor(after: string | undefined): { value: number; id: string } | undefined {
  if (after === undefined) return undefined;
  const colon = after.indexOf(":");
  const value = Number(after.slice(0, colon));
  if (colon < 0 || !Number.isFinite(value)) return undefined;
  return { value, id: after.slice(colon + 1) };
}

/** The first `limit` of `items` in `order`, sorted: a full sort only when the list is short. */
export function topK<T>(items: T[], k: number, order: (a: T, b: T) => number): T[] {
  if (items.length <= k * 4) return items.sort(order).slice(0, k);
  // A sorted window of k: each item is compared with the window's last, and inserted by binary search.
  const out: T[] = [];
  for (const item of items) {
    if (out.length === k && order(item, out[k - 1]!) >= 0) continue;
    let lo = 0;
    let hi = out.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (order(out[mid]!, item) <= 0) lo = mid + 1;
      else hi = mid;
    }
    out.splice(lo, 0, item);
    if (out.length > k) out.pop();
  }
  return out;
}

/** A page of `limit` from `rest` (the items after the cursor, sorted); `total` counts all that matched. */
export function pageOf<T>(rest: T[], total: number, limit: number, key: (item: T) => string): Page<T> {
  const data = rest.slice(0, limit);
  const next = rest.length > limit ? key(data.at(-1)!) : null;
  return { data, meta: { count: data.length, total, limit, next } };
}
