// @ts-check
/// <reference lib="dom" />
/**
 * The Overview's "since start" panel: the broker's counters (as `/metrics` has them) grouped for a person, with
 * the labelled ones broken down by reason, so "why did clients go?" and "where did messages get lost?" have an
 * answer without Prometheus. Only non-zero reasons are listed.
 *
 * @module
 */

import { facts, formatBytes, formatNumber, h, replace } from "./dom.js";

/** @typedef {Record<string, number | Record<string, number>>} Counters */

/**
 * One group: a title and its rows, each a counter key and a label; a labelled counter lists its reasons.
 * @type {readonly (readonly [string, readonly (readonly [string, string])[]])[]}
 */
const GROUPS = [
  ["Messages", [
    ["messagesReceived", "received"],
    ["messagesSent", "sent"],
    ["messagesUnrouted", "no subscriber"],
    ["messagesDropped", "dropped"],
    ["messagesDroppedByReason", "dropped because"],
  ]],
  ["Connections", [
    ["connections", "accepted"],
    ["disconnects", "disconnects"],
    ["connectionsRefused", "refused"],
    ["sessionTakeovers", "take-overs"],
    ["sessionsExpired", "sessions expired"],
    ["willsPublished", "wills published"],
  ]],
  ["Denied", [
    ["publishDenied", "publish"],
    ["subscribeDenied", "subscribe"],
    ["retainedRejected", "retained rejected"],
  ]],
  ["Storage and traffic", [
    ["storageCommits", "commits"],
    ["storageCommitFailures", "commit failures"],
    ["bytesReceived", "bytes received"],
    ["bytesSent", "bytes sent"],
    ["configReloads", "config reloads"],
  ]],
];

/**
 * A counter's value as text: a number, or its non-zero reasons (`keepalive 3 · normal 10`).
 * @param {string} key
 * @param {number | Record<string, number> | undefined} value
 * @returns {string}
 */
function show(key, value) {
  if (value === undefined) return "–";
  if (typeof value === "number") return key.startsWith("bytes") ? formatBytes(value) : formatNumber(value);
  const parts = Object.entries(value).filter(([, n]) => n > 0).map(([reason, n]) =>
    `${reason.replaceAll("_", " ")} ${formatNumber(n)}`
  );
  return parts.length === 0 ? "none" : parts.join(" · ");
}

/**
 * The panel and its update function (call with each `stats` event's counters).
 * @returns {{ element: HTMLElement, update: (counters: Counters | undefined) => void }}
 */
export function countersPanel() {
  const body = h("div", { class: "counter-groups" });
  const element = h("section", { class: "panel", testid: "counters" }, h("h2", {}, "Since start"), body);
  return {
    element,
    update(counters) {
      if (counters === undefined || counters === null) return;
      replace(
        body,
        GROUPS.map(([title, rows]) =>
          h(
            "div",
            { class: "counter-group" },
            h("h3", {}, title),
            facts(
              rows.filter(([key]) => key in counters).map((
                [key, label],
              ) => [label, show(key, counters[key])]),
            ),
          )
        ),
      );
    },
  };
}
