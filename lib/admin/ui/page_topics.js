// @ts-check
/// <reference lib="dom" />
/**
 * Topics: the router's trie and the retained store as a tree, one level per request (a level is opened when
 * clicked), with subscription counts and retained flags.
 *
 * @module
 */

import { describe, get, query, segment } from "./api.js";
import { formatNumber, h, notice, replace } from "./dom.js";

/** @typedef {{ level: string, path: string, subscriptions?: number, retained?: boolean, descendants?: number }} TopicNode */
/** @typedef {{ path?: string, children?: TopicNode[] }} TopicLevel */

/**
 * @param {HTMLElement} root
 * @returns {() => void}
 */
export function mountTopics(root) {
  const status = h("p", { class: "notice", testid: "topics-status" });
  const tree = h("ul", { class: "tree", testid: "topic-tree" });
  let active = true;

  /**
   * Fills `list` with the children of `path`.
   * @param {string} path
   * @param {HTMLElement} list
   * @returns {Promise<void>}
   */
  async function open(path, list) {
    replace(list, h("li", { class: "muted" }, "Loading…"));
    try {
      const level = /** @type {TopicLevel} */ (await get(`/topics${query({ path })}`));
      if (!active) return;
      const children = level.children ?? [];
      replace(
        list,
        children.length === 0
          ? h("li", { class: "muted" }, path === "" ? "No topics yet." : "Nothing below.")
          : [],
        children.map(node),
      );
    } catch (error) {
      if (active) {
        replace(list);
        notice(status, describe(error), "error");
      }
    }
  }

  /**
   * @param {TopicNode} n
   * @returns {HTMLElement}
   */
  function node(n) {
    const below = h("ul", { class: "tree" });
    below.hidden = true;
    const hasChildren = (n.descendants ?? 0) > 0;
    const toggle = h(
      "button",
      { type: "button", class: "toggle", testid: "topic-toggle", disabled: !hasChildren },
      hasChildren ? "▸" : "·",
    );
    let loaded = false;
    toggle.addEventListener("click", () => {
      below.hidden = !below.hidden;
      toggle.textContent = below.hidden ? "▸" : "▾";
      if (!loaded && !below.hidden) {
        loaded = true;
        void open(n.path, below);
      }
    });
    return h(
      "li",
      { testid: "topic-node", "data-path": n.path },
      h(
        "div",
        { class: "tree-row" },
        toggle,
        h("span", { class: "mono level" }, n.level === "" ? "(empty level)" : n.level),
        n.retained
          ? h("span", { class: "badge retained", title: "has a retained message" }, "retained")
          : null,
        (n.subscriptions ?? 0) > 0
          ? h("span", { class: "badge" }, `${formatNumber(n.subscriptions)} subs`)
          : null,
        hasChildren ? h("span", { class: "muted small" }, `${formatNumber(n.descendants)} below`) : null,
        n.retained ? h("a", { href: `#/retained/${segment(n.path)}`, class: "small" }, "view") : null,
      ),
      below,
    );
  }

  const reload = h("button", { type: "button", testid: "topics-reload" }, "Reload");
  reload.addEventListener("click", () => void open("", tree));
  replace(
    root,
    h("h1", {}, "Topics"),
    h("p", { class: "muted" }, "Subscription filters and retained topics, one level at a time."),
    h("div", { class: "toolbar" }, reload),
    status,
    h("section", { class: "panel" }, tree),
  );
  void open("", tree);
  return () => {
    active = false;
  };
}
