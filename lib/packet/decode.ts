/**
 * Decoding one whole frame into a typed packet. Fixed-header flags are checked here, once for every packet type
 * [MQTT-2.2.2-2 (3.1.1)] [MQTT-2.1.3-1 (5.0)].
 *
 * @module
 */

import { malformed, MqttError } from "../mqtt_error.ts";
import { REASON_CODE } from "./reason_code.ts";
import { PACKET_TYPE, packetName, type ProtocolVersion } from "./packet_type.ts";
import type { Packet } from "./packet.ts";
import { decodeConnect } from "./connect.ts";
import { decodeConnack } from "./connack.ts";
import { decodePublish } from "./publish.ts";
import { decodePuback } from "./puback.ts";
import { decodePubrec } from "./pubrec.ts";
import { decodePubrel } from "./pubrel.ts";
import { decodePubcomp } from "./pubcomp.ts";
import { decodeSubscribe } from "./subscribe.ts";
import { decodeSuback } from "./suback.ts";
import { decodeUnsubscribe } from "./unsubscribe.ts";
import { decodeUnsuback } from "./unsuback.ts";
import { decodePingreq } from "./pingreq.ts";
import { decodePingresp } from "./pingresp.ts";
import { decodeDisconnect } from "./disconnect.ts";
import { decodeAuth } from "./auth.ts";
import { Reader } from "../codec/reader.ts";
import { Framer } from "../codec/framer.ts";

/** The fixed-header flags each packet type must carry (PUBLISH's are checked by its decoder). */
const REQUIRED_FLAGS: readonly number[] = [-1, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0];
/** The DUP flag, which MQTT 3.1 clients set when they re-send PUBREL, SUBSCRIBE or UNSUBSCRIBE. */
const DUP = 0x08;

/**
 * Decodes a packet from its first byte `header` and its `body` (the Remaining Length bytes). `version` is the
 * connection's protocol version; CONNECT reads its own. The payload, the will payload and the password are views
 * into `body` (valid as long as the frame is: copy what you keep); binary property values are copies.
 *
 * @throws {MqttError} with the reason code to send: 0x81 malformed, 0x82 protocol error, 0x84 unsupported version.
 */
export function decodePacket(header: number, body: Uint8Array, version: ProtocolVersion): Packet {
  const type = header >> 4;
  const flags = header & 0x0f;
  const name = packetName(type);
  if (type === 0) throw malformed("Cannot decode packet: type 0 is reserved [MQTT-2.1.2]");
  if (type === PACKET_TYPE.AUTH && version < 5) {
    throw malformed("Cannot decode packet: type 15 (AUTH) does not exist before MQTT 5.0");
  }
  const required = REQUIRED_FLAGS[type]!;
  // MQTT 3.1 let a re-sent PUBREL, SUBSCRIBE or UNSUBSCRIBE carry DUP (3.1 section 3.6); refusing it would cut
  // off a 3.1 client on each retry, so level 3 may add DUP to flags 0010 (as Mosquitto does). 3.1.1 and 5.0 stay
  // strict [MQTT-3.6.1-1 (3.1.1)] [MQTT-3.8.1-1 (3.1.1)] [MQTT-3.10.1-1 (3.1.1)].
  if (required >= 0 && flags !== required && !(version === 3 && required === 2 && flags === (2 | DUP))) {
    throw malformed(
      `Cannot decode ${name}: fixed header flags are 0x${
        flags.toString(16)
      }, not ${required} [MQTT-2.2.2-2 (3.1.1)]`,
    );
  }
  const reader = new Reader(body, name);
  switch (type) {
    case PACKET_TYPE.CONNECT:
      return decodeConnect(reader);
    case PACKET_TYPE.CONNACK:
      return decodeConnack(reader, version);
    case PACKET_TYPE.PUBLISH:
      return decodePublish(reader, flags, version);
    case PACKET_TYPE.PUBACK:
      return decodePuback(reader, version);
    case PACKET_TYPE.PUBREC:
      return decodePubrec(reader, version);
    case PACKET_TYPE.PUBREL:
      return decodePubrel(reader, version);
    case PACKET_TYPE.PUBCOMP:
      return decodePubcomp(reader, version);
    case PACKET_TYPE.SUBSCRIBE:
      return decodeSubscribe(reader, version);
    case PACKET_TYPE.SUBACK:
      return decodeSuback(reader, version);
    case PACKET_TYPE.UNSUBSCRIBE:
      return decodeUnsubscribe(reader, version);
    case PACKET_TYPE.UNSUBACK:
      return decodeUnsuback(reader, version);
    case PACKET_TYPE.PINGREQ:
      return decodePingreq(reader);
    case PACKET_TYPE.PINGRESP:
      return decodePingresp(reader);
    case PACKET_TYPE.DISCONNECT:
      return decodeDisconnect(reader, version);
    default:
      return decodeAuth(reader);
  }
}

/**
 * Decodes exactly one packet from `bytes` (fixed header included); bytes after it are an error. Convenient for
 * tests and tools; connections use {@linkcode Framer} and {@linkcode decodePacket}.
 */
export function decode(bytes: Uint8Array, version: ProtocolVersion): Packet {
  const framer = new Framer();
  framer.push(bytes);
  const frame = framer.next();
  if (frame === undefined) throw malformed("Cannot decode packet: the bytes end before the packet does");
  if (framer.buffered > 0) {
    throw new MqttError(
      REASON_CODE.MalformedPacket,
      `Cannot decode packet: ${framer.buffered} byte(s) after it`,
    );
  }
  return decodePacket(frame.header, frame.body, version);
}
