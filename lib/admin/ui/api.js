// @ts-check
/// <reference lib="dom" />
/**
 * The admin API client: JSON in, JSON out, the cookie for auth (same origin), errors as `ApiError` carrying the
 * server's `{"error":{"code","message"}}`. Shapes follow OPERATIONS.md §3.2.
 *
 * @module
 */

/**
 * @typedef {{
 *   clientId: string, username?: string | null, connected: boolean, remoteAddress?: string | null,
 *   listener?: string | null, protocol?: string | null, keepAlive?: number, cleanStart?: boolean,
 *   sessionExpiry?: number, connectedAt?: number | null, disconnectedAt?: number | null, subscriptions?: number,
 *   inflight?: number, inflightMax?: number, queued?: number, queuedBytes?: number, queueMax?: number,
 *   dropped?: number, outputBytes?: number, congested?: boolean, msgsIn?: number, msgsOut?: number,
 *   bytesIn?: number, bytesOut?: number
 * }} Client
 */
/**
 * @typedef {{ filter: string, qos: number, noLocal?: boolean, retainAsPublished?: boolean,
 *   retainHandling?: number, identifier?: number | null, shareGroup?: string | null, clientId?: string }} Subscription
 */
/** @typedef {{ at: number, event: string, reason?: string, reasonCode?: number }} ClientHistoryEvent */
/**
 * Detail: OPERATIONS.md names the list `subscriptions`; the server's inspector `subscriptionList` (both read).
 * @typedef {Omit<Client, "subscriptions"> & { subscriptions: Subscription[] | number, subscriptionList?: Subscription[],
 *   will?: { topic: string, qos: number, retain: boolean, delaySeconds?: number } | null,
 *   events?: ClientHistoryEvent[] }} ClientDetail
 */
/** @typedef {{ count?: number, total?: number, limit?: number, next?: string | null, totalBytes?: number }} Meta */
/**
 * @template T
 * @typedef {{ data: T[], meta: Meta }} Page
 */
/**
 * @typedef {{ time?: number, gauges: Record<string, number>, counters?: Record<string, unknown>,
 *   rates: Record<string, number> }} Stats
 */
/**
 * @typedef {{ event: string, clientId?: string, username?: string, remote?: string, reason?: string,
 *   reasonCode?: number, at?: number, skipped?: number }} ClientEvent
 */
/** @typedef {{ time?: string | number, level?: string, msg?: string, event?: string } & Record<string, unknown>} LogRecord */

/** An API answer other than 2xx. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    /** @readonly */
    this.status = status;
    /** @readonly */
    this.code = code;
  }
}

/** @type {Set<() => void>} */
const unauthorizedListeners = new Set();

/**
 * Calls `listener` whenever the API answers 401 (the session expired or was never there).
 * @param {() => void} listener
 * @returns {() => void} unsubscribe
 */
export function onUnauthorized(listener) {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

/**
 * Calls the API. `body` is sent as JSON (every mutating request is `application/json`, which a foreign page
 * cannot send without a CORS preflight the server never grants). Resolves to the parsed answer, or null for 204.
 * @param {"GET" | "POST" | "DELETE"} method
 * @param {string} path under /api/v1, starting with `/`
 * @param {unknown} [body]
 * @returns {Promise<unknown>}
 */
export async function api(method, path, body) {
  /** @type {RequestInit} */
  const init = { method, credentials: "same-origin", headers: { accept: "application/json" } };
  if (body !== undefined) {
    init.headers = { accept: "application/json", "content-type": "application/json" };
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`/api/v1${path}`, init);
  const text = await response.text();
  /** @type {unknown} */
  let parsed = null;
  if (text !== "") {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (!response.ok) {
    const error = errorOf(parsed);
    if (response.status === 401 && !path.startsWith("/login")) {
      for (const listener of unauthorizedListeners) listener();
    }
    throw new ApiError(response.status, error.code, error.message || `${method} ${path}: ${response.status}`);
  }
  return parsed;
}

/**
 * @param {unknown} parsed
 * @returns {{ code: string, message: string }}
 */
function errorOf(parsed) {
  if (typeof parsed === "object" && parsed !== null && "error" in parsed) {
    const error = /** @type {{ error: { code?: unknown, message?: unknown } }} */ (parsed).error;
    return { code: String(error.code ?? "ERROR"), message: String(error.message ?? "") };
  }
  return { code: "ERROR", message: typeof parsed === "string" ? parsed.slice(0, 200) : "" };
}

/**
 * GET returning the answer as `T` (the server's shapes are trusted for structure, never for content).
 * @template T
 * @param {string} path
 * @returns {Promise<T>}
 */
export async function get(path) {
  return /** @type {T} */ (await api("GET", path));
}

/**
 * A list answer as `{data, meta}`, accepting a bare array too.
 * @template T
 * @param {string} path
 * @returns {Promise<Page<T>>}
 */
export async function getPage(path) {
  const answer = await api("GET", path);
  if (Array.isArray(answer)) return { data: answer, meta: { count: answer.length } };
  const page = /** @type {Partial<Page<T>>} */ (answer ?? {});
  return { data: page.data ?? [], meta: page.meta ?? {} };
}

/**
 * A query string from the set (non-empty) values.
 * @param {Record<string, string | number | undefined | null>} params
 * @returns {string}
 */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text === "" ? "" : `?${text}`;
}

/**
 * One path segment: a client id, a topic or a filter, with `/`, `#` and `+` encoded.
 * @param {string} value
 * @returns {string}
 */
export function segment(value) {
  return encodeURIComponent(value);
}

/**
 * The error as one line for a status message.
 * @param {unknown} error
 * @returns {string}
 */
export function describe(error) {
  if (error instanceof ApiError) return `${error.status} ${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
