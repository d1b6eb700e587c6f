// @ts-check
/// <reference lib="dom" />
/**
 * The dashboard's entry: login (form, or the `/#token=` start-up link), the hash router and the header. Each page
 * is a module whose `mount(root, param)` returns the function that stops its timers and live listeners.
 *
 * @module
 */

import { api, describe, get, onUnauthorized } from "./api.js";
import { h, notice, replace } from "./dom.js";
import { connectLive, disconnectLive, onLiveState } from "./live.js";
import { mountOverview } from "./page_overview.js";
import { mountClients } from "./page_clients.js";
import { mountClientDetail } from "./page_client_detail.js";
import { mountBackpressure } from "./page_backpressure.js";
import { mountTopics } from "./page_topics.js";
import { mountSubscriptions } from "./page_subscriptions.js";
import { mountRetained } from "./page_retained.js";
import { mountTrace } from "./page_trace.js";
import { mountPublish } from "./page_publish.js";
import { mountSecurity } from "./page_security.js";
import { mountLogs } from "./page_logs.js";

/** @typedef {(root: HTMLElement, param: string) => () => void} Mount */

/** Routes in the order of the navigation; `clients/<id>` is the detail page. */
const ROUTES = /** @type {const} */ ([
  ["overview", "Overview", mountOverview],
  ["clients", "Clients", mountClients],
  ["backpressure", "Backpressure", mountBackpressure],
  ["topics", "Topics", mountTopics],
  ["subscriptions", "Subscriptions", mountSubscriptions],
  ["retained", "Retained", mountRetained],
  ["trace", "Trace", mountTrace],
  ["publish", "Publish", mountPublish],
  ["security", "Listeners & security", mountSecurity],
  ["logs", "Logs", mountLogs],
]);

/** Set after a login so that a fresh visit shows the form instead of probing the API into a 401. */
const LOGGED_IN_KEY = "denomqtt.loggedIn";

const main = /** @type {HTMLElement} */ (document.getElementById("main"));
const nav = /** @type {HTMLElement} */ (document.getElementById("nav"));
const loginSection = /** @type {HTMLElement} */ (document.getElementById("login"));
const loginForm = /** @type {HTMLFormElement} */ (document.getElementById("login-form"));
const loginStatus = /** @type {HTMLElement} */ (document.getElementById("login-status"));
const anonymousButton = /** @type {HTMLElement} */ (document.getElementById("login-anonymous"));
const logoutButton = /** @type {HTMLElement} */ (document.getElementById("logout"));
const liveBadge = /** @type {HTMLElement} */ (document.getElementById("live-state"));
const brokerBadge = /** @type {HTMLElement} */ (document.getElementById("broker-version"));

/** @type {(() => void) | undefined} */
let unmount;
/** Whether the pages are shown (after a login), as opposed to the login form. */
let appShown = false;

/**
 * The current route and its parameter from the hash (`#/clients/<encoded id>`).
 * @returns {{ name: string, param: string }}
 */
function currentRoute() {
  const path = location.hash.replace(/^#\/?/, "");
  const slash = path.indexOf("/");
  const name = slash === -1 ? path : path.slice(0, slash);
  let param = "";
  if (slash !== -1) {
    try {
      param = decodeURIComponent(path.slice(slash + 1));
    } catch {
      param = path.slice(slash + 1);
    }
  }
  return { name: name === "" ? "overview" : name, param };
}

/** @returns {void} */
function route() {
  unmount?.();
  unmount = undefined;
  const { name, param } = currentRoute();
  const entry = ROUTES.find(([key]) => key === name);
  for (const link of nav.querySelectorAll("a")) {
    link.classList.toggle("active", link.dataset["route"] === name);
  }
  const root = h("div", { class: "page", testid: `page-${name === "clients" && param ? "client" : name}` });
  replace(main, root);
  if (entry === undefined) {
    replace(root, h("h1", {}, "Not found"), h("p", {}, "No such page."));
    return;
  }
  const mount = name === "clients" && param !== "" ? mountClientDetail : entry[2];
  document.title = `${entry[1]} · deno-mqtt`;
  try {
    unmount = mount(root, param);
  } catch (error) {
    replace(root, h("p", { class: "notice error" }, describe(error)));
  }
}

/** @returns {void} */
function buildNav() {
  replace(
    nav,
    ROUTES.map(([key, title]) =>
      h("a", { href: `#/${key}`, "data-route": key, testid: `nav-${key}` }, title)
    ),
  );
}

/** @returns {void} */
function showLogin() {
  unmount?.();
  unmount = undefined;
  appShown = false;
  loginSection.hidden = false;
  disconnectLive();
  replace(main);
  document.body.classList.add("logged-out");
  const username = /** @type {HTMLInputElement | null} */ (loginForm.elements.namedItem("username"));
  username?.focus();
}

/** @returns {Promise<void>} */
async function showApp() {
  appShown = true;
  document.body.classList.remove("logged-out");
  loginSection.hidden = true;
  connectLive();
  route();
  try {
    const broker = await get("/broker");
    const version = /** @type {{ version?: string }} */ (broker).version;
    brokerBadge.textContent = version ?? "";
  } catch {
    // The badge is optional; a 401 has already switched to the login form.
  }
}

/**
 * Logs in with `body` (`{username, password}` or `{token}`); the server sets the session cookie.
 * @param {Record<string, string>} body
 * @returns {Promise<void>}
 */
async function login(body) {
  await api("POST", "/login", body);
  localStorage.setItem(LOGGED_IN_KEY, "1");
}

loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(loginForm);
  notice(loginStatus, "Logging in…");
  try {
    const username = String(data.get("username") ?? "");
    const password = String(data.get("password") ?? "");
    await login(username === "" ? { token: password } : { username, password });
    notice(loginStatus, "");
    loginForm.reset();
    await showApp();
  } catch (error) {
    notice(loginStatus, describe(error), "error");
  }
});

anonymousButton.addEventListener("click", () => {
  localStorage.setItem(LOGGED_IN_KEY, "1");
  void showApp();
});

logoutButton.addEventListener("click", async () => {
  localStorage.removeItem(LOGGED_IN_KEY);
  try {
    await api("POST", "/logout", {});
  } catch {
    // Logged out either way.
  }
  showLogin();
});

onUnauthorized(() => {
  localStorage.removeItem(LOGGED_IN_KEY);
  showLogin();
  notice(loginStatus, "Your session has ended; log in again.", "error");
});

onLiveState((state) => {
  liveBadge.textContent = state;
  liveBadge.className = `badge live-${state}`;
  // The browser gave up on the stream: most likely the session ended (a broker restart forgets it). A plain
  // request tells; its 401 brings the login form.
  if (state === "closed" && appShown) void get("/broker").catch(() => {});
});

globalThis.addEventListener("hashchange", () => {
  if (!appShown) return;
  route();
});

/** @returns {Promise<void>} */
async function start() {
  buildNav();
  const token = /^#token=([^&]+)/.exec(location.hash)?.[1];
  if (token !== undefined) {
    // The start-up link: exchange the token for the cookie, then take it out of the URL and the history.
    history.replaceState(null, "", `${location.pathname}${location.search}#/overview`);
    try {
      await login({ token: decodeURIComponent(token) });
    } catch (error) {
      showLogin();
      notice(loginStatus, `The start-up link did not work: ${describe(error)}`, "error");
      return;
    }
  }
  if (localStorage.getItem(LOGGED_IN_KEY) === "1") await showApp();
  else showLogin();
}

void start();
