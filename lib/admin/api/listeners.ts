/**
 * `GET /api/v1/listeners` (every MQTT and admin listener) and `POST /api/v1/reload` (what SIGHUP does: the
 * password, ACL, SCRAM and token files and the admin users, certificates; connected clients re-checked).
 *
 * @module
 */

import { ApiError, json } from "../http.ts";
import type { Route } from "../routes.ts";

/** The listener and reload routes. */
export const LISTENER_ROUTES: readonly Route[] = [
  {
    method: "GET",
    path: "/api/v1/listeners",
    role: "viewer",
    handle: ({ services }) => json({ data: services.listeners() }),
  },
  {
    method: "POST",
    path: "/api/v1/reload",
    role: "admin",
    handle: async ({ services }) => {
      if (services.reload === undefined) {
        throw new ApiError(501, "RELOAD_UNAVAILABLE", "this broker was started without a reload function");
      }
      return json(await services.reload());
    },
  },
];
