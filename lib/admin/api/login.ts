/**
 * `POST /api/v1/login` (`{username, password}` or `{token}`) → 204 and the `denomqtt_session` cookie the dashboard
 * and its `EventSource` authenticate with; `POST /api/v1/logout` ends the session.
 *
 * @module
 */

import { type AdminAuth, clearedCookie, sessionCookie } from "../auth.ts";
import { empty, jsonBody } from "../http.ts";
import type { Route } from "../routes.ts";

/** The login and logout routes of `auth`. */
export function loginRoutes(auth: AdminAuth): Route[] {
  return [
    {
      method: "POST",
      path: "/api/v1/login",
      role: "public",
      handle: async ({ request, remote, secure }) => {
        const { id } = await auth.login(await jsonBody(request), remote);
        return empty(204, { "set-cookie": sessionCookie(id, auth.sessionSeconds, secure) });
      },
    },
    {
      method: "POST",
      path: "/api/v1/logout",
      role: "public",
      handle: ({ request, secure }) => {
        auth.logout(request);
        return empty(204, { "set-cookie": clearedCookie(secure) });
      },
    },
  ];
}
