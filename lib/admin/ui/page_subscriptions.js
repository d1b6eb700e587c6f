// @ts-check
/// <reference lib="dom" />
/**
 * Subscriptions: the flat list, filtered by filter text, client id or share group, cursor-paged.
 *
 * @module
 */

import { describe, getPage, query } from "./api.js";
import { clientLink } from "./client_actions.js";
import { debounce, field, formatNumber, h, notice, replace, table } from "./dom.js";

/** @typedef {import("./api.js").Subscription} Subscription */

const PAGE_SIZE = 100;

/**
 * @param {HTMLElement} root
 * @returns {() => void}
 */
export function mountSubscriptions(root) {
  const status = h("p", { class: "notice", testid: "subscriptions-status" });
  /** @param {string} placeholder @param {string} testid */
  const input = (
    placeholder,
    testid,
  ) => /** @type {HTMLInputElement} */ (h("input", { type: "search", placeholder, testid }));
  const filter = input("filter", "filter-filter");
  const clientId = input("client id", "filter-client");
  const share = input("share group", "filter-share");
  const box = h("div", { class: "table-box", testid: "subscriptions-table" });
  const info = h("span", { class: "muted" });
  const prev =
    /** @type {HTMLButtonElement} */ (h("button", { type: "button", testid: "page-prev" }, "‹ Previous"));
  const next =
    /** @type {HTMLButtonElement} */ (h("button", { type: "button", testid: "page-next" }, "Next ›"));
  /** @type {string[]} */
  let cursors = [];
  let cursor = "";
  /** @type {string | null | undefined} */
  let nextCursor;
  let active = true;

  /** @returns {Promise<void>} */
  async function load() {
    try {
      const page = await getPage(`/subscriptions${
        query({
          filter: filter.value,
          clientId: clientId.value,
          share: share.value,
          limit: PAGE_SIZE,
          after: cursor,
        })
      }`);
      if (!active) return;
      const rows = /** @type {Subscription[]} */ (page.data);
      nextCursor = page.meta.next;
      replace(
        box,
        table(
          [
            { title: "Client id", cell: (s) => (s.clientId === undefined ? "" : clientLink(s.clientId)) },
            { title: "Filter", cell: (s) => s.filter, class: "mono" },
            { title: "QoS", cell: (s) => s.qos },
            { title: "Share group", cell: (s) => s.shareGroup ?? "" },
            { title: "No local", cell: (s) => (s.noLocal ? "yes" : "") },
            { title: "Retain as published", cell: (s) => (s.retainAsPublished ? "yes" : "") },
            { title: "Id", cell: (s) => s.identifier ?? "" },
          ],
          rows,
          () => ({ testid: "subscription-row" }),
          "No subscriptions match.",
        ),
      );
      info.textContent = `${rows.length} shown of ${formatNumber(page.meta.total ?? rows.length)} · page ${
        cursors.length + 1
      }`;
      prev.disabled = cursors.length === 0;
      next.disabled = !nextCursor;
    } catch (error) {
      if (active) notice(status, describe(error), "error");
    }
  }
  const restart = debounce(() => {
    cursors = [];
    cursor = "";
    void load();
  }, 300);
  for (const i of [filter, clientId, share]) i.addEventListener("input", restart);
  prev.addEventListener("click", () => {
    cursor = cursors.pop() ?? "";
    void load();
  });
  next.addEventListener("click", () => {
    if (!nextCursor) return;
    cursors.push(cursor);
    cursor = nextCursor;
    void load();
  });

  replace(
    root,
    h("h1", {}, "Subscriptions"),
    h(
      "div",
      { class: "toolbar" },
      field("Filter", filter),
      field("Client", clientId),
      field("Share group", share),
    ),
    status,
    box,
    h("div", { class: "pager" }, prev, info, next),
  );
  void load();
  return () => {
    active = false;
    restart.cancel();
  };
}
