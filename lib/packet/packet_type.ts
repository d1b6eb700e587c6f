/**
 * Control packet types (section 2.1.2), protocol versions and QoS levels.
 *
 * @module
 */

/** Control packet type values, the high nibble of the first byte. */
export const PACKET_TYPE = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
  AUTH: 15,
} as const;

/** A control packet type value. */
export type PacketType = (typeof PACKET_TYPE)[keyof typeof PACKET_TYPE];

const NAMES = Object.fromEntries(Object.entries(PACKET_TYPE).map(([name, type]) => [type, name])) as Record<
  number,
  string
>;

/** The name of a packet type, e.g. `packetName(3)` is `"PUBLISH"`. */
export function packetName(type: number): string {
  return NAMES[type] ?? `reserved type ${type}`;
}

/** Protocol level: 3 = MQTT 3.1 (`MQIsdp`), 4 = MQTT 3.1.1, 5 = MQTT 5.0. */
export type ProtocolVersion = 3 | 4 | 5;

/** Quality of Service level. */
export type QoS = 0 | 1 | 2;
