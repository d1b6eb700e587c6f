/**
 * Which handler of `handlers/` takes an inbound packet, by the connection's state: CONNECT first
 * [MQTT-3.1.0-1 (3.1.1)], only AUTH while an authentication runs, the rest once connected.
 *
 * @module
 */

import { protocolError } from "../mqtt_error.ts";
import { PACKET_TYPE, packetName } from "../packet/packet_type.ts";
import type { Packet } from "../packet/packet.ts";
import { encodePingresp } from "../packet/pingresp.ts";
import type { Connection } from "./connection.ts";
import { onConnect } from "./handlers/connect.ts";
import { onAuth, onReauth } from "./handlers/auth.ts";
import { onPublish } from "./handlers/publish.ts";
import { onPuback, onPubcomp, onPubrec, onPubrel } from "./handlers/acks.ts";
import { onSubscribe, onUnsubscribe } from "./handlers/subscribe.ts";
import { onDisconnect } from "./handlers/disconnect.ts";

/** Hands `packet` to its handler; a packet the connection's state does not allow is a protocol error. */
export function dispatch(connection: Connection, packet: Packet): void | Promise<void> {
  switch (connection.state) {
    case "awaiting-connect":
      if (packet.type !== PACKET_TYPE.CONNECT) {
        throw protocolError(`Expected CONNECT, got ${packetName(packet.type)} [MQTT-3.1.0-1 (3.1.1)]`);
      }
      return onConnect(connection, packet);
    case "authenticating":
      if (packet.type === PACKET_TYPE.AUTH) return onAuth(connection, packet);
      throw protocolError(`Expected AUTH during authentication, got ${packetName(packet.type)}`);
    case "resuming":
      // Packets read after an early CONNACK wait in the read loop until the session is open (`connection.ts`).
      throw new Error(`${packetName(packet.type)} dispatched before the session was opened`);
    case "closed":
      return;
    case "connected":
      break;
  }
  switch (packet.type) {
    case PACKET_TYPE.PUBLISH:
      return onPublish(connection, packet);
    case PACKET_TYPE.PUBACK:
      return onPuback(connection, packet.packetId);
    case PACKET_TYPE.PUBREC:
      return onPubrec(connection, packet.packetId, packet.reasonCode);
    case PACKET_TYPE.PUBREL:
      return onPubrel(connection, packet.packetId);
    case PACKET_TYPE.PUBCOMP:
      return onPubcomp(connection, packet.packetId);
    case PACKET_TYPE.SUBSCRIBE:
      return onSubscribe(connection, packet);
    case PACKET_TYPE.UNSUBSCRIBE:
      return onUnsubscribe(connection, packet);
    case PACKET_TYPE.PINGREQ:
      connection.send(encodePingresp());
      return;
    case PACKET_TYPE.DISCONNECT:
      return onDisconnect(connection, packet);
    case PACKET_TYPE.AUTH:
      return onReauth(connection, packet);
    case PACKET_TYPE.CONNECT:
      throw protocolError("A second CONNECT on one connection [MQTT-3.1.0-2 (3.1.1)]");
    default:
      throw protocolError(`${packetName(packet.type)} is sent by servers, not clients`);
  }
}
