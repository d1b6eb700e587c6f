// @ts-check
/// <reference lib="dom" />
/**
 * Subscriptions: the flat list, filtered by filter text, client id or share group, cursor-paged.
 *
 * @module
 */

import { describe, getPage, query } from "./api.js";
import { clientLink } from "./client_actions.js";
import { debounce, field, h, notice, replace, searchInput, table } from "./dom.js";
import { cursorPager } from "./pager.js";

/** @typedef {import("./api.js").Subscription} Subscription */

const PAGE_SIZE = 100;

/**
 * @param {HTMLElement} root
 * @returns {() => void}
 */
export function mountSubscriptions(root) {
  const status = h("p", { class: "notice", testid: "subscriptions-status" });
  const filter = searchInput("filter", "filter-filter");
  const clientId = searchInput("client id", "filter-client");
  const share = searchInput("share group", "filter-share");
  const box = h("div", { class: "table-box", testid: "subscriptions-table" });
  const pager = cursorPager(() => void load());
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
          after: pager.cursor(),
        })
      }`);
      if (!active) return;
      const rows = /** @type {Subscription[]} */ (page.data);
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
      pager.loaded(rows.length, page.meta.total, page.meta.next);
    } catch (error) {
      if (active) notice(status, describe(error), "error");
    }
  }
  const restart = debounce(pager.restart, 300);
  for (const i of [filter, clientId, share]) i.addEventListener("input", restart);

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
    pager.element,
  );
  void load();
  return () => {
    active = false;
    restart.cancel();
  };
}
