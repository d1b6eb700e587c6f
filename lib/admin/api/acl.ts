/**
 * `POST /api/v1/acl/check`: the ACL dry-run. `{username, clientId, action: "publish"|"subscribe"|"receive",
 * topic}` → `{allowed, rule: {file, line, text} | null, reason}`: what the authorizer in force decides and, for an
 * ACL file (`AclAuthorizer.explain`), the line that decided.
 *
 * @module
 */

import { ALLOW_ALL, type Authorizer } from "../../broker/auth/auth.ts";
import { ApiError, bodyString, json, jsonBody } from "../http.ts";
import type { RequestContext, Route } from "../routes.ts";

const ACTIONS = ["publish", "subscribe", "receive"] as const;

/** The query of a dry-run. */
interface AclQuery {
  readonly username?: string | undefined;
  readonly clientId: string;
  readonly action: (typeof ACTIONS)[number];
  readonly topic: string;
}

/** An authorizer that can say which rule decides (the ACL file's does). */
interface Explaining {
  explain(query: AclQuery): { allowed: boolean; rule: object | null; reason?: string };
}

function explains(authorizer: Authorizer): authorizer is Authorizer & Explaining {
  return typeof (authorizer as Partial<Explaining>).explain === "function";
}

async function check({ request, services }: RequestContext): Promise<Response> {
  const body = await jsonBody(request);
  const action = bodyString(body, "action");
  if (!(ACTIONS as readonly string[]).includes(action)) {
    throw new ApiError(400, "BAD_FIELD", `action must be one of ${ACTIONS.join(", ")}`);
  }
  const username = bodyString(body, "username", true);
  const query: AclQuery = {
    clientId: bodyString(body, "clientId", true) ?? "",
    action: action as AclQuery["action"],
    topic: bodyString(body, "topic"),
    ...(username === undefined || username === "" ? {} : { username }),
  };
  const authorizer = services.inspect.authorizer;
  if (explains(authorizer)) {
    const { allowed, rule, reason } = authorizer.explain(query);
    return json({ allowed, rule, ...(reason === undefined ? {} : { reason }) });
  }
  const client = query.username === undefined
    ? { clientId: query.clientId }
    : { clientId: query.clientId, username: query.username };
  const allowed = query.action === "publish"
    ? authorizer.canPublish(client, query.topic)
    : query.action === "subscribe"
    ? authorizer.canSubscribe(client, query.topic)
    : authorizer.canReceive(client, query.topic);
  const reason = authorizer === ALLOW_ALL
    ? "no ACL file: every client may do everything"
    : "the authorizer decided (it does not say which rule)";
  return json({ allowed, rule: null, reason });
}

/** The ACL dry-run route. */
export const ACL_ROUTES: readonly Route[] = [
  { method: "POST", path: "/api/v1/acl/check", role: "viewer", handle: check },
];
