/**
 * One debug log line per packet in and out, as Mosquitto's `log_type all` writes them: direction, client id,
 * packet name and its key fields, never payload bytes. Built only when the logger keeps debug lines; the
 * connection asks once, so a quieter logger costs nothing per packet.
 *
 * @module
 */

import { decode } from "../packet/decode.ts";
import type { Packet } from "../packet/packet.ts";
import { PACKET_TYPE, packetName, type ProtocolVersion } from "../packet/packet_type.ts";
import { patchPublish } from "../packet/publish.ts";
import { printable } from "./logger.ts";

/** `Received PUBLISH from c1 (d0, q1, r0, m9, 't/1', ... (14 bytes))`. */
export function receivedLine(packet: Packet, clientId: string): string {
  const from = packet.type === PACKET_TYPE.CONNECT ? packet.clientId : clientId;
  return `Received ${packetName(packet.type)} from ${printable(from || "(unknown)")}${fields(packet)}`;
}

/**
 * `Sending PUBACK to c1 (m9, rc0)`, from the encoded bytes (the connection sends bytes). A shared PUBLISH gets
 * its packet identifier and DUP patched in only as it is copied out: `patch` does it on a copy here.
 */
export function sendingLine(
  bytes: Uint8Array,
  version: ProtocolVersion,
  clientId: string,
  patch?: { readonly idOffset: number; readonly packetId: number; readonly dup: boolean },
): string {
  const name = packetName(bytes[0]! >> 4);
  let packet: Packet;
  try {
    let copy = bytes;
    if (patch !== undefined && patch.idOffset > 0) {
      copy = bytes.slice();
      patchPublish(copy, 0, patch.idOffset, patch.packetId, patch.dup);
    }
    packet = decode(copy, version);
  } catch {
    return `Sending ${name} to ${printable(clientId)} (${bytes.length} bytes)`;
  }
  return `Sending ${name} to ${printable(clientId)}${fields(packet)}`;
}

function fields(packet: Packet): string {
  switch (packet.type) {
    case PACKET_TYPE.CONNECT:
      return ` (p${packet.protocolVersion}, c${packet.cleanStart ? 1 : 0}, k${packet.keepAlive}` +
        `${packet.username === undefined ? "" : `, u'${printable(packet.username)}'`}` +
        `${packet.will === undefined ? "" : `, will q${packet.will.qos} '${printable(packet.will.topic)}'`})`;
    case PACKET_TYPE.CONNACK:
      return ` (${packet.sessionPresent ? 1 : 0}, ${packet.reasonCode})`;
    case PACKET_TYPE.PUBLISH:
      return ` (d${packet.dup ? 1 : 0}, q${packet.qos}, r${packet.retain ? 1 : 0}, m${
        packet.packetId ?? 0
      }, ` +
        `'${printable(packet.topic)}', ... (${packet.payload.length} bytes))`;
    case PACKET_TYPE.PUBACK:
    case PACKET_TYPE.PUBREC:
    case PACKET_TYPE.PUBREL:
    case PACKET_TYPE.PUBCOMP:
      return ` (m${packet.packetId}, rc${packet.reasonCode})`;
    case PACKET_TYPE.SUBSCRIBE:
      return ` (m${packet.packetId}: ${
        packet.subscriptions.map((s) => `'${printable(s.filter)}' q${s.qos}`).join(", ")
      })`;
    case PACKET_TYPE.UNSUBSCRIBE:
      return ` (m${packet.packetId}: ${packet.filters.map((f) => `'${printable(f)}'`).join(", ")})`;
    case PACKET_TYPE.SUBACK:
    case PACKET_TYPE.UNSUBACK:
      return ` (m${packet.packetId}, rc ${packet.reasonCodes.join(" ")})`;
    case PACKET_TYPE.DISCONNECT:
    case PACKET_TYPE.AUTH:
      return ` (rc${packet.reasonCode})`;
    default:
      return "";
  }
}
