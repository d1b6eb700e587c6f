/**
 * `GET /api/v1/topics?path=a/b`: one level of the topic tree (subscriptions and retained messages), fetched level
 * by level as the dashboard opens it.
 *
 * @module
 */

import { json } from "../http.ts";
import type { Route } from "../routes.ts";

/** The topic tree route. */
export const TOPIC_ROUTES: readonly Route[] = [
  {
    method: "GET",
    path: "/api/v1/topics",
    role: "viewer",
    handle: ({ url, services }) => json(services.inspect.topicLevel(url.searchParams.get("path") ?? "")),
  },
];
