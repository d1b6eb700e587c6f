/**
 * The browser-facing rules of the admin server, checked before authentication: the `Host` header (DNS
 * rebinding), the `Origin` header (cross-site requests), the content type of a POST (a cross-site form cannot
 * send JSON without a CORS preflight, which is never granted), and the headers every answer carries. No
 * `Access-Control-Allow-*` header is ever sent.
 *
 * @module
 */

import { ApiError } from "./http.ts";

/** The Content-Security-Policy of the dashboard's HTML: no inline script or style, nothing from elsewhere. */
export const CONTENT_SECURITY_POLICY = "default-src 'self'; script-src 'self'; style-src 'self'; " +
  "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Headers on every answer. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/**
 * Whether the `Host` header names this server: an IP address (a DNS-rebinding page can only reach us under its
 * own host name, never an IP literal), `localhost`, or one of `allowedHosts`. The port is not checked: a proxy
 * in front may change it.
 */
export function hostAllowed(host: string | null, allowedHosts: readonly string[]): boolean {
  if (host === null || host === "") return false;
  const name = hostName(host.toLowerCase());
  if (name === undefined) return false;
  if (name === "localhost" || isIpLiteral(name)) return true;
  return allowedHosts.some((allowed) => allowed === name || allowed === host.toLowerCase());
}

/** The host name of a `Host` header value (without the port; IPv6 keeps its brackets). */
function hostName(host: string): string | undefined {
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    return end < 0 ? undefined : host.slice(0, end + 1);
  }
  const colon = host.indexOf(":");
  return colon < 0 ? host : host.slice(0, colon);
}

function isIpLiteral(name: string): boolean {
  if (name.startsWith("[") && name.endsWith("]")) return /^[0-9a-f:.]+$/.test(name.slice(1, -1));
  return /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/**
 * Checks a request's `Host`, `Origin` and (for POST) `Content-Type`.
 *
 * @throws {ApiError} 421 for a host this server does not answer to, 403 for a foreign origin, 415 for a POST
 * that is not `application/json`.
 */
export function checkRequest(request: Request, url: URL, allowedHosts: readonly string[]): void {
  // From the URL, not the Host header: over HTTP/2 (https) the host comes as `:authority`, and Deno builds the
  // URL from whichever the request had.
  const host = url.host;
  if (!hostAllowed(host, allowedHosts)) {
    throw new ApiError(
      421,
      "MISDIRECTED_REQUEST",
      "this host name is not served here: add it to admin.allowedHosts in the config",
    );
  }
  const origin = request.headers.get("origin");
  // Our own origin is the scheme and the Host the browser sent (already checked above).
  if (origin !== null && origin !== `${url.protocol}//${host}`) {
    throw new ApiError(403, "FOREIGN_ORIGIN", "cross-origin requests are not allowed");
  }
  const method = request.method;
  const type = request.headers.get("content-type");
  // POST is the one "simple" method a cross-site form can send: it must be JSON. DELETE needs a preflight anyway;
  // one with a body must say JSON too.
  if ((method === "POST" || (method !== "GET" && method !== "HEAD" && type !== null)) && !isJson(type)) {
    throw new ApiError(
      415,
      "JSON_REQUIRED",
      "requests that change something must be Content-Type: application/json",
    );
  }
}

function isJson(type: string | null): boolean {
  return type !== null && type.split(";")[0]!.trim().toLowerCase() === "application/json";
}

/** Adds the security headers to `response` (and the CSP to HTML); returns it. */
export function secured(response: Response): Response {
  const headers = response.headers;
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) headers.set(name, value);
  if (headers.get("content-type")?.startsWith("text/html")) {
    headers.set("content-security-policy", CONTENT_SECURITY_POLICY);
    headers.set("x-frame-options", "DENY");
  }
  return response;
}
