/**
 * CONNECT (section 3.1): the first packet a client sends.
 *
 * @module
 */

import { malformed, MqttError } from "../mqtt_error.ts";
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
import { REASON_CODE } from "./reason_code.ts";
import { PACKET_TYPE, type ProtocolVersion, type QoS } from "./packet_type.ts";

/** The will message a CONNECT carries (5.0 sections 3.1.3.2 - 3.1.3.4). */
export interface WillMessage {
  /** The topic the will message is published to. */
  readonly topic: string;
  /** The will message payload. */
  readonly payload: Uint8Array;
  /** The QoS of the will message. */
  readonly qos: QoS;
  /** Whether the will message is retained. */
  readonly retain: boolean;
  /** v5 will properties (Will Delay Interval, Message Expiry, ...). */
  readonly properties?: Properties;
}

/** A CONNECT packet. */
export interface ConnectPacket {
  /** The control packet type (1). */
  readonly type: typeof PACKET_TYPE.CONNECT;
  /** 3 = MQTT 3.1 (`MQIsdp`), 4 = 3.1.1, 5 = 5.0. */
  readonly protocolVersion: ProtocolVersion;
  /** The client identifier; from 3.1.1 it may be empty, and the server assigns one. */
  readonly clientId: string;
  /** Clean Session (v3) / Clean Start (v5). */
  readonly cleanStart: boolean;
  /** Seconds; 0 turns keep-alive off. */
  readonly keepAlive: number;
  /** User Name, present when the User Name Flag is set. */
  readonly username?: string;
  /** Password, present when the Password Flag is set (from 5.0 also without a user name). */
  readonly password?: Uint8Array;
  /** The will message, present when the Will Flag is set. */
  readonly will?: WillMessage;
  /** v5 properties; absent when there are none, and always before 5.0. */
  readonly properties?: Properties;
}

const PROTOCOL_NAME: Record<ProtocolVersion, string> = { 3: "MQIsdp", 4: "MQTT", 5: "MQTT" };

/** Decodes a CONNECT body. The protocol version comes from the packet itself. */
export function decodeConnect(reader: Reader): ConnectPacket {
  const name = reader.utf8("protocol name");
  if (name !== "MQTT" && name !== "MQIsdp") {
    // 0x84 lets a server reveal it speaks MQTT with a CONNACK before closing [MQTT-3.1.2-1 (5.0)].
    throw new MqttError(
      REASON_CODE.UnsupportedProtocolVersion,
      `Cannot decode CONNECT: protocol name is "${name}", not "MQTT" [MQTT-3.1.2-1 (5.0)]`,
    );
  }
  const level = reader.u8("protocol level");
  if ((level !== 3 && level !== 4 && level !== 5) || PROTOCOL_NAME[level] !== name) {
    throw new MqttError(
      REASON_CODE.UnsupportedProtocolVersion,
      `Cannot decode CONNECT: protocol "${name}" level ${level} is not supported [MQTT-3.1.2-2 (5.0)]`,
    );
  }
  const version: ProtocolVersion = level;
  const flags = reader.u8("connect flags");
  if ((flags & 0x01) !== 0) {
    throw malformed("Cannot decode CONNECT: the reserved flag is set [MQTT-3.1.2-3 (5.0)]");
  }
  const cleanStart = (flags & 0x02) !== 0;
  const willFlag = (flags & 0x04) !== 0;
  const willQoS = (flags >> 3) & 0x03;
  const willRetain = (flags & 0x20) !== 0;
  const hasPassword = (flags & 0x40) !== 0;
  const hasUsername = (flags & 0x80) !== 0;
  if (willQoS === 3) throw malformed("Cannot decode CONNECT: Will QoS is 3 [MQTT-3.1.2-12 (5.0)]");
  if (!willFlag && willQoS !== 0) {
    throw malformed("Cannot decode CONNECT: Will QoS is set without the Will Flag [MQTT-3.1.2-11 (5.0)]");
  }
  if (!willFlag && willRetain) {
    throw malformed("Cannot decode CONNECT: Will Retain is set without the Will Flag [MQTT-3.1.2-13 (5.0)]");
  }
  if (version < 5 && hasPassword && !hasUsername) {
    throw malformed("Cannot decode CONNECT: a password without a user name [MQTT-3.1.2-22 (3.1.1)]");
  }
  const keepAlive = reader.u16("keep alive");
  const properties = version === 5 ? readProperties(reader, PROPERTY_CONTEXT.CONNECT) : undefined;
  const clientId = reader.utf8("client identifier");
  let will: WillMessage | undefined;
  if (willFlag) {
    const willProperties = version === 5 ? readProperties(reader, PROPERTY_CONTEXT.WILL) : undefined;
    const topic = reader.utf8("will topic");
    const payload = reader.binary("will payload");
    will = {
      topic,
      payload,
      qos: willQoS as QoS,
      retain: willRetain,
      ...(willProperties === undefined ? {} : { properties: willProperties }),
    };
  }
  const username = hasUsername ? reader.utf8("user name") : undefined;
  const password = hasPassword ? reader.binary("password") : undefined;
  reader.expectEnd();
  return {
    type: PACKET_TYPE.CONNECT,
    protocolVersion: version,
    clientId,
    cleanStart,
    keepAlive,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(will === undefined ? {} : { will }),
    ...(properties === undefined ? {} : { properties }),
  };
}

/** Encodes a CONNECT packet. */
export function encodeConnect(packet: ConnectPacket): Uint8Array {
  const version = packet.protocolVersion;
  const name = PROTOCOL_NAME[version];
  const v5 = version === 5;
  const clientIdLength = utf8Length(packet.clientId);
  let length = 2 + name.length + 1 + 1 + 2 + 2 + clientIdLength;
  let propsLength = 0;
  if (v5) {
    propsLength = propertiesLength(packet.properties);
    length += varintLength(propsLength) + propsLength;
  }
  const will = packet.will;
  let willPropsLength = 0;
  let willTopicLength = 0;
  if (will !== undefined) {
    willTopicLength = utf8Length(will.topic);
    length += 2 + willTopicLength + 2 + will.payload.length;
    if (v5) {
      willPropsLength = propertiesLength(will.properties);
      length += varintLength(willPropsLength) + willPropsLength;
    }
  }
  let usernameLength = 0;
  if (packet.username !== undefined) {
    usernameLength = utf8Length(packet.username);
    length += 2 + usernameLength;
  }
  if (packet.password !== undefined) length += 2 + packet.password.length;

  const w = startPacket(PACKET_TYPE.CONNECT << 4, length);
  w.utf8(name, name.length);
  w.u8(version);
  let flags = packet.cleanStart ? 0x02 : 0;
  if (will !== undefined) flags |= 0x04 | (will.qos << 3) | (will.retain ? 0x20 : 0);
  if (packet.password !== undefined) flags |= 0x40;
  if (packet.username !== undefined) flags |= 0x80;
  w.u8(flags);
  w.u16(packet.keepAlive);
  if (v5) writeProperties(w, packet.properties, propsLength);
  w.utf8(packet.clientId, clientIdLength);
  if (will !== undefined) {
    if (v5) writeProperties(w, will.properties, willPropsLength);
    w.utf8(will.topic, willTopicLength);
    w.binary(will.payload);
  }
  if (packet.username !== undefined) w.utf8(packet.username, usernameLength);
  if (packet.password !== undefined) w.binary(packet.password);
  return w.bytes;
}
