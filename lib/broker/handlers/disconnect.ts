/**
 * DISCONNECT from a client (section 3.14): a last Session Expiry Interval, and whether the will goes.
 *
 * @module
 */

import { protocolError } from "../../mqtt_error.ts";
import type { DisconnectPacket } from "../../packet/disconnect.ts";
import { REASON_CODE, reasonName } from "../../packet/reason_code.ts";
import type { Connection } from "../connection.ts";

/** DISCONNECT received on a connected client. */
export function onDisconnect(connection: Connection, packet: DisconnectPacket): void {
  const session = connection.session!;
  const expiry = packet.properties?.sessionExpiryInterval;
  if (expiry !== undefined) {
    if (session.expiryInterval === 0 && expiry !== 0) {
      throw protocolError(
        "DISCONNECT sets a Session Expiry Interval after CONNECT set 0 (5.0 section 3.14.2.2.2)",
      );
    }
    session.expiryInterval = Math.min(expiry, connection.core.options.maxSessionExpiry);
  }
  // A normal DISCONNECT discards the will [MQTT-3.14.4-3 (5.0)]; 0x04 asks for it to be sent (section 3.14.2.1).
  const sendWill = connection.protocolVersion === 5 &&
    packet.reasonCode === REASON_CODE.DisconnectWithWillMessage;
  connection.close(
    `client disconnected (${reasonName(packet.reasonCode)})`,
    sendWill,
    "normal",
    packet.reasonCode,
  );
}
