/**
 * Message traces: `POST /api/v1/traces` (`{filter | clientId, seconds ≤ 600, maxMessages ≤ 1000, payloadBytes ≤
 * 256}` → 201 `{id, expiresAt}`), `GET /api/v1/traces/:id/events` (SSE: a `trace` event per traced PUBLISH with
 * what became of it for each subscriber, then `end` with why it ended), `DELETE /api/v1/traces/:id`.
 *
 * @module
 */

import { ApiError, bodyInt, bodyString, empty, json, jsonBody } from "../http.ts";
import type { RequestContext, Route, TraceSource } from "../routes.ts";

/** The API's bounds on a trace (the broker's own are wider). */
export const TRACE_BOUNDS = { seconds: 600, maxMessages: 1000, payloadBytes: 256 } as const;

function tracesOf(context: RequestContext): TraceSource {
  const traces = context.services.traces;
  if (traces === undefined) {
    throw new ApiError(501, "TRACES_UNAVAILABLE", "this broker has no message traces");
  }
  return traces;
}

async function start(context: RequestContext): Promise<Response> {
  const traces = tracesOf(context);
  const body = await jsonBody(context.request);
  const filter = bodyString(body, "filter", true);
  const clientId = bodyString(body, "clientId", true);
  if ((filter === undefined) === (clientId === undefined)) {
    throw new ApiError(400, "BAD_FIELD", "send one of filter or clientId");
  }
  try {
    const started = traces.start({
      ...(filter === undefined ? {} : { filter }),
      ...(clientId === undefined ? {} : { clientId }),
      seconds: bodyInt(body, "seconds", 60, 1, TRACE_BOUNDS.seconds),
      maxMessages: bodyInt(body, "maxMessages", TRACE_BOUNDS.maxMessages, 1, TRACE_BOUNDS.maxMessages),
      payloadBytes: bodyInt(body, "payloadBytes", TRACE_BOUNDS.payloadBytes, 0, TRACE_BOUNDS.payloadBytes),
    });
    return json({ id: started.id, expiresAt: started.expiresAt }, 201);
  } catch (error) {
    if (error instanceof RangeError) throw new ApiError(400, "TRACE_INVALID", error.message);
    throw error;
  }
}

function events(context: RequestContext): Response {
  const traces = tracesOf(context);
  const id = context.params.id!;
  // Subscribing first tells an unknown id (404) before the stream starts.
  const buffered: object[] = [];
  let ended: string | undefined;
  let deliver: (event: object) => void = (event) => buffered.push(event);
  let finish: (why: string) => void = (why) => ended = why;
  let stop: () => void;
  try {
    stop = traces.subscribe(id, (event) => deliver(event), (why) => finish(why));
  } catch (error) {
    if (error instanceof RangeError) throw new ApiError(404, "TRACE_NOT_FOUND", `no trace ${id}`);
    throw error;
  }
  try {
    return context.services.sse.open((stream) => {
      stream.onClose(stop);
      deliver = (event) => stream.send("trace", event);
      finish = (why) => {
        stream.send("end", { reason: why });
        stream.close();
      };
      for (const event of buffered.splice(0)) deliver(event);
      if (ended !== undefined) finish(ended);
    });
  } catch (error) {
    stop(); // no stream (too many open): the subscription goes too
    throw error;
  }
}

function remove(context: RequestContext): Response {
  if (!tracesOf(context).stop(context.params.id!)) {
    throw new ApiError(404, "TRACE_NOT_FOUND", `no running trace ${context.params.id}`);
  }
  return empty();
}

/** The trace routes. */
export const TRACE_ROUTES: readonly Route[] = [
  { method: "POST", path: "/api/v1/traces", role: "admin", handle: start },
  { method: "GET", path: "/api/v1/traces/:id/events", role: "admin", handle: events },
  { method: "DELETE", path: "/api/v1/traces/:id", role: "admin", handle: remove },
];
