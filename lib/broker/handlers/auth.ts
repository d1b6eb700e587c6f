/**
 * AUTH (section 3.15): the steps of an enhanced authentication that CONNECT started (section 4.12), and
 * re-authentication on a connected client (section 4.12.1).
 *
 * @module
 */

import { protocolError } from "../../mqtt_error.ts";
import type { AuthPacket } from "../../packet/auth.ts";
import { REASON_CODE, reasonName } from "../../packet/reason_code.ts";
import type { Connection } from "../connection.ts";
import { printable } from "../logger.ts";
import { afterAuth } from "./connect.ts";

/** AUTH received while authenticating (v5 enhanced authentication, section 4.12). */
export async function onAuth(connection: Connection, packet: AuthPacket): Promise<void> {
  if (packet.reasonCode !== REASON_CODE.ContinueAuthentication) {
    throw protocolError(
      `AUTH with reason ${reasonName(packet.reasonCode)} during authentication (section 4.12)`,
    );
  }
  // Returned: in a cluster the session opens after its client id is claimed, and packets read meanwhile wait.
  return afterAuth(connection, await connection.core.continueAuth(connection, packet));
}

/** Re-authentication requested by a connected client (AUTH 0x19, or 0x18 continuing it; section 4.12.1). */
export async function onReauth(connection: Connection, packet: AuthPacket): Promise<void> {
  const outcome = await connection.core.reauthenticate(connection, packet);
  if (connection.state !== "connected") return;
  if ("challenge" in outcome) {
    connection.sendAuth(REASON_CODE.ContinueAuthentication, outcome.challenge);
  } else if (outcome.reasonCode !== REASON_CODE.Success) {
    connection.disconnect(outcome.reasonCode, outcome.reason ?? "re-authentication failed");
  } else if (outcome.username !== connection.identity.username) {
    // The session, its subscriptions and the authorizer's view belong to the user who connected: a
    // re-authentication may renew that user's credentials, never make the connection someone else's.
    connection.disconnect(
      REASON_CODE.NotAuthorized,
      `re-authentication as ${printable(String(outcome.username ?? "(no user)"))}, but connected as ` +
        printable(String(connection.identity.username ?? "(no user)")),
    );
  } else {
    connection.sendAuth(REASON_CODE.Success, outcome.properties);
  }
}
