/**
 * The admin HTTP server: one `Deno.serve` per `http`/`https` listener, serving `/healthz`, `/metrics`, the JSON
 * API under `/api/v1` (route tables in `api/`) and the dashboard's files. Every request passes the browser rules
 * of `security.ts` first, then authentication (`auth.ts`) and the route's role; every answer carries the
 * security headers; every request that changes something is logged as an admin action. It stops with the broker
 * (`Broker.closeWith`), closing its event streams first so `server.shutdown()` does not wait on them.
 *
 * @module
 */

import type { Broker } from "../broker/broker.ts";
import { printable } from "../broker/logger.ts";
import { isLoopback, ListenerError } from "../broker/server/listeners.ts";
import { ADMIN_ROUTES } from "./api/mod.ts";
import { loginRoutes } from "./api/login.ts";
import { type AdminAuth, type Principal } from "./auth.ts";
import { ApiError, errorResponse } from "./http.ts";
import {
  type AdminServices,
  type ClientEventRecord,
  compileRoutes,
  type ListenerView,
  type ReloadResult,
  roleAllows,
  type StatsSource,
  type TraceSource,
} from "./routes.ts";
import { checkRequest, secured } from "./security.ts";
import { SseHub } from "./sse.ts";
import { StaticAssets } from "./static.ts";
import { metricsText } from "./api/metrics.ts";
import { certificateExpiry, type MetricsExtra } from "./metrics/render.ts";
import { StatsHistory } from "./stats_history.ts";

/** One admin listener to start. */
export interface AdminListenerOptions {
  /** Names the listener in errors and logs, e.g. `listeners[2]`. */
  readonly name: string;
  readonly type: "http" | "https";
  /** @default {"127.0.0.1"} */
  readonly hostname?: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** https: certificate chain and key, PEM text. */
  readonly cert?: string;
  readonly key?: string;
  /** Loopback only: no credentials needed. @default {false} */
  readonly allowAnonymous?: boolean;
  /** `/metrics` without credentials on a network address. @default {false} */
  readonly publicMetrics?: boolean;
}

/** Options for {@linkcode startAdmin}. */
export interface AdminServerOptions {
  readonly listeners: readonly AdminListenerOptions[];
  /** Who may call the API. */
  readonly auth: AdminAuth;
  /** Host names served besides IP addresses and `localhost`. */
  readonly allowedHosts?: readonly string[];
  /** The MQTT listeners, for `/broker` and `/listeners` (the admin ones are added). */
  readonly mqttListeners?: () => readonly ListenerView[];
  /** What SIGHUP does; `POST /api/v1/reload` calls it. */
  readonly reload?: () => Promise<ReloadResult>;
  /** Where the dashboard's files are. @default {lib/admin/ui/} */
  readonly uiDir?: URL;
  /** Rates and history for `/stats` (h2's `StatsHistory`). */
  readonly stats?: StatsSource;
  /** The message traces (the broker's `traces`). */
  readonly traces?: TraceSource | undefined;
  /** A client's last events for the client detail. */
  readonly clientEvents?: (clientId: string) => readonly ClientEventRecord[];
}

/** An admin listener that is serving. */
export interface BoundAdminListener {
  readonly name: string;
  readonly hostname: string;
  readonly port: number;
  /** e.g. `http://127.0.0.1:8088` */
  readonly url: string;
}

/** The running admin server. */
export interface RunningAdmin {
  readonly listeners: readonly BoundAdminListener[];
  /** Closes the event streams, then every listener; idempotent. */
  close(): Promise<void>;
}

/**
 * The start-up rule: an admin listener on a network address needs admin users or tokens, and `allowAnonymous`
 * is for loopback only.
 *
 * @throws {ListenerError} naming the listener.
 */
export function checkAdminListeners(
  listeners: readonly AdminListenerOptions[],
  hasCredentials: boolean,
): void {
  for (const listener of listeners) {
    const hostname = listener.hostname ?? "127.0.0.1";
    if (isLoopback(hostname)) continue;
    const which = `${listener.name} (${listener.type} on ${hostname}:${listener.port})`;
    if (listener.allowAnonymous === true) {
      throw new ListenerError(`${which}: "allowAnonymous" is only for admin listeners on a loopback address`);
    }
    if (!hasCredentials) {
      throw new ListenerError(
        `${which}: refusing to serve the admin API to the network without authentication; name admin users ` +
          `("admin": {"users": …} with a passwordFile) or an "admin.tokenFile", or bind it to 127.0.0.1`,
      );
    }
  }
}

/** Starts every admin listener for `broker` (after the start-up rule); closes with the broker. */
export async function startAdmin(broker: Broker, options: AdminServerOptions): Promise<RunningAdmin> {
  checkAdminListeners(options.listeners, options.auth.configured);
  const assets = await StaticAssets.load(options.uiDir);
  const sse = new SseHub();
  // Rates, history and client events are kept from the start of the admin server.
  let history: StatsHistory | undefined;
  if (options.stats === undefined) {
    history = new StatsHistory(broker);
    history.start();
  }
  const clientHistory = broker.clientHistory;
  const bound: BoundAdminListener[] = [];
  const views: ListenerView[] = [];
  const services: AdminServices = {
    broker,
    inspect: broker.inspect,
    startedAt: Date.now(),
    listeners: () => [...(options.mqttListeners?.() ?? []), ...views],
    reload: options.reload,
    sse,
    stats: options.stats ?? history,
    traces: "traces" in options ? options.traces : broker.traces,
    clientEvents: options.clientEvents ?? ((clientId) =>
      clientHistory.of(clientId).map((e) => ({
        at: e.at,
        event: e.event,
        reason: e.reason,
        ...(e.reasonCode === undefined ? {} : { reasonCode: e.reasonCode }),
      }))),
  };
  const routes = compileRoutes(ADMIN_ROUTES, loginRoutes(options.auth));
  const certificates = options.listeners.flatMap((l) =>
    l.cert === undefined ? [] : [{ listener: l.name, cert: l.cert }]
  );
  const counts = { "2xx": 0, "4xx": 0, "5xx": 0 };
  const metrics = { adminRequests: counts, certificates };
  const servers: Deno.HttpServer<Deno.NetAddr>[] = [];
  try {
    for (const listener of options.listeners) {
      const hostname = listener.hostname ?? "127.0.0.1";
      const secure = listener.type === "https";
      const site: Site = {
        listener,
        loopback: isLoopback(hostname),
        secure,
        auth: options.auth,
        allowedHosts: options.allowedHosts ?? [],
        routes,
        services,
        assets,
        metrics,
      };
      const serveOptions = {
        hostname,
        port: listener.port,
        onListen: () => {},
        ...(secure ? { cert: listener.cert!, key: listener.key! } : {}),
      };
      let server: Deno.HttpServer<Deno.NetAddr>;
      try {
        server = Deno.serve(serveOptions, (request, info) => handle(site, request, info.remoteAddr.hostname));
      } catch (error) {
        throw new ListenerError(
          `${listener.name}: cannot listen on ${listener.type}://${urlHost(hostname)}:${listener.port}: ${
            (error as Error).message
          }`,
          { cause: error },
        );
      }
      servers.push(server);
      const addr = server.addr;
      const url = `${listener.type}://${urlHost(addr.hostname)}:${addr.port}`;
      bound.push({ name: listener.name, hostname: addr.hostname, port: addr.port, url });
      views.push({
        type: listener.type,
        name: listener.name,
        url,
        allowAnonymous: listener.allowAnonymous === true,
        tls: secure,
        requireCertificate: false,
        certExpiresAt: expiresAt(listener.cert),
      });
      broker.logger.info(`listening on ${url} (${listener.name}, admin API and dashboard)`);
    }
  } catch (error) {
    history?.stop();
    await Promise.all(servers.map((s) => s.shutdown()));
    throw error;
  }
  let closing: Promise<void> | undefined;
  const running: RunningAdmin = {
    listeners: bound,
    close: () =>
      closing ??= (async () => {
        sse.closeAll(); // shutdown() waits for open responses: the streams end first
        history?.stop();
        options.auth.clear();
        await Promise.all(servers.map((s) => s.shutdown()));
      })(),
  };
  broker.closeWith(running);
  return running;
}

/** What one listener serves with. */
interface Site {
  readonly listener: AdminListenerOptions;
  readonly loopback: boolean;
  readonly secure: boolean;
  readonly auth: AdminAuth;
  readonly allowedHosts: readonly string[];
  readonly routes: ReturnType<typeof compileRoutes>;
  readonly services: AdminServices;
  readonly assets: StaticAssets;
  /** What `/metrics` adds: the request counts by status class, the https certificates. */
  readonly metrics: MetricsExtra & { readonly adminRequests: Record<"2xx" | "4xx" | "5xx", number> };
}

async function handle(site: Site, request: Request, remote: string): Promise<Response> {
  let principal: Principal | undefined;
  let response: Response;
  const url = new URL(request.url);
  try {
    checkRequest(request, url, site.allowedHosts);
    response = await route(site, request, url, remote, (p) => principal = p);
  } catch (error) {
    response = errorResponse(asApiError(error, site));
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    audit(site, request, url, remote, principal, response);
  }
  const counts = site.metrics.adminRequests;
  if (response.status >= 500) counts["5xx"]++;
  else if (response.status >= 400) counts["4xx"]++;
  else counts["2xx"]++;
  return secured(response);
}

async function route(
  site: Site,
  request: Request,
  url: URL,
  remote: string,
  authenticated: (principal: Principal) => void,
): Promise<Response> {
  const path = url.pathname;
  const method = request.method === "HEAD" ? "GET" : request.method;
  if (path === "/healthz" && method === "GET") {
    const problem = site.services.inspect.storageProblem;
    return new Response(problem === undefined ? "ok\n" : `${problem}\n`, {
      status: problem === undefined ? 200 : 503,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }
  if (path === "/metrics" && method === "GET") {
    if (!site.loopback && site.listener.publicMetrics !== true) {
      authenticated(await authenticate(site, request, remote));
    }
    return metricsText(site.services.broker, site.metrics);
  }
  if (method === "GET" && (path === "/" || path === "/index.html")) {
    return site.assets.serve("index.html", request)!;
  }
  if (method === "GET" && path.startsWith("/assets/")) {
    const name = path.slice("/assets/".length);
    const asset = name.includes("/") ? undefined : site.assets.serve(decodeParam(name), request);
    if (asset !== undefined) return asset;
    throw new ApiError(404, "NOT_FOUND", "no such file");
  }
  let pathMatched = false;
  for (const candidate of site.routes) {
    const match = candidate.pattern.exec({ pathname: path });
    if (match === null) continue;
    pathMatched = true;
    if (candidate.method !== method) continue;
    const params: Record<string, string> = {};
    for (const [key, value] of Object.entries(match.pathname.groups)) {
      if (value !== undefined) params[key] = decodeParam(value);
    }
    const principal: Principal = candidate.role === "public"
      ? { name: "anonymous", role: "viewer", via: "anonymous" }
      : await authenticate(site, request, remote);
    authenticated(principal);
    if (!roleAllows(principal.role, candidate.role)) {
      throw new ApiError(
        403,
        "FORBIDDEN",
        `${candidate.method} ${candidate.path} needs the ${candidate.role} role`,
      );
    }
    const context = { request, url, params, principal, services: site.services, remote, secure: site.secure };
    return await candidate.handle(context);
  }
  if (pathMatched) throw new ApiError(405, "METHOD_NOT_ALLOWED", `${method} is not allowed here`);
  throw new ApiError(404, "NOT_FOUND", `no such endpoint: ${path}`);
}

/** The caller: anonymous on an `allowAnonymous` loopback listener, else by its credentials. */
function authenticate(site: Site, request: Request, remote: string): Promise<Principal> {
  if (site.listener.allowAnonymous === true && site.loopback) {
    return Promise.resolve({ name: "anonymous", role: "admin", via: "anonymous" });
  }
  return site.auth.authenticate(request, remote);
}

function decodeParam(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new ApiError(400, "BAD_PATH", "the path is not valid percent-encoded UTF-8");
  }
}

function asApiError(error: unknown, site: Site): ApiError {
  if (error instanceof ApiError) return error;
  site.services.broker.logger.error(`admin API: ${(error as Error)?.stack ?? String(error)}`);
  return new ApiError(500, "INTERNAL", "internal error (see the broker's log)");
}

/** Logs a request that may change something (`admin.action`): who, from where, what, and the answer's status. */
function audit(
  site: Site,
  request: Request,
  url: URL,
  remote: string,
  principal: Principal | undefined,
  response: Response,
): void {
  const who = principal === undefined
    ? "unauthenticated"
    : `${principal.name} (${principal.role}, ${principal.via})`;
  site.services.broker.logger.info(
    `admin action: ${printable(who)} from ${remote}: ${request.method} ${
      printable(url.pathname)
    } -> ${response.status}`,
    {
      event: "admin.action",
      user: principal?.name,
      role: principal?.role,
      via: principal?.via,
      remote,
      listener: site.listener.name,
      method: request.method,
      path: url.pathname,
      status: response.status,
    },
  );
}

/** When an https listener's certificate expires, epoch ms; null for http or an unreadable one. */
function expiresAt(pem: string | undefined): number | null {
  const seconds = pem === undefined ? undefined : certificateExpiry(pem);
  return seconds === undefined ? null : seconds * 1000;
}

function urlHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}
