/**
 * The one place an error becomes the peer's answer: handlers throw an `MqttError` with its reason code; before
 * CONNECT completed it becomes a refusing CONNACK, after it a v5 DISCONNECT (v3: a close), and a peer that went
 * away is a lost connection.
 *
 * @module
 */

import { MqttError } from "../../mqtt_error.ts";
import { encodeConnack } from "../../packet/connack.ts";
import { PACKET_TYPE } from "../../packet/packet_type.ts";
import { REASON_CODE } from "../../packet/reason_code.ts";
import type { Connection } from "../connection.ts";
import { isConnectionLost } from "../foreign_peer.ts";
import { printable } from "../logger.ts";
import { refuse } from "./connect.ts";

/** Answers `error` on `connection` and closes it; nothing once it is closed. */
export function answerError(connection: Connection, error: unknown): void {
  if (connection.state === "closed") return;
  if (isConnectionLost(error)) {
    // The peer went away (reset, broken pipe): a lost connection like any other, will included.
    connection.close(`connection lost (${(error as Error).message})`, true);
    return;
  }
  const mqttError = error instanceof MqttError
    ? error
    : new MqttError(REASON_CODE.ImplementationSpecificError, `internal error: ${String(error)}`, {
      cause: error,
    });
  const logger = connection.core.logger;
  const log = error instanceof MqttError ? logger.warn : logger.error;
  log(
    `client ${printable(connection.clientId || "(unknown)")} ${connection.info.remoteAddress}: ${
      printable(mqttError.message)
    }`,
    {
      event: "client.error",
      clientId: connection.clientId,
      remote: connection.info.remoteAddress,
      reasonCode: mqttError.reasonCode,
    },
  );
  if (connection.state === "authenticating") {
    refuse(connection, { kind: "refuse", reasonCode: mqttError.reasonCode, reason: mqttError.message });
    return;
  }
  if (
    connection.state === "awaiting-connect" && mqttError.reasonCode === REASON_CODE.UnsupportedProtocolVersion
  ) {
    // Unknown protocol level: answer in the 3.1.1 form, which every version's client can read
    // [MQTT-3.1.2-2 (3.1.1)].
    connection.send(encodeConnack({ type: PACKET_TYPE.CONNACK, sessionPresent: false, reasonCode: 0x01 }, 4));
    connection.close(mqttError.message, false, "protocol", mqttError.reasonCode);
    return;
  }
  connection.disconnect(mqttError.reasonCode, mqttError.message);
}
