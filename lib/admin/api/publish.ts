/**
 * `POST /api/v1/publish`: `{topic, payload, encoding: "utf8"|"base64", qos, retain, properties}` → 200
 * `{matched}` (the sessions it was given to), or 202 `{matched: 0, reasonCode: 16}` (No matching subscribers, as
 * a v5 PUBACK would say). 400 `TOPIC_INVALID` for a topic that is not a valid Topic Name; 403 for `$SYS/`, which
 * only the broker publishes to.
 *
 * @module
 */

import type { Properties } from "../../packet/properties.ts";
import type { QoS } from "../../packet/packet_type.ts";
import { REASON_CODE } from "../../packet/reason_code.ts";
import { MqttError } from "../../mqtt_error.ts";
import { validateTopicName } from "../../topic/topic.ts";
import type { Message } from "../../broker/storage/persistence.ts";
import { ApiError, bodyBool, bodyInt, bodyString, json, jsonBody } from "../http.ts";
import type { RequestContext, Route } from "../routes.ts";

async function publish({ request, services }: RequestContext): Promise<Response> {
  const body = await jsonBody(request);
  const options = services.broker.options;
  const topic = bodyString(body, "topic");
  try {
    validateTopicName(topic, options.topicLimits);
  } catch (error) {
    if (error instanceof MqttError) throw new ApiError(400, "TOPIC_INVALID", error.message);
    throw error;
  }
  if (topic.startsWith("$SYS/") || topic === "$SYS") {
    throw new ApiError(403, "TOPIC_RESERVED", "$SYS topics are published by the broker only");
  }
  const encoding = bodyString(body, "encoding", true) ?? "utf8";
  const text = bodyString(body, "payload", true) ?? "";
  let payload: Uint8Array;
  if (encoding === "utf8") payload = new TextEncoder().encode(text);
  else if (encoding === "base64") {
    try {
      payload = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    } catch {
      throw new ApiError(400, "BAD_FIELD", "payload is not valid base64");
    }
  } else throw new ApiError(400, "BAD_FIELD", 'encoding must be "utf8" or "base64"');
  const qos = bodyInt(body, "qos", 0, 0, options.maxQoS) as QoS;
  const retain = bodyBool(body, "retain", false);
  if (retain && !options.retainAvailable) {
    throw new ApiError(
      400,
      "RETAIN_UNAVAILABLE",
      "retained messages are turned off (retainAvailable: false)",
    );
  }
  const { properties, expiresAt } = messageProperties(body.properties, services.broker.clock.now());
  const message: { -readonly [K in keyof Message]: Message[K] } = { topic, payload, qos, retain };
  if (properties !== undefined) message.properties = properties;
  if (expiresAt !== undefined) message.expiresAt = expiresAt;
  const matched = services.broker.publish(message);
  if (matched === 0) return json({ matched: 0, reasonCode: REASON_CODE.NoMatchingSubscribers }, 202);
  return json({ matched });
}

/** The v5 properties a message is forwarded with, and its absolute expiry. */
function messageProperties(value: unknown, now: number): { properties?: Properties; expiresAt?: number } {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ApiError(400, "BAD_FIELD", "properties must be an object");
  }
  const raw = value as Record<string, unknown>;
  const properties: { -readonly [K in keyof Properties]: Properties[K] } = {};
  for (const key of Object.keys(raw)) {
    if (!["contentType", "messageExpiryInterval", "responseTopic", "userProperties"].includes(key)) {
      throw new ApiError(400, "BAD_FIELD", `unknown property ${key}`);
    }
  }
  if (raw.contentType !== undefined) properties.contentType = bodyString(raw, "contentType");
  if (raw.responseTopic !== undefined) {
    properties.responseTopic = bodyString(raw, "responseTopic");
    try {
      validateTopicName(properties.responseTopic); // [MQTT-3.3.2-13 (5.0)]
    } catch (error) {
      if (error instanceof MqttError) {
        throw new ApiError(400, "TOPIC_INVALID", `responseTopic: ${error.message}`);
      }
      throw error;
    }
  }
  if (raw.userProperties !== undefined) {
    const pairs = raw.userProperties;
    if (
      !Array.isArray(pairs) ||
      pairs.some((p) => !Array.isArray(p) || p.length !== 2 || p.some((s) => typeof s !== "string"))
    ) {
      throw new ApiError(400, "BAD_FIELD", "userProperties must be an array of [name, value] string pairs");
    }
    properties.userProperties = pairs as [string, string][];
  }
  let expiresAt: number | undefined;
  if (raw.messageExpiryInterval !== undefined) {
    const seconds = bodyInt(raw, "messageExpiryInterval", 0, 1, 0xFFFF_FFFF);
    expiresAt = now + seconds * 1000;
  }
  return Object.keys(properties).length === 0 ? { ...(expiresAt === undefined ? {} : { expiresAt }) } : {
    properties,
    ...(expiresAt === undefined ? {} : { expiresAt }),
  };
}

/** The publish route. */
export const PUBLISH_ROUTES: readonly Route[] = [
  { method: "POST", path: "/api/v1/publish", role: "admin", handle: publish },
];
