/**
 * Encoding any packet for a protocol version.
 *
 * @module
 */

import { PACKET_TYPE, type ProtocolVersion } from "./packet_type.ts";
import type { Packet } from "./packet.ts";
import { encodeConnect } from "./connect.ts";
import { encodeConnack } from "./connack.ts";
import { encodePublish } from "./publish.ts";
import { encodePuback } from "./puback.ts";
import { encodePubrec } from "./pubrec.ts";
import { encodePubrel } from "./pubrel.ts";
import { encodePubcomp } from "./pubcomp.ts";
import { encodeSubscribe } from "./subscribe.ts";
import { encodeSuback } from "./suback.ts";
import { encodeUnsubscribe } from "./unsubscribe.ts";
import { encodeUnsuback } from "./unsuback.ts";
import { encodePingreq } from "./pingreq.ts";
import { encodePingresp } from "./pingresp.ts";
import { encodeDisconnect } from "./disconnect.ts";
import { encodeAuth } from "./auth.ts";

/**
 * Encodes `packet` for `version` into one exactly-sized buffer. CONNECT uses its own `protocolVersion`. Fields a
 * version cannot carry (v5 properties and reason codes on v3) are left out.
 *
 * A packet of up to 1 KiB is a view into a shared 16 KiB slab (a buffer per packet costs more than encoding it):
 * use the view, not its `.buffer`, and `slice()` it to keep it for long without keeping the slab alive.
 *
 * @example
 * ```ts
 * import { encode } from "./encode.ts";
 * const bytes = encode({ type: 12 }, 4); // PINGREQ
 * console.assert(bytes[0] === 0xc0 && bytes[1] === 0);
 * ```
 */
export function encode(packet: Packet, version: ProtocolVersion): Uint8Array {
  switch (packet.type) {
    case PACKET_TYPE.CONNECT:
      return encodeConnect(packet);
    case PACKET_TYPE.CONNACK:
      return encodeConnack(packet, version);
    case PACKET_TYPE.PUBLISH:
      return encodePublish(packet, version);
    case PACKET_TYPE.PUBACK:
      return encodePuback(packet, version);
    case PACKET_TYPE.PUBREC:
      return encodePubrec(packet, version);
    case PACKET_TYPE.PUBREL:
      return encodePubrel(packet, version);
    case PACKET_TYPE.PUBCOMP:
      return encodePubcomp(packet, version);
    case PACKET_TYPE.SUBSCRIBE:
      return encodeSubscribe(packet, version);
    case PACKET_TYPE.SUBACK:
      return encodeSuback(packet, version);
    case PACKET_TYPE.UNSUBSCRIBE:
      return encodeUnsubscribe(packet, version);
    case PACKET_TYPE.UNSUBACK:
      return encodeUnsuback(packet, version);
    case PACKET_TYPE.PINGREQ:
      return encodePingreq();
    case PACKET_TYPE.PINGRESP:
      return encodePingresp();
    case PACKET_TYPE.DISCONNECT:
      return encodeDisconnect(packet, version);
    case PACKET_TYPE.AUTH:
      return encodeAuth(packet);
  }
}
