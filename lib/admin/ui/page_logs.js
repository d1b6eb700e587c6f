// @ts-check
/// <reference lib="dom" />
/**
 * Logs: the broker's recent structured records (its ring of the last 1000), then new ones from the live stream,
 * filtered by level, event id and client id. Newest first.
 *
 * @module
 */

import { describe, getPage, query } from "./api.js";
import { debounce, field, formatTime, h, notice, replace, searchInput, select, tableRow } from "./dom.js";
import { onLive } from "./live.js";

/** @typedef {import("./api.js").LogRecord} LogRecord */
/** @template T @typedef {import("./dom.js").Column<T>} Column */

const LEVELS = ["debug", "info", "warn", "error"];
const MAX_ROWS = 1000;
/** Fields shown in their own columns, left out of the "fields" column. */
const OWN = new Set(["time", "level", "msg", "event", "clientId"]);

/** @type {readonly Column<LogRecord>[]} */
const COLUMNS = [
  {
    title: "Time",
    cell: (r) => formatTime(typeof r.time === "number" || typeof r.time === "string" ? r.time : undefined),
  },
  { title: "Level", cell: (r) => h("span", { class: `level ${r.level ?? ""}` }, r.level ?? "") },
  { title: "Event", cell: (r) => r.event ?? "", class: "mono" },
  { title: "Client", cell: (r) => (typeof r["clientId"] === "string" ? r["clientId"] : ""), class: "mono" },
  { title: "Message", cell: (r) => r.msg ?? "" },
  {
    title: "Fields",
    cell: (r) =>
      h(
        "span",
        { class: "mono small" },
        Object.entries(r).filter(([k]) => !OWN.has(k)).map(([k, v]) =>
          `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`
        )
          .join(" "),
      ),
  },
];

/**
 * @param {HTMLElement} root
 * @returns {() => void}
 */
export function mountLogs(root) {
  const status = h("p", { class: "notice", testid: "logs-status" });
  const level = select({ testid: "logs-level" }, [
    ["", "all"],
    ...LEVELS.map((l) => /** @type {const} */ ([l, l])),
  ]);
  const eventFilter = searchInput("client.disconnected", "logs-event");
  const clientFilter = searchInput("client id", "logs-client");
  const pause = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", testid: "logs-pause" }));
  const body = /** @type {HTMLTableSectionElement} */ (h("tbody", { testid: "logs-rows" }));
  /** @type {LogRecord[]} */
  let records = [];
  let active = true;

  /** @param {LogRecord} r */
  function matches(r) {
    const min = LEVELS.indexOf(level.value);
    if (min > 0 && LEVELS.indexOf(r.level ?? "info") < min) return false;
    if (eventFilter.value !== "" && !(r.event ?? "").includes(eventFilter.value)) return false;
    const clientId = typeof r["clientId"] === "string" ? r["clientId"] : "";
    return clientFilter.value === "" || clientId.includes(clientFilter.value);
  }

  function draw() {
    replace(
      body,
      records.filter(matches).slice(0, MAX_ROWS).map((r) => tableRow(COLUMNS, r, { testid: "log-row" })),
    );
  }

  /** @returns {Promise<void>} */
  async function load() {
    try {
      const page = await getPage(`/logs${query({ level: level.value, limit: MAX_ROWS })}`);
      if (!active) return;
      records = /** @type {LogRecord[]} */ (page.data).slice().sort((a, b) => timeOf(b) - timeOf(a));
      draw();
      notice(status, `${records.length} records; new warnings and errors appear live.`);
    } catch (error) {
      if (active) notice(status, describe(error), "error");
    }
  }

  const stopLive = onLive("log", (data) => {
    const record = /** @type {LogRecord} */ (data);
    if (typeof record !== "object" || record === null) return;
    records.unshift(record);
    if (records.length > MAX_ROWS) records.length = MAX_ROWS;
    if (!pause.checked && matches(record)) {
      body.prepend(tableRow(COLUMNS, record, { testid: "log-row" }));
      while (body.rows.length > MAX_ROWS) body.lastElementChild?.remove();
    }
  });

  const redraw = debounce(draw, 200);
  level.addEventListener("change", () => void load());
  eventFilter.addEventListener("input", redraw);
  clientFilter.addEventListener("input", redraw);
  pause.addEventListener("change", () => {
    if (!pause.checked) draw();
  });

  replace(
    root,
    h("h1", {}, "Logs"),
    h(
      "div",
      { class: "toolbar" },
      field("Level", level),
      field("Event", eventFilter),
      field("Client id", clientFilter),
      field("Pause", pause),
    ),
    status,
    h(
      "div",
      { class: "table-box" },
      h(
        "table",
        { testid: "logs-table" },
        h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", {}, c.title)))),
        body,
      ),
    ),
  );
  void load();
  return () => {
    active = false;
    stopLive();
    redraw.cancel();
  };
}

/**
 * @param {LogRecord} r
 * @returns {number}
 */
function timeOf(r) {
  if (typeof r.time === "number") return r.time;
  return typeof r.time === "string" ? Date.parse(r.time) || 0 : 0;
}
