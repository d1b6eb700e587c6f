// @ts-check
/// <reference lib="dom" />
/**
 * Trace: follow the messages on one filter or from one client for a few minutes, and see what happened to each
 * matching subscriber (sent at QoS n, queued, dropped and why, skipped and why). Events arrive on the trace's own
 * SSE stream; leaving the page stops the trace.
 *
 * @module
 */

import { api, describe, segment } from "./api.js";
import { clientLink } from "./client_actions.js";
import { field, formatBytes, formatTime, h, notice, replace, select, tableRow } from "./dom.js";

/**
 * @typedef {{ clientId: string, outcome: string, qos?: number, reason?: string }} Delivery
 * @typedef {{ at: number, from?: string, topic: string, qos: number, retain?: boolean, bytes?: number,
 *   preview?: string, deliveries?: Delivery[] }} TraceEvent
 */
/** @template T @typedef {import("./dom.js").Column<T>} Column */

/** Rows kept on screen; the server stops at maxMessages anyway. */
const MAX_ROWS = 1000;

/** @type {readonly Column<TraceEvent>[]} */
const COLUMNS = [
  { title: "At", cell: (e) => formatTime(e.at) },
  { title: "From", cell: (e) => (e.from ? clientLink(e.from) : "") },
  { title: "Topic", cell: (e) => e.topic, class: "mono" },
  { title: "QoS", cell: (e) => e.qos },
  { title: "Retain", cell: (e) => (e.retain ? "yes" : "") },
  { title: "Size", cell: (e) => formatBytes(e.bytes), class: "num" },
  { title: "Preview", cell: (e) => h("span", { class: "mono preview" }, e.preview ?? "") },
  {
    title: "Deliveries",
    cell: (e) =>
      (e.deliveries ?? []).length === 0 ? h("span", { class: "muted" }, "no subscriber") : h(
        "ul",
        { class: "deliveries" },
        (e.deliveries ?? []).map((d) =>
          h(
            "li",
            { class: `outcome ${d.outcome}` },
            h("span", { class: "mono" }, d.clientId),
            " ",
            h(
              "span",
              { class: "badge" },
              d.outcome === "sent" && d.qos !== undefined ? `sent QoS ${d.qos}` : d.outcome,
            ),
            d.reason ? ` ${d.reason}` : "",
          )
        ),
      ),
  },
];

/**
 * @param {HTMLElement} root
 * @returns {() => void}
 */
export function mountTrace(root) {
  const status = h("p", { class: "notice", testid: "trace-status" });
  const target = select({ testid: "trace-kind" }, [["filter", "Topic filter"], ["clientId", "Client id"]]);
  const value = /** @type {HTMLInputElement} */ (h("input", {
    required: true,
    placeholder: "sensors/#",
    testid: "trace-value",
  }));
  const seconds = /** @type {HTMLInputElement} */ (h("input", {
    type: "number",
    min: 1,
    max: 600,
    value: 120,
    testid: "trace-seconds",
  }));
  const maxMessages = /** @type {HTMLInputElement} */ (h("input", {
    type: "number",
    min: 1,
    max: 1000,
    value: 200,
    testid: "trace-max",
  }));
  const payloadBytes = /** @type {HTMLInputElement} */ (h("input", {
    type: "number",
    min: 0,
    max: 256,
    value: 64,
    testid: "trace-payload-bytes",
  }));
  const startButton = /** @type {HTMLButtonElement} */ (h(
    "button",
    { type: "submit", class: "primary", testid: "trace-start" },
    "Start",
  ));
  const stopButton = /** @type {HTMLButtonElement} */ (h("button", {
    type: "button",
    class: "danger",
    testid: "trace-stop",
    disabled: true,
  }, "Stop"));
  const body = /** @type {HTMLTableSectionElement} */ (h("tbody", { testid: "trace-rows" }));
  const form = h(
    "form",
    { class: "toolbar", testid: "trace-form" },
    field("Trace", target),
    field("", value),
    field("Seconds", seconds),
    field("Max messages", maxMessages),
    field("Payload bytes", payloadBytes),
    startButton,
    stopButton,
  );

  /** @type {{ id: string, source: EventSource } | undefined} */
  let running;
  let count = 0;

  /** @param {TraceEvent} event */
  function add(event) {
    count++;
    body.prepend(tableRow(COLUMNS, event, { testid: "trace-row" }));
    while (body.rows.length > MAX_ROWS) body.lastElementChild?.remove();
  }

  /** @param {string} why */
  function ended(why) {
    running?.source.close();
    running = undefined;
    startButton.disabled = false;
    stopButton.disabled = true;
    notice(status, `${why} ${count} message${count === 1 ? "" : "s"} traced.`);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (running) return;
    try {
      const answer = /** @type {{ id: string, expiresAt?: number }} */ (await api("POST", "/traces", {
        [target.value]: value.value,
        seconds: Number(seconds.value),
        maxMessages: Number(maxMessages.value),
        payloadBytes: Number(payloadBytes.value),
      }));
      count = 0;
      replace(body);
      const source = new EventSource(`/api/v1/traces/${segment(answer.id)}/events`);
      running = { id: answer.id, source };
      /** @param {Event} e */
      const onEvent = (e) => {
        try {
          add(/** @type {TraceEvent} */ (JSON.parse(/** @type {MessageEvent<string>} */ (e).data)));
        } catch {
          // A keep-alive or a malformed line: nothing to show.
        }
      };
      source.addEventListener("message", onEvent);
      source.addEventListener("trace", onEvent);
      source.addEventListener("end", (e) => {
        let reason = "";
        try {
          reason = String(JSON.parse(/** @type {MessageEvent<string>} */ (e).data).reason ?? "");
        } catch {
          // No reason given.
        }
        ended(reason === "" ? "The trace ended." : `The trace ended (${reason.replace("_", " ")}).`);
      });
      source.addEventListener("error", () => {
        if (source.readyState === EventSource.CLOSED && running?.source === source) {
          ended("The trace stream closed.");
        }
      });
      startButton.disabled = true;
      stopButton.disabled = false;
      const until = answer.expiresAt ? ` until ${formatTime(answer.expiresAt)}` : "";
      notice(
        status,
        `Tracing ${target.value === "filter" ? "filter" : "client"} ${value.value}${until}.`,
        "ok",
      );
    } catch (error) {
      notice(status, describe(error), "error");
    }
  });

  /** @returns {Promise<void>} */
  async function stop() {
    const trace = running;
    if (!trace) return;
    ended("Stopped.");
    try {
      await api("DELETE", `/traces/${segment(trace.id)}`);
    } catch {
      // Already expired or stopped by the server.
    }
  }
  stopButton.addEventListener("click", () => void stop());

  replace(
    root,
    h("h1", {}, "Message trace"),
    h(
      "p",
      { class: "muted" },
      "What happens to each message on a filter, or from a client, and to each subscriber.",
    ),
    form,
    status,
    h(
      "div",
      { class: "table-box" },
      h(
        "table",
        { testid: "trace-table" },
        h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", {}, c.title)))),
        body,
      ),
    ),
  );
  return () => void stop();
}
