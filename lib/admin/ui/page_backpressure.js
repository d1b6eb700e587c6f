// @ts-check
/// <reference lib="dom" />
/**
 * Backpressure: which clients hold the broker's memory or lose messages. The sessions with the most queued
 * messages, the most dropped, the congested ones (output not draining), and offline sessions holding queues with
 * their expiry. Polled every 2 s; the server picks each top-K, so this stays cheap with many clients.
 *
 * @module
 */

import { describe, getPage, query } from "./api.js";
import { actionButton, clientLink, kickClient } from "./client_actions.js";
import { formatBytes, formatDuration, formatNumber, formatTime, h, notice, replace, table } from "./dom.js";

/** @typedef {import("./api.js").Client} Client */
/** @template T @typedef {import("./dom.js").Column<T>} Column */

const POLL_MS = 2000;
const TOP = 20;

/**
 * @param {HTMLElement} root
 * @returns {() => void}
 */
export function mountBackpressure(root) {
  const status = h("p", { class: "notice", testid: "backpressure-status" });
  const boxes = {
    queued: h("div", { testid: "backpressure-queued" }),
    dropped: h("div", { testid: "backpressure-dropped" }),
    congested: h("div", { testid: "backpressure-congested" }),
    offline: h("div", { testid: "backpressure-offline" }),
  };

  /** @param {string} clientId @param {boolean} discard */
  const act = (clientId, discard) => void kickClient(clientId, discard, status).then(() => load());

  /** @type {readonly Column<Client>[]} */
  const online = [
    { title: "Client id", cell: (c) => clientLink(c.clientId) },
    { title: "Queued", cell: (c) => `${formatNumber(c.queued)} / ${formatNumber(c.queueMax)}`, class: "num" },
    { title: "Queued bytes", cell: (c) => formatBytes(c.queuedBytes), class: "num" },
    {
      title: "In flight / window",
      cell: (c) => `${formatNumber(c.inflight)} / ${formatNumber(c.inflightMax)}`,
      class: "num",
    },
    { title: "Unwritten", cell: (c) => formatBytes(c.outputBytes), class: "num" },
    { title: "Dropped", cell: (c) => formatNumber(c.dropped), class: "num" },
    { title: "Congested", cell: (c) => (c.congested ? "yes" : "no") },
    {
      title: "",
      cell: (c) =>
        c.connected
          ? actionButton("Kick", "kick", () => act(c.clientId, false), "danger")
          : actionButton("Discard", "discard", () => act(c.clientId, true), "danger"),
    },
  ];
  /** @type {readonly Column<Client>[]} */
  const offline = [
    { title: "Client id", cell: (c) => clientLink(c.clientId) },
    { title: "Queued", cell: (c) => formatNumber(c.queued), class: "num" },
    { title: "Queued bytes", cell: (c) => formatBytes(c.queuedBytes), class: "num" },
    { title: "Dropped", cell: (c) => formatNumber(c.dropped), class: "num" },
    { title: "Offline since", cell: (c) => formatTime(c.disconnectedAt) },
    { title: "Expires in", cell: (c) => expiresIn(c) },
    { title: "", cell: (c) => actionButton("Discard", "discard", () => act(c.clientId, true), "danger") },
  ];

  let active = true;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;

  /** @returns {Promise<void>} */
  async function load() {
    clearTimeout(timer);
    try {
      const [queued, dropped, asleep] = await Promise.all([
        getPage(`/clients${query({ state: "connected", sort: "queued", limit: TOP * 5 })}`),
        getPage(`/clients${query({ sort: "dropped", limit: TOP })}`),
        getPage(`/clients${query({ state: "offline", sort: "queued", limit: TOP })}`),
      ]);
      if (!active) return;
      const byQueue = /** @type {Client[]} */ (queued.data);
      const rowProps = () => ({ testid: "backpressure-row" });
      replace(boxes.queued, table(online, byQueue.slice(0, TOP), rowProps, "No connected clients."));
      replace(
        boxes.dropped,
        table(
          online,
          /** @type {Client[]} */ (dropped.data).filter((c) => (c.dropped ?? 0) > 0),
          rowProps,
          "No client has lost a message.",
        ),
      );
      replace(
        boxes.congested,
        table(online, byQueue.filter((c) => c.congested), rowProps, "No congested clients."),
      );
      replace(
        boxes.offline,
        table(offline, /** @type {Client[]} */ (asleep.data), rowProps, "No offline sessions."),
      );
      notice(status, `Updated ${formatTime(Date.now())}.`);
    } catch (error) {
      if (active) notice(status, describe(error), "error");
    }
    if (active) timer = setTimeout(() => void load(), POLL_MS);
  }

  replace(
    root,
    h("h1", {}, "Backpressure"),
    h(
      "p",
      { class: "muted" },
      "Slow consumers: queues that grow, windows that stay full, output that does not drain, and messages lost.",
    ),
    status,
    h("section", { class: "panel" }, h("h2", {}, "Most queued (connected)"), boxes.queued),
    h("section", { class: "panel" }, h("h2", {}, "Congested (output not draining)"), boxes.congested),
    h("section", { class: "panel" }, h("h2", {}, "Most dropped"), boxes.dropped),
    h("section", { class: "panel" }, h("h2", {}, "Offline sessions holding queues"), boxes.offline),
  );
  void load();
  return () => {
    active = false;
    clearTimeout(timer);
  };
}

/**
 * The time left before an offline session expires.
 * @param {Client} c
 * @returns {string}
 */
function expiresIn(c) {
  if (c.sessionExpiry === undefined || c.disconnectedAt === undefined || c.disconnectedAt === null) {
    return "–";
  }
  if (c.sessionExpiry >= 0xffffffff) return "never";
  return formatDuration(c.sessionExpiry - (Date.now() - c.disconnectedAt) / 1000);
}
