// @ts-check
/// <reference lib="dom" />
/**
 * Listeners and security: each listener (TLS, anonymous access, certificate expiry), the broker's limits, the ACL
 * dry-run ("may this user publish here, and which line decided?"), and Reload (the same as SIGHUP).
 *
 * @module
 */

import { api, describe, get } from "./api.js";
import { facts, field, formatTime, h, notice, replace, select, table } from "./dom.js";

/**
 * @typedef {{ type: string, url?: string, allowAnonymous?: boolean, tls?: boolean, requireCertificate?: boolean,
 *   certExpiresAt?: number | string | null }} Listener
 * @typedef {{ allowed: boolean, rule: { file?: string, line?: number, text?: string } | null, reason?: string }}
 *   AclAnswer
 */

/**
 * @param {unknown} answer `{listeners:[…]}`, `{data:[…]}` or a bare array
 * @returns {Listener[]}
 */
function listenersOf(answer) {
  if (Array.isArray(answer)) return answer;
  const object = /** @type {{ listeners?: Listener[], data?: Listener[] }} */ (answer ?? {});
  return object.listeners ?? object.data ?? [];
}

/**
 * @param {boolean | undefined} value
 * @returns {string}
 */
function yesNo(value) {
  return value === undefined ? "–" : value ? "yes" : "no";
}

/**
 * @param {HTMLElement} root
 * @returns {() => void}
 */
export function mountSecurity(root) {
  const status = h("p", { class: "notice", testid: "security-status" });
  const listeners = h("div", { testid: "listeners-table" });
  const limits = h("div", { testid: "limits" });
  const aclResult = h("div", { class: "acl-result", testid: "acl-result" });
  const reloadResult = h("div", { testid: "reload-result" });
  let active = true;

  /** @param {import("./dom.js").Props} props */
  const input = (props) => /** @type {HTMLInputElement} */ (h("input", props));
  const username = input({ placeholder: "username", testid: "acl-username" });
  const clientId = input({ placeholder: "client id", testid: "acl-client" });
  const action = select({ testid: "acl-action" }, [["publish", "publish"], ["subscribe", "subscribe"], [
    "receive",
    "receive",
  ]]);
  const topic = input({ required: true, placeholder: "topic or filter", testid: "acl-topic" });
  const aclForm = h(
    "form",
    { class: "toolbar", testid: "acl-form" },
    field("Username", username),
    field("Client id", clientId),
    field("Action", action),
    field("Topic", topic),
    h("button", { type: "submit", class: "primary", testid: "acl-check" }, "Check"),
  );
  aclForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = /** @type {AclAnswer} */ (await api("POST", "/acl/check", {
        username: username.value,
        clientId: clientId.value,
        action: action.value,
        topic: topic.value,
      }));
      const rule = answer.rule;
      replace(
        aclResult,
        h(
          "p",
          { class: answer.allowed ? "verdict allowed" : "verdict denied", testid: "acl-verdict" },
          answer.allowed ? "Allowed" : "Denied",
        ),
        rule
          ? h(
            "p",
            {},
            "Decided by ",
            h("span", { class: "mono" }, `${rule.file ?? "ACL"}:${rule.line ?? "?"}`),
            " ",
            h("code", {}, rule.text ?? ""),
          )
          : h(
            "p",
            { class: "muted", testid: "acl-reason" },
            answer.reason ?? "No rule matched: the default applied.",
          ),
      );
    } catch (error) {
      replace(aclResult, h("p", { class: "notice error" }, describe(error)));
    }
  });

  const reload = h("button", { type: "button", class: "primary", testid: "reload" }, "Reload configuration");
  reload.addEventListener("click", async () => {
    try {
      const answer = /** @type {Record<string, unknown>} */ (await api("POST", "/reload", {}));
      replace(
        reloadResult,
        facts(
          Object.entries(answer ?? {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
        ),
      );
      notice(status, "Reloaded.", "ok");
      void load();
    } catch (error) {
      notice(status, describe(error), "error");
    }
  });

  /** @returns {Promise<void>} */
  async function load() {
    try {
      const [list, broker] = await Promise.all([get("/listeners"), get("/broker")]);
      if (!active) return;
      replace(
        listeners,
        table(
          [
            { title: "Type", cell: (l) => l.type },
            { title: "URL", cell: (l) => l.url ?? "", class: "mono" },
            { title: "TLS", cell: (l) => yesNo(l.tls) },
            { title: "Client certificate", cell: (l) => yesNo(l.requireCertificate) },
            { title: "Anonymous", cell: (l) => yesNo(l.allowAnonymous) },
            {
              title: "Certificate expires",
              cell: (l) => (l.certExpiresAt ? formatTime(l.certExpiresAt) : "–"),
            },
          ],
          listenersOf(list),
          () => ({ testid: "listener-row" }),
          "No listeners.",
        ),
      );
      const info = /** @type {{ limits?: Record<string, unknown>, sysInterval?: number }} */ (broker);
      const pairs = Object.entries(info.limits ?? {}).map(([k, v]) => /** @type {[string, string]} */ ([
        k,
        v === null || v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v),
      ]));
      if (info.sysInterval !== undefined) pairs.push(["sysInterval", `${info.sysInterval} s`]);
      replace(limits, pairs.length === 0 ? h("p", { class: "muted" }, "No limits reported.") : facts(pairs));
    } catch (error) {
      if (active) notice(status, describe(error), "error");
    }
  }

  replace(
    root,
    h("h1", {}, "Listeners & security"),
    status,
    h("section", { class: "panel" }, h("h2", {}, "Listeners"), listeners),
    h("section", { class: "panel" }, h("h2", {}, "ACL dry run"), aclForm, aclResult),
    h(
      "div",
      { class: "columns" },
      h("section", { class: "panel" }, h("h2", {}, "Limits"), limits),
      h(
        "section",
        { class: "panel" },
        h("h2", {}, "Reload"),
        h(
          "p",
          { class: "muted" },
          "Rereads the password file, the ACL file and the admin users, as SIGHUP does.",
        ),
        reload,
        reloadResult,
      ),
    ),
  );
  void load();
  return () => {
    active = false;
  };
}
