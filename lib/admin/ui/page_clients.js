// @ts-check
/// <reference lib="dom" />
/**
 * Clients: a filtered, sorted, cursor-paged table. Rows follow the live `client` events: a known client's state
 * cell changes at once, and a connect refetches the page (debounced) so that new clients appear.
 *
 * @module
 */

import { describe, getPage, query } from "./api.js";
import { actionButton, clientLink, kickClient } from "./client_actions.js";
import {
  debounce,
  field,
  formatBytes,
  formatNumber,
  formatTime,
  h,
  notice,
  replace,
  searchInput,
  select,
  table,
  tableRow,
} from "./dom.js";
import { cursorPager } from "./pager.js";
import { onLive } from "./live.js";

/** @typedef {import("./api.js").Client} Client */
/** @typedef {import("./api.js").ClientEvent} ClientEvent */
/** @template T @typedef {import("./dom.js").Column<T>} Column */

const PAGE_SIZE = 50;

/**
 * The state cell's text for a client.
 * @param {Client} client
 * @returns {string}
 */
function stateText(client) {
  if (!client.connected) return "offline";
  return client.congested ? "congested" : "online";
}

/**
 * @param {HTMLElement} root
 * @returns {() => void}
 */
export function mountClients(root) {
  const status = h("p", { class: "notice", testid: "clients-status" });
  const stateFilter = select({ testid: "filter-state" }, [["", "all"], ["connected", "connected"], [
    "offline",
    "offline",
  ]]);
  const prefixFilter = searchInput("client id prefix", "filter-prefix");
  const userFilter = searchInput("username", "filter-username");
  const sort = select({ testid: "sort" }, [
    ["clientId", "client id"],
    ["queued", "queued"],
    ["queuedBytes", "queued bytes"],
    ["dropped", "dropped"],
    ["inflight", "in flight"],
  ]);
  const tableBox = h("div", { class: "table-box", testid: "clients-table" });
  const pager = cursorPager(() => void load(), "clients-page-info");
  const refresh = h("button", { type: "button", testid: "refresh" }, "Refresh");

  /** @type {Map<string, { row: HTMLTableRowElement, client: Client }>} */
  let rows = new Map();
  let active = true;

  /** @type {readonly (Column<Client> & { optional?: keyof Client })[]} */
  const allColumns = [
    { title: "Client id", cell: (c) => clientLink(c.clientId) },
    {
      title: "State",
      cell: (c) => h("span", { class: `state ${stateText(c)}`, testid: "client-state" }, stateText(c)),
    },
    { title: "User", cell: (c) => c.username ?? "" },
    { title: "Remote", cell: (c) => c.remoteAddress ?? "", class: "mono" },
    { title: "Listener", cell: (c) => c.listener ?? "", optional: "listener" },
    { title: "Proto", cell: (c) => c.protocol ?? "" },
    { title: "Since", cell: (c) => formatTime(c.connected ? c.connectedAt : c.disconnectedAt) },
    {
      title: "Msgs in / out",
      cell: (c) => `${formatNumber(c.msgsIn)} / ${formatNumber(c.msgsOut)}`,
      class: "num",
      optional: "msgsIn",
    },
    { title: "Subs", cell: (c) => formatNumber(c.subscriptions), class: "num" },
    {
      title: "In flight",
      cell: (c) => `${formatNumber(c.inflight)} / ${formatNumber(c.inflightMax)}`,
      class: "num",
    },
    {
      title: "Queued",
      cell: (c) => `${formatNumber(c.queued)} · ${formatBytes(c.queuedBytes)}`,
      class: "num",
    },
    { title: "Dropped", cell: (c) => formatNumber(c.dropped), class: "num" },
    {
      title: "",
      cell: (c) =>
        c.connected
          ? actionButton("Kick", "kick", () => void kick(c.clientId), "danger")
          : actionButton("Discard", "discard", () => void discard(c.clientId)),
    },
  ];

  /** The columns shown: those the server fills. */
  let columns = allColumns;

  /** @param {Client} client */
  const rowProps = (client) => ({
    testid: "client-row",
    "data-client-id": client.clientId,
    class: client.connected ? "" : "offline",
  });

  /** @returns {Promise<void>} */
  async function load() {
    try {
      const page = await getPage(`/clients${
        query({
          state: stateFilter.value,
          prefix: prefixFilter.value,
          username: userFilter.value,
          sort: sort.value,
          limit: PAGE_SIZE,
          after: pager.cursor(),
        })
      }`);
      if (!active) return;
      const clients = /** @type {Client[]} */ (page.data);
      rows = new Map();
      // Columns the server does not fill (an older or smaller build) are left out rather than shown empty.
      columns = allColumns.filter((c) => {
        const key = c.optional;
        return key === undefined || clients.some((x) => x[key] !== undefined && x[key] !== null);
      });
      const t = table(columns, clients, rowProps, "No clients match.");
      for (const tr of t.tBodies[0]?.rows ?? []) {
        const id = tr.dataset["clientId"];
        const client = clients.find((c) => c.clientId === id);
        if (id !== undefined && client) rows.set(id, { row: tr, client });
      }
      replace(tableBox, t);
      pager.loaded(clients.length, page.meta.total, page.meta.next);
    } catch (error) {
      if (active) notice(status, describe(error), "error");
    }
  }
  const reload = debounce(() => void load(), 300);

  /** @param {string} clientId @param {Partial<Client>} change */
  function updateRow(clientId, change) {
    const entry = rows.get(clientId);
    if (entry === undefined) return false;
    const client = { ...entry.client, ...change };
    const row = tableRow(columns, client, rowProps(client));
    entry.row.replaceWith(row);
    rows.set(clientId, { row, client });
    return true;
  }

  /** @param {string} clientId */
  async function kick(clientId) {
    if (await kickClient(clientId, false, status)) {
      updateRow(clientId, { connected: false, disconnectedAt: Date.now() });
    }
  }
  /** @param {string} clientId */
  async function discard(clientId) {
    if (await kickClient(clientId, true, status)) reload();
  }

  const stopLive = onLive("client", (data) => {
    const event = /** @type {ClientEvent} */ (data);
    if (event.event === "overflow") {
      reload();
      return;
    }
    if (typeof event.clientId !== "string") return;
    if (event.event === "connected") {
      // The row shows the change now; the refetch brings the new numbers and clients not on the page yet.
      updateRow(event.clientId, { connected: true, connectedAt: event.at ?? Date.now() });
      reload();
    } else if (event.event === "disconnected" || event.event === "kicked" || event.event === "takeover") {
      updateRow(event.clientId, { connected: false, disconnectedAt: event.at ?? Date.now() });
    }
  });

  const restart = pager.restart;
  stateFilter.addEventListener("change", restart);
  sort.addEventListener("change", restart);
  const typed = debounce(restart, 300);
  prefixFilter.addEventListener("input", typed);
  userFilter.addEventListener("input", typed);
  refresh.addEventListener("click", () => void load());

  replace(
    root,
    h("h1", {}, "Clients"),
    h(
      "div",
      { class: "toolbar" },
      field("State", stateFilter),
      field("Prefix", prefixFilter),
      field("User", userFilter),
      field("Sort by", sort),
      refresh,
    ),
    status,
    tableBox,
    pager.element,
  );
  void load();

  return () => {
    active = false;
    stopLive();
    reload.cancel();
    typed.cancel();
  };
}
