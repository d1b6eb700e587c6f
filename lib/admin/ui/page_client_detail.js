// @ts-check
/// <reference lib="dom" />
/**
 * One client: connection, session, will, subscriptions (add, remove), a peek at its queue, and its last
 * connect/disconnect events with reason codes ("why did it go?"). Polled every 2 s while open.
 *
 * @module
 */

import { api, ApiError, describe, get, segment } from "./api.js";
import { actionButton, kickClient } from "./client_actions.js";
import { confirmAction } from "./confirm_dialog.js";
import {
  facts,
  field,
  formatBytes,
  formatDuration,
  formatNumber,
  formatTime,
  h,
  notice,
  replace,
  select,
  table,
} from "./dom.js";

/** @typedef {import("./api.js").ClientDetail} ClientDetail */
/** @typedef {import("./api.js").Subscription} Subscription */
/** @typedef {{ packetId?: number, topic: string, qos: number, bytes?: number, state?: string, ageSeconds?: number }} QueueEntry */
/** @typedef {{ inflight?: QueueEntry[], queued?: QueueEntry[] }} Queue */

const POLL_MS = 2000;

/**
 * @param {boolean | undefined} value
 * @returns {string}
 */
function yesNo(value) {
  return value === undefined ? "–" : value ? "yes" : "no";
}

/**
 * @param {HTMLElement} root
 * @param {string} clientId
 * @returns {() => void}
 */
export function mountClientDetail(root, clientId) {
  const status = h("p", { class: "notice", testid: "client-status" });
  const connection = h("section", { class: "panel" });
  const session = h("section", { class: "panel" });
  const will = h("section", { class: "panel" });
  const subscriptions = h("div", { testid: "client-subscriptions" });
  const queue = h("div", { testid: "client-queue" });
  const events = h("div", { testid: "client-events" });

  const filterInput = /** @type {HTMLInputElement} */ (h("input", {
    required: true,
    placeholder: "sensors/+/temperature",
    testid: "subscribe-filter",
  }));
  const qosSelect = select({ testid: "subscribe-qos" }, [["0", "QoS 0"], ["1", "QoS 1"], ["2", "QoS 2"]]);
  const addForm = h(
    "form",
    { class: "toolbar", testid: "subscribe-form" },
    field("Filter", filterInput),
    field("QoS", qosSelect),
    h("button", { type: "submit", class: "primary" }, "Add subscription"),
  );
  addForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", `/clients/${segment(clientId)}/subscriptions`, {
        filter: filterInput.value,
        qos: Number(qosSelect.value),
      });
      notice(status, `Subscribed ${clientId} to ${filterInput.value}.`, "ok");
      filterInput.value = "";
      void load();
    } catch (error) {
      notice(status, describe(error), "error");
    }
  });

  /** @param {string} filter */
  async function unsubscribe(filter) {
    if (!await confirmAction(`Remove the subscription "${filter}" of "${clientId}"?`, "Remove")) return;
    try {
      await api("DELETE", `/clients/${segment(clientId)}/subscriptions/${segment(filter)}`);
      notice(status, `Removed ${filter}.`, "ok");
      void load();
    } catch (error) {
      notice(status, describe(error), "error");
    }
  }

  const title = h("h1", {}, "Client ", h("span", { class: "mono", testid: "client-id" }, clientId));
  const kick = actionButton(
    "Kick",
    "kick",
    () => void kickClient(clientId, false, status).then(load),
    "danger",
  );
  const discard = actionButton(
    "Discard session",
    "discard",
    () => void kickClient(clientId, true, status).then(load),
    "danger",
  );
  replace(
    root,
    h("p", {}, h("a", { href: "#/clients" }, "‹ All clients")),
    title,
    h("div", { class: "toolbar" }, kick, discard),
    status,
    h("div", { class: "columns" }, connection, session, will),
    h("section", { class: "panel" }, h("h2", {}, "Subscriptions"), subscriptions, addForm),
    h("section", { class: "panel" }, h("h2", {}, "Queue (first 50, metadata only)"), queue),
    h("section", { class: "panel" }, h("h2", {}, "Last events"), events),
  );

  let active = true;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;

  /** @returns {Promise<void>} */
  async function load() {
    clearTimeout(timer);
    try {
      const [detail, peek] = await Promise.all([
        get(`/clients/${segment(clientId)}`),
        get(`/clients/${segment(clientId)}/queue?limit=50`).catch(() => ({})),
      ]);
      if (!active) return;
      show(/** @type {ClientDetail} */ (detail), /** @type {Queue} */ (peek));
    } catch (error) {
      if (!active) return;
      notice(
        status,
        error instanceof ApiError && error.status === 404 ? "No such client (or session)." : describe(error),
        "error",
      );
    }
    if (active) timer = setTimeout(() => void load(), POLL_MS);
  }

  /**
   * @param {ClientDetail} c
   * @param {Queue} peek
   */
  function show(c, peek) {
    kick.hidden = !c.connected;
    replace(
      connection,
      h("h2", {}, "Connection"),
      facts([
        [
          "State",
          h(
            "span",
            { class: `state ${c.connected ? "online" : "offline"}`, testid: "client-state" },
            c.connected ? "online" : "offline",
          ),
        ],
        ["Username", c.username ?? "–"],
        ["Remote", c.remoteAddress ?? "–"],
        ...(c.listener === undefined
          ? []
          : /** @type {[string, string][]} */ ([["Listener", c.listener ?? "–"]])),
        ["Protocol", c.protocol ?? "–"],
        ["Keep alive", c.keepAlive === undefined ? "–" : `${c.keepAlive} s`],
        ["Connected at", formatTime(c.connectedAt)],
        ["Disconnected at", formatTime(c.disconnectedAt)],
        ...(c.msgsIn === undefined ? [] : /** @type {[string, string][]} */ ([
          ["Messages in / out", `${formatNumber(c.msgsIn)} / ${formatNumber(c.msgsOut)}`],
          ["Bytes in / out", `${formatBytes(c.bytesIn)} / ${formatBytes(c.bytesOut)}`],
        ])),
      ], "client-connection"),
    );
    replace(
      session,
      h("h2", {}, "Session"),
      facts([
        ["Clean start", yesNo(c.cleanStart)],
        ["Session expiry", c.sessionExpiry === undefined ? "–" : formatDuration(c.sessionExpiry)],
        ["In flight", `${formatNumber(c.inflight)} / ${formatNumber(c.inflightMax)}`],
        ["Queued", `${formatNumber(c.queued)} / ${formatNumber(c.queueMax)} · ${formatBytes(c.queuedBytes)}`],
        ["Dropped", formatNumber(c.dropped)],
        ["Unwritten output", formatBytes(c.outputBytes)],
        ["Congested", yesNo(c.congested)],
      ], "client-session"),
    );
    replace(
      will,
      h("h2", {}, "Will"),
      c.will
        ? facts([
          ["Topic", c.will.topic],
          ["QoS", c.will.qos],
          ["Retain", yesNo(c.will.retain)],
          ["Delay", formatDuration(c.will.delaySeconds ?? 0)],
        ], "client-will")
        : h("p", { class: "muted" }, "No will message."),
    );
    const subs = c.subscriptionList ?? (Array.isArray(c.subscriptions) ? c.subscriptions : []);
    replace(
      subscriptions,
      table(
        [
          { title: "Filter", cell: (s) => s.filter, class: "mono" },
          { title: "QoS", cell: (s) => s.qos },
          { title: "Share group", cell: (s) => s.shareGroup ?? "" },
          { title: "No local", cell: (s) => yesNo(s.noLocal) },
          { title: "Retain as published", cell: (s) => yesNo(s.retainAsPublished) },
          { title: "Retain handling", cell: (s) => s.retainHandling ?? "" },
          { title: "Id", cell: (s) => s.identifier ?? "" },
          {
            title: "",
            cell: (s) => actionButton("Remove", "unsubscribe", () => void unsubscribe(s.filter)),
          },
        ],
        subs,
        () => ({ testid: "subscription-row" }),
        "No subscriptions.",
      ),
    );
    const entries = [
      ...(peek.inflight ?? []).map((e) => ({ ...e, where: "in flight" })),
      ...(peek.queued ?? []).map((e) => ({ ...e, where: "queued" })),
    ];
    replace(
      queue,
      table(
        [
          { title: "Where", cell: (e) => e.where },
          { title: "Packet id", cell: (e) => e.packetId ?? "" },
          { title: "Topic", cell: (e) => e.topic, class: "mono" },
          { title: "QoS", cell: (e) => e.qos },
          { title: "Size", cell: (e) => formatBytes(e.bytes), class: "num" },
          { title: "State", cell: (e) => e.state ?? "" },
          { title: "Age", cell: (e) => formatDuration(e.ageSeconds), class: "num" },
        ],
        entries,
        undefined,
        "The queue is empty.",
      ),
    );
    replace(
      events,
      table(
        [
          { title: "At", cell: (e) => formatTime(e.at) },
          { title: "Event", cell: (e) => e.event },
          { title: "Reason", cell: (e) => e.reason ?? "" },
          {
            title: "Reason code",
            cell: (e) => e.reasonCode === undefined ? "" : `0x${e.reasonCode.toString(16).padStart(2, "0")}`,
          },
        ],
        [...(c.events ?? [])].sort((a, b) => b.at - a.at),
        () => ({ testid: "client-event-row" }),
        "No events recorded.",
      ),
    );
  }

  void load();
  return () => {
    active = false;
    clearTimeout(timer);
  };
}
