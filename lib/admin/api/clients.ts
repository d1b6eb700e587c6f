/**
 * Clients: `GET /api/v1/clients` (filter by state, prefix, user; sort; cursor paging, `limit` ≤ 1000), one
 * client with its subscriptions, will and last events, its queue (metadata only), kick (`DELETE`, v5 DISCONNECT
 * 0x98 Administrative action; `?session=discard` also ends the session), and adding or removing a subscription.
 *
 * @module
 */

import { CLIENT_SORTS, type ClientSummary } from "../../broker/inspect.ts";
import { MqttError } from "../../mqtt_error.ts";
import type { QoS } from "../../packet/packet_type.ts";
import type { Subscription } from "../../topic/router.ts";
import {
  ApiError,
  bodyBool,
  bodyInt,
  bodyString,
  empty,
  intParam,
  json,
  jsonBody,
  oneOfParam,
  stringParam,
} from "../http.ts";
import type { AdminServices, RequestContext, Route } from "../routes.ts";

/** Largest page. */
export const MAX_LIMIT = 1000;

function notFound(id: string): ApiError {
  return new ApiError(404, "CLIENT_NOT_FOUND", `no session for client id ${JSON.stringify(id)}`);
}

function list({ url, services }: RequestContext): Response {
  const state = oneOfParam(url, "state", ["connected", "offline"] as const);
  const sort = oneOfParam(url, "sort", CLIENT_SORTS);
  const prefix = stringParam(url, "prefix");
  const username = stringParam(url, "username");
  const after = stringParam(url, "after");
  const page = services.inspect.clients({
    limit: intParam(url, "limit", 100, 1, MAX_LIMIT),
    ...(state === undefined ? {} : { state }),
    ...(sort === undefined ? {} : { sort }),
    ...(prefix === undefined ? {} : { prefix }),
    ...(username === undefined ? {} : { username }),
    ...(after === undefined ? {} : { after }),
  });
  return json({
    data: page.data.map((c) => ({ ...c, connectedAt: connectedAt(services, c) })),
    meta: page.meta,
  });
}

/** When a connected client's connection was accepted (from the client event history); null when offline. */
function connectedAt(services: AdminServices, client: ClientSummary): number | null {
  if (!client.connected) return null;
  const events = services.clientEvents?.(client.clientId) ?? [];
  return events.findLast((e) => e.event === "connected")?.at ?? null;
}

function detail({ params, services }: RequestContext): Response {
  const client = services.inspect.client(params.id!);
  if (client === undefined) throw notFound(params.id!);
  const { subscriptionList, ...summary } = client;
  const events = services.clientEvents?.(params.id!) ?? [];
  return json({
    ...summary,
    connectedAt: connectedAt(services, summary),
    subscriptions: subscriptionList,
    events: events.slice(-20),
  });
}

function kick({ params, url, services }: RequestContext): Response {
  const session = oneOfParam(url, "session", ["discard", "keep"] as const);
  if (!services.inspect.kick(params.id!, session === "discard")) throw notFound(params.id!);
  return empty();
}

function queue({ params, url, services }: RequestContext): Response {
  const peek = services.inspect.queue(params.id!, intParam(url, "limit", 50, 1, MAX_LIMIT));
  if (peek === undefined) throw notFound(params.id!);
  return json(peek);
}

async function subscribe({ request, params, services }: RequestContext): Promise<Response> {
  const body = await jsonBody(request);
  const retainHandling = bodyInt(body, "retainHandling", 0, 0, 2) as 0 | 1 | 2;
  const identifier = body.identifier === undefined || body.identifier === null
    ? undefined
    : bodyInt(body, "identifier", 0, 1, 268_435_455);
  const subscription: Subscription = {
    filter: bodyString(body, "filter"),
    qos: bodyInt(body, "qos", 0, 0, services.broker.options.maxQoS) as QoS,
    noLocal: bodyBool(body, "noLocal", false),
    retainAsPublished: bodyBool(body, "retainAsPublished", false),
    retainHandling,
    ...(identifier === undefined ? {} : { subscriptionId: identifier }),
  };
  try {
    if (!services.inspect.subscribe(params.id!, subscription)) throw notFound(params.id!);
  } catch (error) {
    if (error instanceof MqttError) throw new ApiError(400, "FILTER_INVALID", error.message);
    throw error;
  }
  return json({ clientId: params.id, filter: subscription.filter, qos: subscription.qos }, 201);
}

function unsubscribe({ params, services }: RequestContext): Response {
  if (services.inspect.session(params.id!) === undefined) throw notFound(params.id!);
  if (!services.inspect.unsubscribe(params.id!, params.filter!)) {
    throw new ApiError(
      404,
      "SUBSCRIPTION_NOT_FOUND",
      `the client has no subscription ${JSON.stringify(params.filter)}`,
    );
  }
  return empty();
}

/** The client routes. */
export const CLIENT_ROUTES: readonly Route[] = [
  { method: "GET", path: "/api/v1/clients", role: "viewer", handle: list },
  { method: "GET", path: "/api/v1/clients/:id", role: "viewer", handle: detail },
  { method: "DELETE", path: "/api/v1/clients/:id", role: "admin", handle: kick },
  { method: "GET", path: "/api/v1/clients/:id/queue", role: "viewer", handle: queue },
  { method: "POST", path: "/api/v1/clients/:id/subscriptions", role: "admin", handle: subscribe },
  { method: "DELETE", path: "/api/v1/clients/:id/subscriptions/:filter", role: "admin", handle: unsubscribe },
];
