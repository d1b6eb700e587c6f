/**
 * Retained messages: browse by prefix (`GET /api/v1/retained`, previews of at most 256 bytes), view one whole
 * (base64 unless the payload is UTF-8), delete one (persisted as an empty retained PUBLISH would be). The topic is
 * one path segment, URL-encoded (`/api/v1/retained/sensors%2Fkitchen%2Ftemp`).
 *
 * @module
 */

import { ApiError, empty, intParam, json, stringParam } from "../http.ts";
import type { RequestContext, Route } from "../routes.ts";
import { MAX_LIMIT } from "./clients.ts";

/** Bytes of payload shown in a listing. */
export const PREVIEW_BYTES = 256;

function notFound(topic: string): ApiError {
  return new ApiError(404, "RETAINED_NOT_FOUND", `no retained message for ${JSON.stringify(topic)}`);
}

function browse({ url, services }: RequestContext): Response {
  const prefix = stringParam(url, "prefix");
  const after = stringParam(url, "after");
  return json(services.inspect.retainedPage({
    limit: intParam(url, "limit", 100, 1, MAX_LIMIT),
    preview: PREVIEW_BYTES,
    ...(prefix === undefined ? {} : { prefix }),
    ...(after === undefined ? {} : { after }),
  }));
}

function view({ params, services }: RequestContext): Response {
  const message = services.inspect.retained(params.topic!);
  if (message === undefined) throw notFound(params.topic!);
  return json(message);
}

function remove({ params, services }: RequestContext): Response {
  if (!services.inspect.deleteRetained(params.topic!)) throw notFound(params.topic!);
  return empty();
}

/** The retained routes. */
export const RETAINED_ROUTES: readonly Route[] = [
  { method: "GET", path: "/api/v1/retained", role: "viewer", handle: browse },
  { method: "GET", path: "/api/v1/retained/:topic", role: "viewer", handle: view },
  { method: "DELETE", path: "/api/v1/retained/:topic", role: "admin", handle: remove },
];
