// @ts-check
/// <reference lib="dom" />
/**
 * Retained messages: browse by prefix, bytes per first topic level, view one payload as text, hex or pretty JSON,
 * delete (the same as an empty retained publish). Payloads are shown as text nodes only.
 *
 * @module
 */

import { api, describe, get, getPage, query, segment } from "./api.js";
import { confirmAction } from "./confirm_dialog.js";
import {
  debounce,
  facts,
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
} from "./dom.js";
import { cursorPager } from "./pager.js";

/**
 * A listing entry; the payload is cut to a preview (`preview`, or `payload` as the server's inspector names it).
 * @typedef {{ topic: string, qos: number, bytes?: number, preview?: string, payload?: string,
 *   encoding?: "utf8" | "base64", expiresAt?: number | null }} RetainedEntry
 */
/** @typedef {RetainedEntry & { properties?: Record<string, unknown> | null }} RetainedMessage */

const PAGE_SIZE = 100;

/**
 * The payload's bytes from its wire encoding in the API.
 * @param {string} payload
 * @param {string | undefined} encoding
 * @returns {Uint8Array}
 */
export function payloadBytes(payload, encoding) {
  if (encoding === "base64") {
    const binary = atob(payload);
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  }
  return new TextEncoder().encode(payload);
}

/**
 * A classic hex dump: offset, 16 bytes, printable ASCII.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function hexDump(bytes) {
  const lines = [];
  for (let offset = 0; offset < bytes.length; offset += 16) {
    const chunk = bytes.subarray(offset, offset + 16);
    const hex = [...chunk].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = [...chunk].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${offset.toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join("\n");
}

/**
 * The payload rendered in `mode`, or why it cannot be.
 * @param {Uint8Array} bytes
 * @param {string} mode "text" | "hex" | "json"
 * @returns {string}
 */
export function renderPayload(bytes, mode) {
  if (mode === "hex") return hexDump(bytes);
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  if (mode === "json") {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch (error) {
      return `Not JSON: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  return text;
}

/**
 * @param {HTMLElement} root
 * @param {string} initialTopic a topic to open at once (from the topic tree)
 * @returns {() => void}
 */
export function mountRetained(root, initialTopic) {
  const status = h("p", { class: "notice", testid: "retained-status" });
  const prefix = searchInput("topic prefix", "filter-prefix");
  const box = h("div", { class: "table-box", testid: "retained-table" });
  const prefixes = h("div", { testid: "retained-prefixes" });
  const viewer = h("section", { class: "panel", testid: "retained-viewer" });
  viewer.hidden = true;
  const pager = cursorPager(() => void load());
  let active = true;

  /** @returns {Promise<void>} */
  async function load() {
    try {
      const page = await getPage(
        `/retained${query({ prefix: prefix.value, limit: PAGE_SIZE, after: pager.cursor() })}`,
      );
      if (!active) return;
      const rows = /** @type {RetainedEntry[]} */ (page.data);
      replace(
        box,
        table(
          [
            {
              title: "Topic",
              cell: (r) =>
                h("button", {
                  type: "button",
                  class: "link mono",
                  testid: "retained-open",
                  onclick: () => void view(r.topic),
                }, r.topic),
            },
            { title: "QoS", cell: (r) => r.qos },
            { title: "Size", cell: (r) => formatBytes(r.bytes), class: "num" },
            { title: "Preview", cell: (r) => h("span", { class: "mono preview" }, previewText(r)) },
            { title: "Expires", cell: (r) => (r.expiresAt ? formatTime(r.expiresAt) : "never") },
            {
              title: "",
              cell: (r) =>
                h("button", {
                  type: "button",
                  class: "small danger",
                  testid: "retained-delete",
                  onclick: () => void remove(r.topic),
                }, "Delete"),
            },
          ],
          rows,
          () => ({ testid: "retained-row" }),
          "No retained messages match.",
        ),
      );
      showPrefixes(rows);
      const totalBytes = page.meta.totalBytes === undefined
        ? ""
        : ` · ${formatBytes(page.meta.totalBytes)} in all`;
      pager.loaded(rows.length, page.meta.total, page.meta.next, totalBytes);
    } catch (error) {
      if (active) notice(status, describe(error), "error");
    }
  }

  /** @param {RetainedEntry} r */
  function previewText(r) {
    const preview = r.preview ?? r.payload;
    if (preview === undefined) return "";
    if (r.encoding === "base64") {
      return `(binary) ${hexDump(payloadBytes(preview, "base64").subarray(0, 16))}`;
    }
    return preview;
  }

  /** @param {readonly RetainedEntry[]} rows */
  function showPrefixes(rows) {
    /** @type {Map<string, { count: number, bytes: number }>} */
    const sums = new Map();
    for (const r of rows) {
      const first = r.topic.split("/")[0] ?? "";
      const sum = sums.get(first) ?? { count: 0, bytes: 0 };
      sum.count++;
      sum.bytes += r.bytes ?? 0;
      sums.set(first, sum);
    }
    const sorted = [...sums].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 10);
    replace(
      prefixes,
      table(
        [
          { title: "First level (this page)", cell: ([p]) => (p === "" ? "(empty)" : p), class: "mono" },
          { title: "Messages", cell: ([, s]) => formatNumber(s.count), class: "num" },
          { title: "Bytes", cell: ([, s]) => formatBytes(s.bytes), class: "num" },
        ],
        sorted,
        undefined,
        "–",
      ),
    );
  }

  /** @param {string} topic */
  async function view(topic) {
    try {
      const message = /** @type {RetainedMessage} */ (await get(`/retained/${segment(topic)}`));
      if (!active) return;
      const bytes = payloadBytes(message.payload ?? "", message.encoding);
      const mode = select({ testid: "retained-mode" }, [["text", "Text"], ["hex", "Hex"], ["json", "JSON"]]);
      const pre = h("pre", { class: "payload", testid: "retained-payload" });
      const draw = () => {
        pre.textContent = renderPayload(bytes, mode.value);
      };
      mode.addEventListener("change", draw);
      if (message.encoding === "base64") mode.value = "hex";
      draw();
      const close = h("button", { type: "button", onclick: () => (viewer.hidden = true) }, "Close");
      replace(
        viewer,
        h("h2", {}, "Retained message"),
        facts([
          ["Topic", h("span", { class: "mono" }, message.topic ?? topic)],
          ["QoS", message.qos],
          ["Size", formatBytes(bytes.length)],
          ["Expires", message.expiresAt ? formatTime(message.expiresAt) : "never"],
          ["Properties", message.properties ? JSON.stringify(message.properties) : "–"],
        ]),
        h("div", { class: "toolbar" }, field("Show as", mode), close),
        pre,
      );
      viewer.hidden = false;
      viewer.scrollIntoView({ block: "nearest" });
    } catch (error) {
      notice(status, describe(error), "error");
    }
  }

  /** @param {string} topic */
  async function remove(topic) {
    if (!await confirmAction(`Delete the retained message on "${topic}"?`, "Delete")) return;
    try {
      await api("DELETE", `/retained/${segment(topic)}`);
      notice(status, `Deleted the retained message on ${topic}.`, "ok");
      viewer.hidden = true;
      void load();
    } catch (error) {
      notice(status, describe(error), "error");
    }
  }

  const restart = debounce(pager.restart, 300);
  prefix.addEventListener("input", restart);

  replace(
    root,
    h("h1", {}, "Retained messages"),
    h("div", { class: "toolbar" }, field("Prefix", prefix)),
    status,
    viewer,
    h(
      "div",
      { class: "columns wide-left" },
      h("div", {}, box, pager.element),
      h("section", { class: "panel" }, h("h2", {}, "Bytes by prefix"), prefixes),
    ),
  );
  void load();
  if (initialTopic !== "") void view(initialTopic);
  return () => {
    active = false;
    restart.cancel();
  };
}
