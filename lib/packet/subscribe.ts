/**
 * SUBSCRIBE (section 3.8).
 *
 * @module
 */

import { malformed, protocolError } from "../mqtt_error.ts";
import type { Reader } from "../codec/reader.ts";
import { startPacket } from "../codec/writer.ts";
import { utf8Length } from "../codec/utf8.ts";
import { varintLength } from "../codec/varint.ts";
import {
  type Properties,
  propertiesLength,
  PROPERTY_CONTEXT,
  readProperties,
  writeProperties,
} from "./properties.ts";
import { PACKET_TYPE, type ProtocolVersion, type QoS } from "./packet_type.ts";

/** One topic filter and its subscription options (5.0 section 3.8.3.1). */
export interface SubscriptionRequest {
  /** The topic filter. */
  readonly filter: string;
  /** The maximum QoS the subscriber accepts. */
  readonly qos: QoS;
  /** v5: do not send this client its own messages. */
  readonly noLocal: boolean;
  /** v5: keep the RETAIN flag as published. */
  readonly retainAsPublished: boolean;
  /** v5: 0 send retained on subscribe, 1 only for a new subscription, 2 never. */
  readonly retainHandling: 0 | 1 | 2;
}

/** A SUBSCRIBE packet. */
export interface SubscribePacket {
  /** The control packet type (8). */
  readonly type: typeof PACKET_TYPE.SUBSCRIBE;
  /** The packet identifier, 1..65535. */
  readonly packetId: number;
  /** One or more topic filters with their options, in order. */
  readonly subscriptions: readonly SubscriptionRequest[];
  /** v5 properties; absent when there are none, and always before 5.0. */
  readonly properties?: Properties;
}

/** Decodes a SUBSCRIBE body. */
export function decodeSubscribe(reader: Reader, version: ProtocolVersion): SubscribePacket {
  const packetId = reader.u16("packet identifier");
  if (packetId === 0) throw malformed("Cannot decode SUBSCRIBE: packet identifier is 0 [MQTT-2.2.1-3 (5.0)]");
  const properties = version === 5 ? readProperties(reader, PROPERTY_CONTEXT.SUBSCRIBE) : undefined;
  const subscriptions: SubscriptionRequest[] = [];
  while (reader.remaining > 0) {
    const filter = reader.utf8("topic filter");
    const options = reader.u8("subscription options");
    const qos = options & 0x03;
    if (version < 5) {
      if (qos === 3) throw malformed("Cannot decode SUBSCRIBE: requested QoS is 3 [MQTT-3.8.3-4 (3.1.1)]");
      if ((options & 0xfc) !== 0) {
        throw malformed(
          "Cannot decode SUBSCRIBE: reserved bits of the requested QoS byte are set [MQTT-3.8.3-4 (3.1.1)]",
        );
      }
      subscriptions.push({
        filter,
        qos: qos as QoS,
        noLocal: false,
        retainAsPublished: false,
        retainHandling: 0,
      });
      continue;
    }
    if ((options & 0xc0) !== 0) {
      throw malformed(
        "Cannot decode SUBSCRIBE: reserved bits of the subscription options are set [MQTT-3.8.3-5 (5.0)]",
      );
    }
    if (qos === 3) throw protocolError("Cannot decode SUBSCRIBE: Maximum QoS is 3 (5.0 section 3.8.3.1)");
    const retainHandling = (options >> 4) & 0x03;
    if (retainHandling === 3) {
      throw protocolError("Cannot decode SUBSCRIBE: Retain Handling is 3 (5.0 section 3.8.3.1)");
    }
    subscriptions.push({
      filter,
      qos: qos as QoS,
      noLocal: (options & 0x04) !== 0,
      retainAsPublished: (options & 0x08) !== 0,
      retainHandling: retainHandling as 0 | 1 | 2,
    });
  }
  if (subscriptions.length === 0) {
    throw protocolError(
      "Cannot decode SUBSCRIBE: no topic filter in the payload [MQTT-3.8.3-2 (5.0)] [MQTT-3.8.3-3 (3.1.1)]",
    );
  }
  return {
    type: PACKET_TYPE.SUBSCRIBE,
    packetId,
    subscriptions,
    ...(properties === undefined ? {} : { properties }),
  };
}

/** Encodes a SUBSCRIBE packet. */
export function encodeSubscribe(packet: SubscribePacket, version: ProtocolVersion): Uint8Array {
  const lengths = packet.subscriptions.map((s) => utf8Length(s.filter));
  let length = 2 + lengths.reduce((sum, n) => sum + 3 + n, 0);
  let propsLength = 0;
  if (version === 5) {
    propsLength = propertiesLength(packet.properties);
    length += varintLength(propsLength) + propsLength;
  }
  const w = startPacket((PACKET_TYPE.SUBSCRIBE << 4) | 0x02, length);
  w.u16(packet.packetId);
  if (version === 5) writeProperties(w, packet.properties, propsLength);
  packet.subscriptions.forEach((s, i) => {
    w.utf8(s.filter, lengths[i]!);
    let options = s.qos;
    if (version === 5) {
      options |= (s.noLocal ? 0x04 : 0) | (s.retainAsPublished ? 0x08 : 0) | (s.retainHandling << 4);
    }
    w.u8(options);
  });
  return w.bytes;
}
