// @ts-check
/// <reference lib="dom" />
/**
 * Publish: one message from the broker itself, with QoS, retain and the v5 properties; the answer says how many
 * subscriptions matched.
 *
 * @module
 */

import { api, describe } from "./api.js";
import { field, h, notice, replace, select } from "./dom.js";

/**
 * `key=value` lines as MQTT 5 user properties (order and repeats kept, as the spec allows).
 * @param {string} text
 * @returns {[string, string][]}
 */
export function parseUserProperties(text) {
  /** @type {[string, string][]} */
  const pairs = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const eq = line.indexOf("=");
    pairs.push(eq === -1 ? [line.trim(), ""] : [line.slice(0, eq).trim(), line.slice(eq + 1)]);
  }
  return pairs;
}

/**
 * @param {HTMLElement} root
 * @returns {() => void}
 */
export function mountPublish(root) {
  const status = h("p", { class: "notice", testid: "publish-status" });
  /** @param {import("./dom.js").Props} props */
  const input = (props) => /** @type {HTMLInputElement} */ (h("input", props));
  const topic = input({ required: true, placeholder: "devices/lamp-1/set", testid: "publish-topic" });
  const payload = /** @type {HTMLTextAreaElement} */ (h("textarea", {
    rows: 5,
    placeholder: '{"on": true}',
    testid: "publish-payload",
  }));
  const encoding = select({ testid: "publish-encoding" }, [["utf8", "UTF-8 text"], ["base64", "base64"]]);
  const qos = select({ testid: "publish-qos" }, [["0", "0"], ["1", "1"], ["2", "2"]]);
  const retain = input({ type: "checkbox", testid: "publish-retain" });
  const contentType = input({ placeholder: "application/json", testid: "publish-content-type" });
  const expiry = input({ type: "number", min: 0, placeholder: "seconds", testid: "publish-expiry" });
  const responseTopic = input({ placeholder: "replies/me", testid: "publish-response-topic" });
  const userProperties = /** @type {HTMLTextAreaElement} */ (h("textarea", {
    rows: 3,
    placeholder: "key=value, one per line",
    testid: "publish-user-properties",
  }));
  const form = h(
    "form",
    { class: "form", testid: "publish-form" },
    field("Topic", topic),
    field("Payload", payload),
    h("div", { class: "toolbar" }, field("Encoding", encoding), field("QoS", qos), field("Retain", retain)),
    h(
      "details",
      {},
      h("summary", {}, "MQTT 5 properties"),
      field("Content type", contentType),
      field("Message expiry (s)", expiry),
      field("Response topic", responseTopic),
      field("User properties", userProperties),
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary", testid: "publish-submit" }, "Publish"),
    ),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    /** @type {Record<string, unknown>} */
    const properties = {};
    if (contentType.value !== "") properties["contentType"] = contentType.value;
    if (expiry.value !== "") properties["messageExpiryInterval"] = Number(expiry.value);
    if (responseTopic.value !== "") properties["responseTopic"] = responseTopic.value;
    const pairs = parseUserProperties(userProperties.value);
    if (pairs.length > 0) properties["userProperties"] = pairs;
    try {
      const answer = /** @type {{ matched?: number, reasonCode?: number }} */ (await api("POST", "/publish", {
        topic: topic.value,
        payload: payload.value,
        encoding: encoding.value,
        qos: Number(qos.value),
        retain: retain.checked,
        properties,
      }));
      const matched = answer?.matched ?? 0;
      notice(
        status,
        matched === 0
          ? `Published to ${topic.value}; no subscriber matched${
            retain.checked ? " (kept as retained)" : ""
          }.`
          : `Published to ${topic.value}; ${matched} subscription${matched === 1 ? "" : "s"} matched.`,
        "ok",
      );
    } catch (error) {
      notice(status, describe(error), "error");
    }
  });

  replace(root, h("h1", {}, "Publish"), form, status);
  return () => {};
}
