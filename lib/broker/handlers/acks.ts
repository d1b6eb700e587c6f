/**
 * PUBACK, PUBREC, PUBREL and PUBCOMP from a client (sections 3.4 - 3.7, 4.3): the acknowledgements of what the
 * broker delivered, and the release of a QoS 2 message the client published.
 *
 * An acknowledgement of the wrong type for a packet id in flight (PUBACK for a QoS 2 delivery, PUBCOMP before
 * PUBREC, PUBREC for QoS 1) is a Protocol Error: ignored, the message would hold a slot of the client's Receive
 * Maximum until it reconnects. An unknown packet id is ignored (a late or repeated ack).
 *
 * @module
 */

import { protocolError } from "../../mqtt_error.ts";
import { encodePubcomp } from "../../packet/pubcomp.ts";
import { encodePubrel } from "../../packet/pubrel.ts";
import { REASON_CODE } from "../../packet/reason_code.ts";
import type { Connection } from "../connection.ts";
import { sendAck } from "./ack_order.ts";

/** PUBACK: a QoS 1 delivery is done. */
export function onPuback(connection: Connection, packetId: number): void {
  const session = connection.session!;
  if (!session.acknowledge(packetId, connection.core.clock.now())) {
    wrongAck(connection, "PUBACK", packetId);
    return;
  }
  connection.retainedBacklog?.pump(); // the window has room again
}

/** PUBREC: a QoS 2 delivery arrived; answered with PUBREL. */
export function onPubrec(connection: Connection, packetId: number, reasonCode: number): void {
  const session = connection.session!;
  if (session.received(packetId, reasonCode, connection.core.clock.now())) return;
  if (session.inflight.has(packetId)) {
    wrongAck(connection, "PUBREC", packetId);
    return;
  }
  // Unknown identifier: answer so the client's flow can end (5.0 section 4.3.3).
  connection.send(
    encodePubrel(
      { packetId, reasonCode: REASON_CODE.PacketIdentifierNotFound },
      connection.protocolVersion,
    ),
  );
}

/** PUBCOMP: a QoS 2 delivery is done. */
export function onPubcomp(connection: Connection, packetId: number): void {
  const session = connection.session!;
  if (!session.completed(packetId, connection.core.clock.now())) {
    wrongAck(connection, "PUBCOMP", packetId);
    return;
  }
  connection.retainedBacklog?.pump(); // the window has room again
}

/**
 * PUBREL: a QoS 2 message the client published is released; answered with PUBCOMP. For an id we do not hold,
 * PUBCOMP 0x00 too: the client lost our PUBCOMP and sent PUBREL again, and the message went exactly once
 * (Mosquitto answers so; 0x92 made MQTT.js report a failed publish).
 */
export function onPubrel(connection: Connection, packetId: number): void {
  const session = connection.session!;
  if (session.deleteIncoming(packetId) && session.persistent) {
    connection.core.store?.add({ kind: "deleteIncoming", clientId: connection.clientId, packetId });
  }
  sendAck(connection, encodePubcomp({ packetId, reasonCode: 0 }, connection.protocolVersion), false, 0);
}

/** Ignores an ack for an unknown packet id; throws for one whose delivery expects another ack type. */
function wrongAck(connection: Connection, name: string, packetId: number): void {
  const entry = connection.session!.inflight.get(packetId);
  if (entry === undefined) return;
  const expected = entry.qos === 1 ? "PUBACK" : entry.state === "released" ? "PUBCOMP" : "PUBREC";
  throw protocolError(
    `${name} for packet id ${packetId}, which is a QoS ${entry.qos} delivery waiting for ${expected} ` +
      "(5.0 section 4.3)",
  );
}
