// @ts-check
/// <reference lib="dom" />
/**
 * The cursor pager of the list pages (clients, subscriptions, retained messages): Previous and Next over the API's
 * `meta.next` cursors, a line saying what is shown, and a restart from the first page when a filter changes.
 *
 * @module
 */

import { formatNumber, h } from "./dom.js";

/**
 * @typedef {object} CursorPager
 * @property {HTMLElement} element The bar: Previous, what is shown, Next.
 * @property {() => string} cursor The cursor of the page to load ("" for the first).
 * @property {(shown: number, total: number | undefined, next: string | null | undefined, more?: string) => void}
 *   loaded Says a page came: how many rows, of how many, the cursor after it, and text to add to the line.
 * @property {() => void} restart Goes back to the first page and loads it.
 */

/**
 * A pager that calls `load` whenever the page to show changes.
 *
 * @param {() => void} load
 * @param {string} [infoTestid] The test id of the "shown of" line.
 * @returns {CursorPager}
 */
export function cursorPager(load, infoTestid) {
  const info = h(
    "span",
    infoTestid === undefined ? { class: "muted" } : { class: "muted", testid: infoTestid },
  );
  const prev =
    /** @type {HTMLButtonElement} */ (h("button", { type: "button", testid: "page-prev" }, "‹ Previous"));
  const next =
    /** @type {HTMLButtonElement} */ (h("button", { type: "button", testid: "page-next" }, "Next ›"));
  /** Cursors of the pages before the current one ("" = first page). */
  /** @type {string[]} */
  let cursors = [];
  let cursor = "";
  /** @type {string | null | undefined} */
  let nextCursor = null;
  prev.addEventListener("click", () => {
    cursor = cursors.pop() ?? "";
    load();
  });
  next.addEventListener("click", () => {
    if (!nextCursor) return;
    cursors.push(cursor);
    cursor = nextCursor;
    load();
  });
  return {
    element: h("div", { class: "pager" }, prev, info, next),
    cursor: () => cursor,
    loaded(shown, total, following, more = "") {
      nextCursor = following;
      info.textContent = `${shown} shown of ${formatNumber(total ?? shown)}${more} · page ${
        cursors.length + 1
      }`;
      prev.disabled = cursors.length === 0;
      next.disabled = !following;
    },
    restart() {
      cursors = [];
      cursor = "";
      load();
    },
  };
}
