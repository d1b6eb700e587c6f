/**
 * MQTT 5.0 properties (section 2.2.2.2): every property with its identifier, data type and the packets it may
 * appear in, and the one decoder and encoder for property blocks.
 *
 * @module
 */

import { MqttError, protocolError } from "../mqtt_error.ts";
import { REASON_CODE } from "./reason_code.ts";
import type { Reader } from "../codec/reader.ts";
import type { Writer } from "../codec/writer.ts";
import { utf8Length } from "../codec/utf8.ts";
import { varintLength } from "../codec/varint.ts";

/** The properties of a packet, by name. Values are as on the wire (0/1 flags stay numbers). */
export interface Properties {
  /** 0x01: 0 = unspecified bytes, 1 = UTF-8 payload. */
  readonly payloadFormatIndicator?: number;
  /** 0x02: seconds. */
  readonly messageExpiryInterval?: number;
  /** 0x03 */
  readonly contentType?: string;
  /** 0x08 */
  readonly responseTopic?: string;
  /** 0x09 */
  readonly correlationData?: Uint8Array;
  /** 0x0B: one in SUBSCRIBE; one or more in PUBLISH from the server. */
  readonly subscriptionIdentifiers?: readonly number[];
  /** 0x11: seconds. */
  readonly sessionExpiryInterval?: number;
  /** 0x12 */
  readonly assignedClientIdentifier?: string;
  /** 0x13: seconds. */
  readonly serverKeepAlive?: number;
  /** 0x15 */
  readonly authenticationMethod?: string;
  /** 0x16 */
  readonly authenticationData?: Uint8Array;
  /** 0x17: 0 or 1. */
  readonly requestProblemInformation?: number;
  /** 0x18: seconds. */
  readonly willDelayInterval?: number;
  /** 0x19: 0 or 1. */
  readonly requestResponseInformation?: number;
  /** 0x1A */
  readonly responseInformation?: string;
  /** 0x1C */
  readonly serverReference?: string;
  /** 0x1F */
  readonly reasonString?: string;
  /** 0x21: 1..65535. */
  readonly receiveMaximum?: number;
  /** 0x22 */
  readonly topicAliasMaximum?: number;
  /** 0x23: 1..Topic Alias Maximum. */
  readonly topicAlias?: number;
  /** 0x24: 0 or 1. */
  readonly maximumQoS?: number;
  /** 0x25: 0 or 1. */
  readonly retainAvailable?: number;
  /** 0x26: name/value pairs, order kept [MQTT-3.3.2-18]. */
  readonly userProperties?: readonly (readonly [string, string])[];
  /** 0x27: bytes, 1.. */
  readonly maximumPacketSize?: number;
  /** 0x28: 0 or 1. */
  readonly wildcardSubscriptionAvailable?: number;
  /** 0x29: 0 or 1. */
  readonly subscriptionIdentifiersAvailable?: number;
  /** 0x2A: 0 or 1. */
  readonly sharedSubscriptionAvailable?: number;
}

/** A property's wire type (section 1.5). */
export type PropertyType = "byte" | "u16" | "u32" | "varint" | "utf8" | "binary" | "pair";

/** Where a property block appears: a packet type (1..15), or the will properties of CONNECT. */
export const PROPERTY_CONTEXT = {
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
  DISCONNECT: 14,
  AUTH: 15,
  WILL: 16,
} as const;

/** A property block context. */
export type PropertyContext = (typeof PROPERTY_CONTEXT)[keyof typeof PROPERTY_CONTEXT];

/** One row of the property table. */
export interface PropertySpec {
  /** The property identifier (table 2-4). */
  readonly id: number;
  /** Its field in {@linkcode Properties}. */
  readonly key: keyof Properties;
  /** Its wire type. */
  readonly type: PropertyType;
  /** Bit `1 << context` set for each context the property may appear in. */
  readonly contexts: number;
}

const C = PROPERTY_CONTEXT;
const bits = (...contexts: PropertyContext[]): number => contexts.reduce((m, c) => m | (1 << c), 0);
const ACKS = bits(C.PUBACK, C.PUBREC, C.PUBREL, C.PUBCOMP);

/** The property table (MQTT 5.0 table 2-4). */
export const PROPERTIES: readonly PropertySpec[] = [
  { id: 0x01, key: "payloadFormatIndicator", type: "byte", contexts: bits(C.PUBLISH, C.WILL) },
  { id: 0x02, key: "messageExpiryInterval", type: "u32", contexts: bits(C.PUBLISH, C.WILL) },
  { id: 0x03, key: "contentType", type: "utf8", contexts: bits(C.PUBLISH, C.WILL) },
  { id: 0x08, key: "responseTopic", type: "utf8", contexts: bits(C.PUBLISH, C.WILL) },
  { id: 0x09, key: "correlationData", type: "binary", contexts: bits(C.PUBLISH, C.WILL) },
  { id: 0x0b, key: "subscriptionIdentifiers", type: "varint", contexts: bits(C.PUBLISH, C.SUBSCRIBE) },
  { id: 0x11, key: "sessionExpiryInterval", type: "u32", contexts: bits(C.CONNECT, C.CONNACK, C.DISCONNECT) },
  { id: 0x12, key: "assignedClientIdentifier", type: "utf8", contexts: bits(C.CONNACK) },
  { id: 0x13, key: "serverKeepAlive", type: "u16", contexts: bits(C.CONNACK) },
  { id: 0x15, key: "authenticationMethod", type: "utf8", contexts: bits(C.CONNECT, C.CONNACK, C.AUTH) },
  { id: 0x16, key: "authenticationData", type: "binary", contexts: bits(C.CONNECT, C.CONNACK, C.AUTH) },
  { id: 0x17, key: "requestProblemInformation", type: "byte", contexts: bits(C.CONNECT) },
  { id: 0x18, key: "willDelayInterval", type: "u32", contexts: bits(C.WILL) },
  { id: 0x19, key: "requestResponseInformation", type: "byte", contexts: bits(C.CONNECT) },
  { id: 0x1a, key: "responseInformation", type: "utf8", contexts: bits(C.CONNACK) },
  { id: 0x1c, key: "serverReference", type: "utf8", contexts: bits(C.CONNACK, C.DISCONNECT) },
  {
    id: 0x1f,
    key: "reasonString",
    type: "utf8",
    contexts: bits(C.CONNACK, C.SUBACK, C.UNSUBACK, C.DISCONNECT, C.AUTH) | ACKS,
  },
  { id: 0x21, key: "receiveMaximum", type: "u16", contexts: bits(C.CONNECT, C.CONNACK) },
  { id: 0x22, key: "topicAliasMaximum", type: "u16", contexts: bits(C.CONNECT, C.CONNACK) },
  { id: 0x23, key: "topicAlias", type: "u16", contexts: bits(C.PUBLISH) },
  { id: 0x24, key: "maximumQoS", type: "byte", contexts: bits(C.CONNACK) },
  { id: 0x25, key: "retainAvailable", type: "byte", contexts: bits(C.CONNACK) },
  {
    id: 0x26,
    key: "userProperties",
    type: "pair",
    contexts: bits(
      C.CONNECT,
      C.CONNACK,
      C.PUBLISH,
      C.WILL,
      C.SUBSCRIBE,
      C.SUBACK,
      C.UNSUBSCRIBE,
      C.UNSUBACK,
      C.DISCONNECT,
      C.AUTH,
    ) | ACKS,
  },
  { id: 0x27, key: "maximumPacketSize", type: "u32", contexts: bits(C.CONNECT, C.CONNACK) },
  { id: 0x28, key: "wildcardSubscriptionAvailable", type: "byte", contexts: bits(C.CONNACK) },
  { id: 0x29, key: "subscriptionIdentifiersAvailable", type: "byte", contexts: bits(C.CONNACK) },
  { id: 0x2a, key: "sharedSubscriptionAvailable", type: "byte", contexts: bits(C.CONNACK) },
];

const BY_ID: (PropertySpec | undefined)[] = [];
for (const spec of PROPERTIES) BY_ID[spec.id] = spec;

const CONTEXT_NAMES: Record<number, string> = {
  1: "CONNECT",
  2: "CONNACK",
  3: "PUBLISH",
  4: "PUBACK",
  5: "PUBREC",
  6: "PUBREL",
  7: "PUBCOMP",
  8: "SUBSCRIBE",
  9: "SUBACK",
  10: "UNSUBSCRIBE",
  11: "UNSUBACK",
  14: "DISCONNECT",
  15: "AUTH",
  16: "will properties",
};

/** Properties that must be 0 or 1 when present. */
const BOOLEAN_BYTES: ReadonlySet<keyof Properties> = new Set([
  "payloadFormatIndicator",
  "requestProblemInformation",
  "requestResponseInformation",
  "maximumQoS",
  "retainAvailable",
  "wildcardSubscriptionAvailable",
  "subscriptionIdentifiersAvailable",
  "sharedSubscriptionAvailable",
]);

type MutableProperties = { -readonly [K in keyof Properties]: Properties[K] };

/**
 * Reads a property block (length, then properties) for `context`. Refuses unknown identifiers, a property not
 * allowed in this packet, a duplicate (User Property and the server's Subscription Identifiers aside), and values
 * out of range (each a Protocol Error or Malformed Packet as section 2.2.2.2 and the packet sections say).
 */
export function readProperties(reader: Reader, context: PropertyContext): Properties | undefined {
  const length = reader.varint("property length");
  if (length === 0) return undefined;
  if (length > reader.remaining) {
    throw malformedProps(reader, context, `property length ${length} runs past the end of the packet`);
  }
  const end = reader.pos + length;
  const outerEnd = reader.end;
  reader.end = end;
  const props: MutableProperties = {};
  try {
    while (reader.pos < end) {
      const id = reader.varint("property identifier");
      const spec = BY_ID[id];
      if (spec === undefined) {
        throw malformedProps(reader, context, `unknown property identifier 0x${id.toString(16)}`);
      }
      if ((spec.contexts & (1 << context)) === 0) {
        throw malformedProps(
          reader,
          context,
          `property ${spec.key} (0x${id.toString(16)}) is not allowed here`,
        );
      }
      readOne(reader, context, spec, props);
    }
  } finally {
    reader.end = outerEnd;
  }
  if (props.authenticationData !== undefined && props.authenticationMethod === undefined) {
    throw protocolError(
      `Cannot decode ${
        CONTEXT_NAMES[context]
      }: Authentication Data without an Authentication Method (section 3.1.2.11.10)`,
    );
  }
  return props;
}

function readOne(
  reader: Reader,
  context: PropertyContext,
  spec: PropertySpec,
  props: MutableProperties,
): void {
  const what = spec.key;
  switch (spec.type) {
    case "pair": {
      const name = reader.utf8(`${what} name`);
      const value = reader.utf8(`${what} value`);
      const list = (props.userProperties ?? (props.userProperties = [])) as [string, string][];
      list.push([name, value]);
      return;
    }
    case "varint": {
      // Subscription Identifier: several are allowed only in a PUBLISH [MQTT-3.3.4-4].
      const value = reader.varint(what);
      if (value === 0) {
        throw protocolError(
          `Cannot decode ${CONTEXT_NAMES[context]}: Subscription Identifier is 0 (section 3.8.2.1.2)`,
        );
      }
      const list = (props.subscriptionIdentifiers ?? (props.subscriptionIdentifiers = [])) as number[];
      if (list.length > 0 && context !== PROPERTY_CONTEXT.PUBLISH) throw duplicate(context, spec);
      list.push(value);
      return;
    }
  }
  if (props[spec.key] !== undefined) throw duplicate(context, spec);
  let value: number | string | Uint8Array;
  switch (spec.type) {
    case "byte":
      value = reader.u8(what);
      if (BOOLEAN_BYTES.has(spec.key) && value > 1) {
        throw new MqttError(
          REASON_CODE.ProtocolError,
          `Cannot decode ${CONTEXT_NAMES[context]}: ${what} is ${value}, not 0 or 1`,
        );
      }
      break;
    case "u16":
      value = reader.u16(what);
      if (value === 0 && (spec.key === "receiveMaximum" || spec.key === "topicAlias")) {
        // "A Topic Alias value of 0 ... is a Protocol Error, the receiver uses DISCONNECT with Reason Code of
        // 0x94" (5.0 section 3.3.4): the code that section names, not the generic 0x82.
        throw new MqttError(
          spec.key === "topicAlias" ? REASON_CODE.TopicAliasInvalid : REASON_CODE.ProtocolError,
          `Cannot decode ${CONTEXT_NAMES[context]}: ${what} is 0`,
        );
      }
      break;
    case "u32":
      value = reader.u32(what);
      if (value === 0 && spec.key === "maximumPacketSize") {
        throw new MqttError(
          REASON_CODE.ProtocolError,
          `Cannot decode ${CONTEXT_NAMES[context]}: ${what} is 0`,
        );
      }
      break;
    case "utf8":
      value = reader.utf8(what);
      break;
    case "binary":
      // A copy: Correlation Data travels with stored messages, and a view would be overwritten by the next read.
      value = reader.binary(what).slice();
      break;
  }
  (props as Record<string, unknown>)[spec.key] = value;
}

function duplicate(context: PropertyContext, spec: PropertySpec): MqttError {
  return protocolError(
    `Cannot decode ${CONTEXT_NAMES[context]}: property ${spec.key} (0x${
      spec.id.toString(16)
    }) appears more than once (section 2.2.2.2)`,
  );
}

function malformedProps(reader: Reader, context: PropertyContext, message: string): MqttError {
  return new MqttError(
    REASON_CODE.MalformedPacket,
    `Cannot decode ${CONTEXT_NAMES[context] ?? reader.packet}: ${message}`,
  );
}

/** The byte length of a property block's content (without its own length prefix). */
export function propertiesLength(props: Properties | undefined): number {
  if (props === undefined) return 0;
  let length = 0;
  for (const spec of PROPERTIES) {
    const value = props[spec.key];
    if (value === undefined) continue;
    switch (spec.type) {
      case "byte":
        length += 2;
        break;
      case "u16":
        length += 3;
        break;
      case "u32":
        length += 5;
        break;
      case "varint":
        for (const id of value as readonly number[]) length += 1 + varintLength(id);
        break;
      case "utf8":
        length += 3 + utf8Length(value as string);
        break;
      case "binary":
        length += 3 + (value as Uint8Array).length;
        break;
      case "pair":
        for (const [k, v] of value as readonly (readonly [string, string])[]) {
          length += 5 + utf8Length(k) + utf8Length(v);
        }
        break;
    }
  }
  return length;
}

/** Writes a property block: its length `contentLength` (from {@linkcode propertiesLength}), then each property. */
export function writeProperties(writer: Writer, props: Properties | undefined, contentLength: number): void {
  writer.varint(contentLength);
  if (props === undefined || contentLength === 0) return;
  for (const spec of PROPERTIES) {
    const value = props[spec.key];
    if (value === undefined) continue;
    switch (spec.type) {
      case "byte":
        writer.u8(spec.id);
        writer.u8(value as number);
        break;
      case "u16":
        writer.u8(spec.id);
        writer.u16(value as number);
        break;
      case "u32":
        writer.u8(spec.id);
        writer.u32(value as number);
        break;
      case "varint":
        for (const id of value as readonly number[]) {
          writer.u8(spec.id);
          writer.varint(id);
        }
        break;
      case "utf8":
        writer.u8(spec.id);
        writer.utf8(value as string, utf8Length(value as string));
        break;
      case "binary":
        writer.u8(spec.id);
        writer.binary(value as Uint8Array);
        break;
      case "pair":
        for (const [k, v] of value as readonly (readonly [string, string])[]) {
          writer.u8(spec.id);
          writer.utf8(k, utf8Length(k));
          writer.utf8(v, utf8Length(v));
        }
        break;
    }
  }
}
