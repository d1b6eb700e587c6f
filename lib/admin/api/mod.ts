/**
 * Every route of the JSON API, one table per resource.
 *
 * @module
 */

import type { Route } from "../routes.ts";
import { ACL_ROUTES } from "./acl.ts";
import { BROKER_ROUTES } from "./broker.ts";
import { CLIENT_ROUTES } from "./clients.ts";
import { EVENT_ROUTES } from "./events.ts";
import { LISTENER_ROUTES } from "./listeners.ts";
import { LOG_ROUTES } from "./logs.ts";
import { PUBLISH_ROUTES } from "./publish.ts";
import { RETAINED_ROUTES } from "./retained.ts";
import { STATS_ROUTES } from "./stats.ts";
import { SUBSCRIPTION_ROUTES } from "./subscriptions.ts";
import { TOPIC_ROUTES } from "./topics.ts";
import { TRACE_ROUTES } from "./traces.ts";

/** The API's routes (login and logout are added by the server, with its auth). */
export const ADMIN_ROUTES: readonly Route[] = [
  ...BROKER_ROUTES,
  ...STATS_ROUTES,
  ...CLIENT_ROUTES,
  ...SUBSCRIPTION_ROUTES,
  ...TOPIC_ROUTES,
  ...RETAINED_ROUTES,
  ...PUBLISH_ROUTES,
  ...ACL_ROUTES,
  ...LISTENER_ROUTES,
  ...TRACE_ROUTES,
  ...LOG_ROUTES,
  ...EVENT_ROUTES,
];
