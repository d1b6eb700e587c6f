// @ts-check
/// <reference lib="dom" />
/**
 * The one SSE stream behind every live panel (OPERATIONS.md §3.4): `stats` each second, `client` lifecycle events,
 * `log` records. One `EventSource` for the whole page, because each holds one of the browser's few connections per
 * origin; pages subscribe and unsubscribe as they mount and unmount. EventSource reconnects by itself.
 *
 * @module
 */

/** @typedef {"stats" | "client" | "log"} LiveKind */
/** @typedef {"connecting" | "live" | "reconnecting" | "closed"} LiveState */

/** @type {Map<LiveKind, Set<(data: unknown) => void>>} */
const listeners = new Map([["stats", new Set()], ["client", new Set()], ["log", new Set()]]);
/** @type {Set<(state: LiveState) => void>} */
const stateListeners = new Set();
/** The last `stats` events (10 min), so a page that opens later draws the live minutes it missed. */
const RECENT_STATS = 600;
/** @type {unknown[]} */
const recentStats = [];
/** @type {EventSource | undefined} */
let source;
/** @type {LiveState} */
let state = "closed";

/**
 * @param {LiveState} next
 * @returns {void}
 */
function setState(next) {
  state = next;
  for (const listener of stateListeners) listener(next);
}

/**
 * Opens the stream (once; later calls do nothing while it is open).
 * @returns {void}
 */
export function connectLive() {
  if (source !== undefined) return;
  const stream = new EventSource("/api/v1/events?streams=stats,clients,logs");
  source = stream;
  setState("connecting");
  stream.addEventListener("open", () => setState("live"));
  stream.addEventListener("error", () => {
    // CLOSED means the browser gave up (a 401 or a non-stream answer); CONNECTING means it retries by itself.
    setState(stream.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
    if (stream.readyState === EventSource.CLOSED && source === stream) source = undefined;
  });
  for (const [kind, set] of listeners) {
    stream.addEventListener(kind, (event) => {
      let data;
      try {
        data = JSON.parse(/** @type {MessageEvent<string>} */ (event).data);
      } catch {
        return;
      }
      if (kind === "stats") {
        recentStats.push(data);
        if (recentStats.length > RECENT_STATS) recentStats.shift();
      }
      for (const listener of set) listener(data);
    });
  }
}

/**
 * The `stats` events received so far (the last ten minutes), oldest first.
 * @returns {readonly unknown[]}
 */
export function recentStatsEvents() {
  return recentStats.slice();
}

/**
 * Closes the stream (on logout).
 * @returns {void}
 */
export function disconnectLive() {
  source?.close();
  source = undefined;
  recentStats.length = 0;
  setState("closed");
}

/**
 * Calls `listener` with each `kind` event's parsed data.
 * @param {LiveKind} kind
 * @param {(data: unknown) => void} listener
 * @returns {() => void} unsubscribe
 */
export function onLive(kind, listener) {
  const set = listeners.get(kind);
  set?.add(listener);
  return () => set?.delete(listener);
}

/**
 * Calls `listener` now and on each change of the stream's state.
 * @param {(state: LiveState) => void} listener
 * @returns {() => void} unsubscribe
 */
export function onLiveState(listener) {
  stateListeners.add(listener);
  listener(state);
  return () => stateListeners.delete(listener);
}
