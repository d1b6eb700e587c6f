// @ts-check
/// <reference lib="dom" />
/**
 * Building DOM nodes without HTML: every string becomes a text node or an attribute value, never markup, because
 * client ids, usernames, topics and payloads come from the network (hostile). Nothing here parses HTML.
 *
 * @module
 */

/** @typedef {string | number | boolean | null | undefined} Scalar */
/** @typedef {Node | Scalar | readonly (Node | Scalar | readonly (Node | Scalar)[])[]} Child nested arrays flatten */
/**
 * Element properties: `class`, `testid` (becomes `data-testid`), `on<event>` listeners, other attributes.
 * @typedef {Record<string, Scalar | ((event: Event) => void)>} Props
 */

/**
 * Creates `<tag>` with `props` and `children`; strings and numbers become text nodes.
 * @param {string} tag
 * @param {Props} [props]
 * @param {...Child} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      element.className = String(value);
    } else if (key === "testid") {
      element.dataset["testid"] = String(value);
    } else if (key === "style" || key.startsWith("on")) {
      // Inline styles and handler attributes are refused by the CSP anyway; never set them from data.
      throw new Error(`h(): attribute ${key} is not allowed`);
    } else if (value === true) {
      element.setAttribute(key, "");
    } else {
      element.setAttribute(key, String(value));
    }
  }
  append(element, children);
  return element;
}

/**
 * Appends children (text for scalars, nested arrays flattened) to `parent`.
 * @param {Node} parent
 * @param {readonly Child[]} children
 * @returns {void}
 */
export function append(parent, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (child instanceof Node) parent.appendChild(child);
    else if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
}

/**
 * Replaces the children of `parent`.
 * @param {Node} parent
 * @param {...Child} children
 * @returns {void}
 */
export function replace(parent, ...children) {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, children);
}

/**
 * One column of a table: a heading and how to render a row's cell.
 * @template T
 * @typedef {{ title: string, cell: (row: T) => Child, class?: string }} Column
 */

/**
 * A `<table>` of `rows`; `rowProps` adds attributes (a test id, a class) per row.
 * @template T
 * @param {readonly Column<T>[]} columns
 * @param {readonly T[]} rows
 * @param {(row: T) => Props} [rowProps]
 * @param {string} [empty] shown in a single cell when there are no rows
 * @returns {HTMLTableElement}
 */
export function table(columns, rows, rowProps, empty = "Nothing here.") {
  const head = h("tr", {}, columns.map((c) => h("th", c.class ? { class: c.class } : {}, c.title)));
  const body = rows.length === 0
    ? [h("tr", {}, h("td", { class: "empty", colspan: columns.length }, empty))]
    : rows.map((row) => tableRow(columns, row, rowProps ? rowProps(row) : {}));
  return /** @type {HTMLTableElement} */ (h("table", {}, h("thead", {}, head), h("tbody", {}, body)));
}

/**
 * One `<tr>` of `table()`, for pages that update rows in place.
 * @template T
 * @param {readonly Column<T>[]} columns
 * @param {T} row
 * @param {Props} [props]
 * @returns {HTMLTableRowElement}
 */
export function tableRow(columns, row, props = {}) {
  return /** @type {HTMLTableRowElement} */ (h(
    "tr",
    props,
    columns.map((c) => h("td", c.class ? { class: c.class } : {}, c.cell(row))),
  ));
}

/**
 * A definition list of label/value pairs.
 * @param {readonly [string, Child][]} pairs
 * @param {string} [testid]
 * @returns {HTMLElement}
 */
export function facts(pairs, testid) {
  return h("dl", { class: "facts", testid }, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

/**
 * A labelled form field.
 * @param {string} label
 * @param {HTMLElement} input
 * @returns {HTMLElement}
 */
export function field(label, input) {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

/**
 * `<input type="search">`, the filter box of the list pages.
 * @param {string} placeholder
 * @param {string} testid
 * @returns {HTMLInputElement}
 */
export function searchInput(placeholder, testid) {
  return /** @type {HTMLInputElement} */ (h("input", { type: "search", placeholder, testid }));
}

/**
 * `<select>` with `options` as [value, label] pairs.
 * @param {Props} props
 * @param {readonly (readonly [string, string])[]} options
 * @returns {HTMLSelectElement}
 */
export function select(props, options) {
  return /** @type {HTMLSelectElement} */ (h(
    "select",
    props,
    options.map(([value, label]) => h("option", { value }, label)),
  ));
}

/**
 * A short message in a status line (errors in red).
 * @param {HTMLElement} target
 * @param {string} text
 * @param {"ok" | "error" | "info"} [kind]
 * @returns {void}
 */
export function notice(target, text, kind = "info") {
  target.className = `notice ${kind}`;
  target.textContent = text;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/**
 * `1536` → `1.5 KiB`.
 * @param {number | undefined} bytes
 * @returns {string}
 */
export function formatBytes(bytes) {
  if (bytes === undefined || !Number.isFinite(bytes)) return "–";
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? Math.round(value) : value.toFixed(1)} ${UNITS[unit]}`;
}

/**
 * A count or rate, rounded for a card.
 * @param {number | undefined} value
 * @returns {string}
 */
export function formatNumber(value) {
  if (value === undefined || value === null || !Number.isFinite(value)) return "–";
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return value.toLocaleString("en-US", { maximumFractionDigits: value < 10 ? 2 : 1 });
}

/**
 * Seconds as `3d 4h`, `5m 2s`.
 * @param {number | undefined} seconds
 * @returns {string}
 */
export function formatDuration(seconds) {
  if (seconds === undefined || seconds === null || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const hr = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${hr}h`;
  if (hr > 0) return `${hr}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

/**
 * An epoch-milliseconds time as local `HH:MM:SS` (today) or date and time.
 * @param {number | string | null | undefined} at
 * @returns {string}
 */
export function formatTime(at) {
  if (at === undefined || at === null || at === "") return "–";
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) return String(at);
  const now = new Date();
  const sameDay = date.toDateString() === now.toDateString();
  return sameDay ? date.toLocaleTimeString("en-GB") : date.toLocaleString("en-GB");
}

/**
 * Calls `fn` at most once per `ms`, after the last call (trailing debounce).
 * @param {() => void} fn
 * @param {number} ms
 * @returns {{ (): void, cancel(): void }}
 */
export function debounce(fn, ms) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const run = () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
  run.cancel = () => clearTimeout(timer);
  return run;
}
