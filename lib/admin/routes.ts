/**
 * What an API handler gets and how routes are declared: method, `URLPattern` path, the least role that may call
 * it, and the handler. One table per resource in `api/`; the server matches them in order (no framework).
 *
 * @module
 */

import type { Broker } from "../broker/broker.ts";
import type { BrokerInspector } from "../broker/inspect.ts";
import type { Principal } from "./auth.ts";
import type { AdminRole } from "./config.ts";
import type { SseHub } from "./sse.ts";

/** A listener as `GET /api/v1/listeners` shows it. */
export interface ListenerView {
  readonly type: string;
  readonly name: string;
  readonly url: string;
  readonly allowAnonymous: boolean;
  readonly tls: boolean;
  readonly requireCertificate: boolean;
  /** ms since the epoch, when known. */
  readonly certExpiresAt: number | null;
}

/** What one part of a reload did: `"reloaded"`, `"none"` (not configured), or the error. */
export type ReloadOutcome = "reloaded" | "none" | { readonly error: string };

/** The outcome of a reload (SIGHUP or `POST /api/v1/reload`), by part. */
export type ReloadResult = Readonly<Record<string, ReloadOutcome>>;

/** Per-second rates and the last hour of samples (`lib/admin/stats_history.ts`'s `StatsHistory`). */
export interface StatsSource {
  /** Per-second rates over the last 10 s. */
  rates(): object;
  /** Columns for the charts, the last `seconds`. */
  history(seconds: number): object;
}

/** A client's last connect and disconnect events, newest last. */
export interface ClientEventRecord {
  readonly at: number;
  readonly event: string;
  readonly reason: string;
  readonly reasonCode?: number;
}

/** A started trace. */
export interface TraceStarted {
  readonly id: string;
  readonly expiresAt: number;
}

/** The broker's message traces (`lib/broker/trace.ts`'s `MessageTraces`), as the API uses them. */
export interface TraceSource {
  /**
   * Starts a trace of one filter or client id.
   *
   * @throws {RangeError} for a bad option or too many traces.
   */
  start(
    options: {
      filter?: string;
      clientId?: string;
      seconds?: number;
      maxMessages?: number;
      payloadBytes?: number;
    },
  ): TraceStarted;
  /**
   * Calls `listener` with each event so far and then each new one; `ended` when the trace ends.
   *
   * @throws {RangeError} for an unknown id.
   */
  subscribe(id: string, listener: (event: object) => void, ended?: (why: string) => void): () => void;
  /** Ends a trace; false for an unknown or ended one. */
  stop(id: string): boolean;
}

/** What the handlers share: the broker and the server's pieces. */
export interface AdminServices {
  readonly broker: Broker;
  readonly inspect: BrokerInspector;
  /** When the broker started, ms since the epoch. */
  readonly startedAt: number;
  /** Every listener (MQTT and http), for `/broker` and `/listeners`. */
  listeners(): readonly ListenerView[];
  /** Reloads what SIGHUP reloads; undefined when the embedder gave no reload. */
  readonly reload: (() => Promise<ReloadResult>) | undefined;
  /** The server's event streams. */
  readonly sse: SseHub;
  /** Rates and history; undefined when not kept. */
  readonly stats: StatsSource | undefined;
  /** The message traces; undefined when the broker has none. */
  readonly traces: TraceSource | undefined;
  /** A client's last events; undefined when no history is kept. */
  readonly clientEvents: ((clientId: string) => readonly ClientEventRecord[]) | undefined;
}

/** One request, as a handler sees it. */
export interface RequestContext {
  readonly request: Request;
  readonly url: URL;
  /** The path's named groups, URL-decoded. */
  readonly params: Readonly<Record<string, string>>;
  /** Who called; `via: "anonymous"` on public routes. */
  readonly principal: Principal;
  readonly services: AdminServices;
  /** The caller's IP address. */
  readonly remote: string;
  /** Whether the listener is https (cookies get `Secure`). */
  readonly secure: boolean;
}

/** A route of the API. */
export interface Route {
  readonly method: "GET" | "POST" | "DELETE";
  /** A `URLPattern` pathname, e.g. `/api/v1/clients/:id`. */
  readonly path: string;
  /** The least role that may call it; `public` needs no credentials (login, logout). */
  readonly role: AdminRole | "public";
  readonly handle: (context: RequestContext) => Response | Promise<Response>;
}

/** A route with its compiled pattern. */
export interface CompiledRoute extends Route {
  readonly pattern: URLPattern;
}

/** Compiles route tables once, at server start. */
export function compileRoutes(...tables: readonly (readonly Route[])[]): CompiledRoute[] {
  return tables.flat().map((route) => ({ ...route, pattern: new URLPattern({ pathname: route.path }) }));
}

/** Whether `role` may call a route that needs `needed`. */
export function roleAllows(role: AdminRole, needed: AdminRole | "public"): boolean {
  return role === "admin" || needed !== "admin";
}

/** An MQTT listener as the API shows it. */
export function mqttListenerView(
  listener: {
    readonly type: string;
    readonly name: string;
    readonly url: string;
    readonly allowAnonymous: boolean;
  },
): ListenerView {
  const tls = listener.type === "tls" || listener.type === "wss";
  const { type, name, url, allowAnonymous } = listener;
  return { type, name, url, allowAnonymous, tls, requireCertificate: false, certExpiresAt: null };
}
