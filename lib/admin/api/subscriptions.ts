/**
 * `GET /api/v1/subscriptions?filter=&clientId=&share=&limit=&after=`: every subscription, by client and filter.
 *
 * @module
 */

import { intParam, json, stringParam } from "../http.ts";
import type { Route } from "../routes.ts";
import { MAX_LIMIT } from "./clients.ts";

/** The subscriptions route. */
export const SUBSCRIPTION_ROUTES: readonly Route[] = [
  {
    method: "GET",
    path: "/api/v1/subscriptions",
    role: "viewer",
    handle: ({ url, services }) => {
      const query: { filter?: string; clientId?: string; share?: string; limit: number; after?: string } = {
        limit: intParam(url, "limit", 100, 1, MAX_LIMIT),
      };
      for (const key of ["filter", "clientId", "share", "after"] as const) {
        const value = stringParam(url, key);
        if (value !== undefined) query[key] = value;
      }
      return json(services.inspect.subscriptions(query));
    },
  },
];
