// @ts-check
/// <reference lib="dom" />
/**
 * The admin actions on one client, shared by the clients, client detail and backpressure pages: kick (v5 clients
 * get DISCONNECT 0x98 Administrative action) and discard session, each behind a confirmation.
 *
 * @module
 */

import { api, describe, segment } from "./api.js";
import { confirmAction } from "./confirm_dialog.js";
import { h, notice } from "./dom.js";

/**
 * Kicks `clientId` after confirmation; `discard` also ends its session. Resolves to true when done.
 * @param {string} clientId
 * @param {boolean} discard
 * @param {HTMLElement} status where the outcome is written
 * @returns {Promise<boolean>}
 */
export async function kickClient(clientId, discard, status) {
  const question = discard
    ? `Disconnect client "${clientId}" and discard its session (subscriptions and queued messages)?`
    : `Disconnect client "${clientId}"? It may reconnect; its session stays.`;
  if (!await confirmAction(question, discard ? "Discard session" : "Kick")) return false;
  try {
    await api("DELETE", `/clients/${segment(clientId)}${discard ? "?session=discard" : ""}`);
    notice(status, discard ? `Discarded the session of ${clientId}.` : `Kicked ${clientId}.`, "ok");
    return true;
  } catch (error) {
    notice(status, describe(error), "error");
    return false;
  }
}

/**
 * A small button that runs `action` on click.
 * @param {string} label
 * @param {string} testid
 * @param {() => void} action
 * @param {string} [kind] a class: "danger", "primary"
 * @returns {HTMLElement}
 */
export function actionButton(label, testid, action, kind = "") {
  return h("button", { type: "button", class: `small ${kind}`, testid, onclick: () => action() }, label);
}

/**
 * A link to the client's detail page.
 * @param {string} clientId
 * @returns {HTMLElement}
 */
export function clientLink(clientId) {
  return h("a", { href: `#/clients/${segment(clientId)}`, class: "mono", testid: "client-link" }, clientId);
}
