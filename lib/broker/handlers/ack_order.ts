/**
 * Acknowledgements go out in the order their packets came: PUBACK and PUBREC in the order of their PUBLISH
 * [MQTT-4.6.0-2 (5.0)] [MQTT-4.6.0-3 (5.0)], PUBCOMP with them. One whose message was stored goes out only after
 * the commit that holds it: a QoS 1/2 message is acknowledged only once it cannot be lost.
 *
 * @module
 */

import { MqttError } from "../../mqtt_error.ts";
import { REASON_CODE } from "../../packet/reason_code.ts";
import type { Connection } from "../connection.ts";

/**
 * Sends `bytes` in order with earlier acknowledgements; when `durable`, only after the commit holding this
 * message's effects. `counted`: the ack of a PUBLISH counted in {@linkcode Connection.inboundPending} (1) or
 * {@linkcode Connection.pubrecPending} (2), released once sent; 0 for none.
 */
export function sendAck(
  connection: Connection,
  bytes: Uint8Array,
  durable: boolean,
  counted: 0 | 1 | 2,
): void {
  if (!durable && connection.ackChain === undefined) {
    connection.send(bytes);
    uncount(connection, counted);
    return;
  }
  const wait = durable ? connection.core.store!.settled() : undefined;
  const chain = (connection.ackChain ?? Promise.resolve()).then(() => wait).then(() => {
    connection.send(bytes);
    uncount(connection, counted);
  });
  connection.ackChain = chain;
  chain.then(
    () => {
      if (connection.ackChain === chain) connection.ackChain = undefined;
    },
    (error) =>
      connection.fail(new MqttError(REASON_CODE.UnspecifiedError, "storage failed", { cause: error })),
  );
}

function uncount(connection: Connection, counted: 0 | 1 | 2): void {
  if (counted === 1) connection.inboundPending--;
  else if (counted === 2) connection.pubrecPending--;
}
