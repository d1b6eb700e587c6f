// @ts-check
/// <reference lib="dom" />
/**
 * Overview: cards with the gauges and per-second rates, and charts backfilled from an hour of 10 s history then
 * moved along by the 1 s `stats` events of the live stream.
 *
 * @module
 */

import { describe, get } from "./api.js";
import { LiveChart } from "./chart.js";
import { countersPanel } from "./counters_panel.js";
import { formatBytes, formatDuration, formatNumber, h, notice, replace } from "./dom.js";
import { onLive, recentStatsEvents } from "./live.js";

/** @typedef {import("./api.js").Stats} Stats */
/**
 * @typedef {{ version?: string, deno?: string, startedAt?: number | string, uptimeSeconds?: number,
 *   persistence?: string, pid?: number }} BrokerInfo
 */
/** @typedef {{ t: number[] } & Record<string, (number | null)[] | number>} History */

/** @typedef {{ key: string, label: string, value: (s: Stats) => string }} Card */

/**
 * @param {Record<string, number> | undefined} group
 * @param {string} key
 * @returns {number | undefined}
 */
function read(group, key) {
  const value = group?.[key];
  return typeof value === "number" ? value : undefined;
}

/** @type {readonly Card[]} */
const CARDS = [
  {
    key: "clientsConnected",
    label: "Clients connected",
    value: (s) => formatNumber(read(s.gauges, "clientsConnected")),
  },
  {
    key: "sessions",
    label: "Sessions online / offline",
    value: (s) =>
      `${formatNumber(read(s.gauges, "sessionsOnline"))} / ${
        formatNumber(read(s.gauges, "sessionsOffline"))
      }`,
  },
  {
    key: "subscriptions",
    label: "Subscriptions (shared)",
    value: (s) =>
      `${formatNumber(read(s.gauges, "subscriptions"))} (${
        formatNumber(read(s.gauges, "sharedSubscriptions"))
      })`,
  },
  {
    key: "retained",
    label: "Retained",
    value: (s) =>
      `${formatNumber(read(s.gauges, "retained"))} · ${formatBytes(read(s.gauges, "retainedBytes"))}`,
  },
  {
    key: "msgRates",
    label: "Messages in / out per s",
    value: (s) => `${formatNumber(read(s.rates, "msgIn"))} / ${formatNumber(read(s.rates, "msgOut"))}`,
  },
  {
    key: "byteRates",
    label: "Bytes in / out per s",
    value: (s) => `${formatBytes(read(s.rates, "bytesIn"))} / ${formatBytes(read(s.rates, "bytesOut"))}`,
  },
  { key: "dropped", label: "Dropped per s", value: (s) => formatNumber(read(s.rates, "dropped")) },
  { key: "connects", label: "Connects per s", value: (s) => formatNumber(read(s.rates, "connects")) },
  { key: "inflight", label: "In flight", value: (s) => formatNumber(read(s.gauges, "inflight")) },
  {
    key: "queued",
    label: "Queued",
    value: (s) => `${formatNumber(read(s.gauges, "queued"))} · ${formatBytes(read(s.gauges, "queuedBytes"))}`,
  },
  { key: "congested", label: "Congested clients", value: (s) => formatNumber(read(s.gauges, "congested")) },
  {
    key: "connections",
    label: "Open connections",
    value: (s) => formatNumber(read(s.gauges, "connections")),
  },
];

/**
 * @param {HTMLElement} root
 * @returns {() => void}
 */
export function mountOverview(root) {
  const status = h("p", { class: "notice", testid: "overview-status" });
  /** @type {Map<string, HTMLElement>} */
  const values = new Map();
  const cards = h(
    "div",
    { class: "cards" },
    CARDS.map((card) => {
      const value = h("div", { class: "value", testid: `stat-${card.key}` }, "–");
      values.set(card.key, value);
      return h(
        "div",
        { class: "card", testid: `card-${card.key}` },
        h("div", { class: "label" }, card.label),
        value,
      );
    }),
  );
  const uptime = h("div", { class: "value", testid: "stat-uptime" }, "–");
  const version = h("div", { class: "value small", testid: "stat-version" }, "–");
  const persistence = h("div", { class: "value small", testid: "stat-persistence" }, "–");
  cards.append(
    h("div", { class: "card" }, h("div", { class: "label" }, "Uptime"), uptime),
    h("div", { class: "card" }, h("div", { class: "label" }, "Version"), version),
    h("div", { class: "card" }, h("div", { class: "label" }, "Persistence"), persistence),
  );

  const counters = countersPanel();
  const chartBoxes = {
    messages: h("div", { class: "chart", testid: "chart-messages" }),
    clients: h("div", { class: "chart", testid: "chart-clients" }),
    queues: h("div", { class: "chart", testid: "chart-queues" }),
    bytes: h("div", { class: "chart", testid: "chart-bytes" }),
  };
  replace(
    root,
    h("h1", {}, "Overview"),
    status,
    cards,
    h(
      "div",
      { class: "charts" },
      h("section", { class: "panel" }, h("h2", {}, "Messages per second"), chartBoxes.messages),
      h("section", { class: "panel" }, h("h2", {}, "Clients and subscriptions"), chartBoxes.clients),
      h("section", { class: "panel" }, h("h2", {}, "Bytes per second"), chartBoxes.bytes),
      h("section", { class: "panel" }, h("h2", {}, "Queued and dropped"), chartBoxes.queues),
    ),
    counters.element,
  );

  const rate = (/** @type {number} */ v) => formatNumber(v);
  const charts = {
    messages: new LiveChart(chartBoxes.messages, [
      { label: "in", color: "#2563eb", format: rate },
      { label: "out", color: "#16a34a", format: rate },
    ]),
    clients: new LiveChart(chartBoxes.clients, [
      { label: "clients", color: "#7c3aed", format: rate },
      { label: "subscriptions", color: "#d97706", format: rate },
    ]),
    bytes: new LiveChart(chartBoxes.bytes, [
      { label: "in", color: "#0891b2", format: formatBytes },
      { label: "out", color: "#65a30d", format: formatBytes },
    ]),
    queues: new LiveChart(chartBoxes.queues, [
      { label: "queued", color: "#db2777", format: rate },
      { label: "dropped/s", color: "#dc2626", format: rate },
    ]),
  };

  /** @type {number | undefined} */
  let startedAtMs;
  /** @param {Stats} stats */
  const showStats = (stats) => {
    for (const card of CARDS) {
      const target = values.get(card.key);
      if (target) target.textContent = card.value(stats);
    }
    if (startedAtMs !== undefined) uptime.textContent = formatDuration((Date.now() - startedAtMs) / 1000);
    counters.update(/** @type {import("./counters_panel.js").Counters | undefined} */ (stats.counters));
  };
  /** @param {Stats} stats */
  const pushStats = (stats) => {
    const at = typeof stats.time === "number" ? stats.time : Date.now();
    charts.messages.push(at, [read(stats.rates, "msgIn") ?? null, read(stats.rates, "msgOut") ?? null]);
    charts.clients.push(at, [
      read(stats.gauges, "clientsConnected") ?? null,
      read(stats.gauges, "subscriptions") ?? null,
    ]);
    charts.bytes.push(at, [read(stats.rates, "bytesIn") ?? null, read(stats.rates, "bytesOut") ?? null]);
    charts.queues.push(at, [read(stats.gauges, "queued") ?? null, read(stats.rates, "dropped") ?? null]);
  };

  // The live points received while another page was open, then the new ones.
  for (const data of recentStatsEvents()) {
    const stats = /** @type {Stats} */ (data);
    if (typeof stats === "object" && stats !== null && typeof stats.gauges === "object") pushStats(stats);
  }
  let active = true;
  const stopLive = onLive("stats", (data) => {
    const stats = /** @type {Stats} */ (data);
    if (typeof stats !== "object" || stats === null || typeof stats.gauges !== "object") return;
    showStats(stats);
    pushStats(stats);
  });

  void (async () => {
    try {
      const [stats, broker] = await Promise.all([get("/stats"), get("/broker")]);
      if (!active) return;
      const info = /** @type {BrokerInfo} */ (broker);
      version.textContent = [info.version ?? "", info.deno ? `Deno ${info.deno}` : ""]
        .filter((x) => x !== "").join(" · ") || "–";
      persistence.textContent = info.persistence ?? "–";
      if (typeof info.uptimeSeconds === "number") startedAtMs = Date.now() - info.uptimeSeconds * 1000;
      else if (info.startedAt !== undefined) startedAtMs = new Date(info.startedAt).getTime();
      showStats(/** @type {Stats} */ (stats));
    } catch (error) {
      if (active) notice(status, describe(error), "error");
    }
  })();
  // Separately: a broker that keeps no history (503) still has live cards and charts.
  void get("/stats/history?seconds=3600").then((history) => {
    if (active) backfill(/** @type {History} */ (history));
  }, () => {});

  /** @param {History} history */
  function backfill(history) {
    const t = Array.isArray(history?.t) ? history.t : [];
    /** @param {string} key */
    const column = (key) => {
      const c = history[key];
      return Array.isArray(c) ? c : t.map(() => null);
    };
    charts.messages.backfill(t, [column("msgIn"), column("msgOut")]);
    charts.clients.backfill(t, [column("clientsConnected"), column("subscriptions")]);
    charts.bytes.backfill(t, [column("bytesIn"), column("bytesOut")]);
    charts.queues.backfill(t, [column("queued"), column("dropped")]);
  }

  return () => {
    active = false;
    stopLive();
    for (const chart of Object.values(charts)) chart.destroy();
  };
}
