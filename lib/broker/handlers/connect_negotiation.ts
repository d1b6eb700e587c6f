/**
 * CONNECT negotiation as pure functions, so its rules are tested as tables rather than over a socket:
 * {@linkcode checkConnect} decides before authentication (client identifier, redirect, keep alive, will) and
 * {@linkcode negotiateConnack} after it (session expiry, the CONNACK's properties within the client's Maximum
 * Packet Size). Neither touches a connection, a clock or the broker.
 *
 * @module
 */

import { isWellFormedUtf8 } from "../../codec/utf8.ts";
import { VARINT_MAX } from "../../codec/varint.ts";
import { encodeConnack } from "../../packet/connack.ts";
import type { ConnectPacket } from "../../packet/connect.ts";
import { PACKET_TYPE, type ProtocolVersion } from "../../packet/packet_type.ts";
import type { Properties } from "../../packet/properties.ts";
import { connackCodeV3, REASON_CODE } from "../../packet/reason_code.ts";
import { isWildcardFilter, validateTopicName } from "../../topic/topic.ts";
import { EXPIRY_NEVER, type ResolvedOptions } from "../options.ts";

/** A CONNECT refused: the reason code to answer with (v5 form), why, and extra CONNACK properties. */
export interface ConnectRefusal {
  /** Discriminant. */
  readonly kind: "refuse";
  /** The v5 reason code; the v3 return code is derived from it when the CONNACK is encoded. */
  readonly reasonCode: number;
  /** For the log and the v5 Reason String. */
  readonly reason: string;
  /** Properties the refusal carries besides the Reason String (Server Reference of a redirect). */
  readonly properties?: Properties;
}

/** What the checks before authentication settled. */
export interface ConnectTerms {
  /** Discriminant. */
  readonly kind: "accept";
  /** The client sent an empty identifier and gets one from the broker [MQTT-3.1.3-6 (3.1.1)]. */
  readonly assignClientId: boolean;
  /** The keep alive in force, in seconds (0: none). */
  readonly keepAlive: number;
  /** The Server Keep Alive to announce when the broker overrides the client's (v5 only). */
  readonly serverKeepAlive: number | undefined;
  /** The client's Maximum Packet Size, 0 for none (clamped to the largest packet MQTT can express). */
  readonly maxPacketSize: number;
  /** How many QoS 1/2 messages may be in flight to the client. */
  readonly sendWindow: number;
  /** The client's Topic Alias Maximum, 0 when the broker sends no aliases. */
  readonly topicAliasMaximum: number;
  /** Whether acks and DISCONNECT may carry a Reason String [MQTT-3.1.2-29 (5.0)]. */
  readonly problemInfo: boolean;
}

/**
 * The checks on a CONNECT that come before authentication: client identifier, redirection, keep alive and the
 * will. The client's limits it reads (Maximum Packet Size, Request Problem Information) are in the result even
 * when it refuses, since they shape the refusing CONNACK too [MQTT-3.1.2-24 (5.0)].
 */
export function checkConnect(
  packet: ConnectPacket,
  options: ResolvedOptions,
): ConnectTerms | ConnectRefusal {
  const v5 = packet.protocolVersion === 5;
  let assignClientId = false;
  if (packet.clientId === "") {
    // An empty id is allowed only for a clean session in 3.1.1 [MQTT-3.1.3-7 (3.1.1)] [MQTT-3.1.3-8 (3.1.1)],
    // and always in 5.0 [MQTT-3.1.3-6 (5.0)].
    if (packet.protocolVersion === 3 || (packet.protocolVersion === 4 && !packet.cleanStart)) {
      return refusal(REASON_CODE.ClientIdentifierNotValid, "empty client identifier without a clean session");
    }
    assignClientId = true;
  } else if (packet.protocolVersion === 3 && packet.clientId.length > 23) {
    return refusal(
      REASON_CODE.ClientIdentifierNotValid,
      "MQTT 3.1 client identifier longer than 23 characters",
    );
  }

  const redirect = options.redirect;
  if (redirect !== undefined) {
    // Server redirection (5.0 section 4.11): 0x9D Server moved (permanent) or 0x9C Use another server.
    return {
      kind: "refuse",
      reasonCode: redirect.permanent ? REASON_CODE.ServerMoved : REASON_CODE.UseAnotherServer,
      reason: `use ${redirect.reference}`,
      properties: { serverReference: redirect.reference },
    };
  }

  let keepAlive = packet.keepAlive;
  let serverKeepAlive: number | undefined;
  if (keepAlive > options.maxKeepAlive || (keepAlive === 0 && options.maxKeepAlive < 65535)) {
    if (!v5) {
      // 3.1.1 cannot tell the client another value, so refuse it as Mosquitto does (max_keepalive).
      return refusal(
        REASON_CODE.ClientIdentifierNotValid,
        `keep alive ${keepAlive} s is outside the broker's maximum ${options.maxKeepAlive} s`,
      );
    }
    // Server Keep Alive: the client must use the server's value [MQTT-3.2.2-21 (5.0)].
    keepAlive = serverKeepAlive = options.maxKeepAlive;
  }

  const will = packet.will;
  if (will !== undefined) {
    try {
      validateTopicName(will.topic, options.topicLimits);
    } catch (error) {
      return refusal(REASON_CODE.TopicNameInvalid, `will topic: ${(error as Error).message}`);
    }
    if (will.qos > options.maxQoS) {
      return refusal(
        REASON_CODE.QoSNotSupported,
        `will QoS ${will.qos} is above the maximum ${options.maxQoS}`,
      );
    }
    if (will.retain && !options.retainAvailable) {
      return refusal(REASON_CODE.RetainNotSupported, "retained will, but retain is not available");
    }
    if (v5 && will.properties?.payloadFormatIndicator === 1 && !isWellFormedUtf8(will.payload)) {
      return refusal(
        REASON_CODE.PayloadFormatInvalid,
        "will payload is not UTF-8 as its format indicator says",
      );
    }
    if (v5 && isWildcardFilter(will.properties?.responseTopic ?? "")) {
      return refusal(REASON_CODE.ProtocolError, "will Response Topic with a wildcard [MQTT-3.3.2-14 (5.0)]");
    }
  }

  const props = v5 ? packet.properties : undefined;
  return {
    kind: "accept",
    assignClientId,
    keepAlive,
    serverKeepAlive,
    maxPacketSize: clientMaxPacketSize(packet),
    sendWindow: v5 ? Math.min(props?.receiveMaximum ?? 65535, options.maxInflight) : options.maxInflight,
    topicAliasMaximum: v5 && options.topicAliasOut ? (props?.topicAliasMaximum ?? 0) : 0,
    problemInfo: props?.requestProblemInformation !== 0,
  };
}

/**
 * The client's Maximum Packet Size, 0 for none: it bounds every answer, a refusing CONNACK too
 * [MQTT-3.1.2-24 (5.0)]. Clamped to the largest packet MQTT can express: the same limit, and a small integer.
 */
export function clientMaxPacketSize(packet: ConnectPacket): number {
  if (packet.protocolVersion !== 5) return 0;
  return Math.min(packet.properties?.maximumPacketSize ?? 0, VARINT_MAX + 5);
}

function refusal(reasonCode: number, reason: string): ConnectRefusal {
  return { kind: "refuse", reasonCode, reason };
}

/** What {@linkcode negotiateConnack} needs. */
export interface ConnackInput {
  /** The CONNECT being accepted. */
  readonly packet: ConnectPacket;
  /** The broker's options. */
  readonly options: ResolvedOptions;
  /** The broker's CONNACK properties (its limits and capabilities), the same for every connection. */
  readonly brokerProperties: Properties;
  /** What {@linkcode checkConnect} settled. */
  readonly terms: ConnectTerms;
  /** The client identifier in force (the assigned one when `terms.assignClientId`). */
  readonly clientId: string;
  /** Authentication Method / Data the authenticator answers with, if any. */
  readonly authProperties: Properties | undefined;
}

/** The accepted CONNECT's negotiated values. */
export interface ConnackPlan {
  /** Discriminant. */
  readonly kind: "accept";
  /** The session expiry in force, in seconds ({@linkcode EXPIRY_NEVER} for a 3.1.1 persistent session). */
  readonly expiry: number;
  /**
   * The v5 CONNACK's properties; `undefined` for the broker's own (shared, encoded once: see
   * {@linkcode successConnack}) and always before 5.0.
   */
  readonly properties: Properties | undefined;
}

/** A CONNACK that cannot fit the client's Maximum Packet Size: close without one (as Mosquitto does). */
export interface ConnackImpossible {
  /** Discriminant. */
  readonly kind: "close";
  /** For the log. */
  readonly reason: string;
}

/**
 * Optional CONNACK properties, shed one at a time in this order while the CONNACK is larger than the client's
 * Maximum Packet Size: the explanations first, the Topic Alias Maximum last (absent means no aliases, which is
 * safe but slower). What remains changes what the client may do and is never shed.
 */
const SHEDDABLE = ["reasonString", "userProperties", "responseInformation", "topicAliasMaximum"] as const;

/**
 * Session expiry and the success CONNACK's properties for an accepted, authenticated CONNECT. The CONNACK too
 * must fit the client's Maximum Packet Size [MQTT-3.1.2-24 (5.0)]: optional properties are shed one at a time;
 * if even the rest is too large, the answer is to close without CONNACK.
 */
export function negotiateConnack(input: ConnackInput): ConnackPlan | ConnackImpossible {
  const { packet, options, terms, clientId } = input;
  const v5 = packet.protocolVersion === 5;
  const props = v5 ? packet.properties : undefined;
  let expiry = v5 ? (props?.sessionExpiryInterval ?? 0) : (packet.cleanStart ? 0 : EXPIRY_NEVER);
  let expiryChanged = false;
  if (expiry > options.maxSessionExpiry) {
    // The server's value replaces the client's and is announced [MQTT-3.2.2-22 (5.0)] (section 3.2.2.3.2).
    expiry = options.maxSessionExpiry;
    expiryChanged = true;
  }
  if (!v5) return { kind: "accept", expiry, properties: undefined };
  const broker = announcedProperties(input.brokerProperties);
  const responseInformation = props?.requestResponseInformation === 1
    ? options.responseInformation
    : undefined;
  let properties: Properties | undefined;
  if (
    terms.assignClientId || terms.serverKeepAlive !== undefined || expiryChanged ||
    responseInformation !== undefined || input.authProperties !== undefined
  ) {
    properties = {
      ...(terms.assignClientId ? { assignedClientIdentifier: clientId } : {}),
      ...(terms.serverKeepAlive === undefined ? {} : { serverKeepAlive: terms.serverKeepAlive }),
      ...(expiryChanged ? { sessionExpiryInterval: expiry } : {}),
      ...broker,
      ...(responseInformation === undefined ? {} : { responseInformation }),
      ...(input.authProperties ?? {}),
    };
  }
  const limit = terms.maxPacketSize;
  if (limit === 0 || connackSize(properties ?? broker) <= limit) {
    return { kind: "accept", expiry, properties };
  }
  const slim: { -readonly [K in keyof Properties]: Properties[K] } = { ...(properties ?? broker) };
  for (const name of SHEDDABLE) {
    if (slim[name] === undefined) continue;
    delete slim[name];
    if (connackSize(slim) <= limit) return { kind: "accept", expiry, properties: slim };
  }
  return {
    kind: "close",
    reason: `its Maximum Packet Size (${limit}) cannot hold a CONNACK (${connackSize(slim)} bytes at the ` +
      `least) [MQTT-3.1.2-24 (5.0)]`,
  };
}

/** Bytes of a v5 success CONNACK with `properties`. */
function connackSize(properties: Properties): number {
  return encodeConnack({ type: PACKET_TYPE.CONNACK, sessionPresent: false, reasonCode: 0, properties }, 5)
    .length;
}

/** The v5 CONNACK properties announcing a broker's limits, the same for every connection (5.0 section 3.2.2.3). */
export function brokerConnackProperties(o: ResolvedOptions): Properties {
  return {
    receiveMaximum: o.receiveMaximum,
    maximumPacketSize: o.maxPacketSize,
    topicAliasMaximum: o.topicAliasMaximum,
    ...(o.maxQoS < 2 ? { maximumQoS: o.maxQoS } : {}),
    retainAvailable: o.retainAvailable ? 1 : 0,
    wildcardSubscriptionAvailable: o.wildcardSubscriptionsAvailable ? 1 : 0,
    subscriptionIdentifiersAvailable: o.subscriptionIdentifiersAvailable ? 1 : 0,
    sharedSubscriptionAvailable: o.sharedSubscriptionsAvailable ? 1 : 0,
  };
}

const ANNOUNCED = new WeakMap<Properties, Properties>();

/**
 * The broker's CONNACK properties without the capabilities that say what their absence says anyway (Retain,
 * Wildcard, Subscription Identifiers and Shared Subscriptions Available = 1; 5.0 section 3.2.2.3): 8 bytes
 * fewer per CONNACK. Computed once per broker.
 */
export function announcedProperties(properties: Properties): Properties {
  let announced = ANNOUNCED.get(properties);
  if (announced === undefined) {
    const slim: { -readonly [K in keyof Properties]: Properties[K] } = { ...properties };
    if (slim.retainAvailable === 1) delete slim.retainAvailable;
    if (slim.wildcardSubscriptionAvailable === 1) delete slim.wildcardSubscriptionAvailable;
    if (slim.subscriptionIdentifiersAvailable === 1) delete slim.subscriptionIdentifiersAvailable;
    if (slim.sharedSubscriptionAvailable === 1) delete slim.sharedSubscriptionAvailable;
    announced = slim;
    ANNOUNCED.set(properties, announced);
  }
  return announced;
}

// Success CONNACKs are the same bytes for most clients: encoded once, shared (Output never writes into them).
// 3.1 has no Session Present: that byte is reserved [MQTT 3.1 section 3.2], so 3.1 always gets `20 02 00 00`.
const CONNACK_V3 = encodeConnack({ type: PACKET_TYPE.CONNACK, sessionPresent: false, reasonCode: 0 }, 4);
const CONNACK_V4_PRESENT = encodeConnack(
  { type: PACKET_TYPE.CONNACK, sessionPresent: true, reasonCode: 0 },
  4,
);
const SHARED_CONNACKS = new WeakMap<Properties, readonly [Uint8Array, Uint8Array]>();

/**
 * The success CONNACK's bytes for `plan` (its properties, or for `undefined` the broker's own, encoded once per
 * broker). The caller must not change them.
 */
export function successConnack(
  version: ProtocolVersion,
  properties: Properties | undefined,
  brokerProperties: Properties,
  sessionPresent: boolean,
): Uint8Array {
  if (version !== 5) return sessionPresent && version === 4 ? CONNACK_V4_PRESENT : CONNACK_V3;
  if (properties !== undefined) {
    return encodeConnack({ type: PACKET_TYPE.CONNACK, sessionPresent, reasonCode: 0, properties }, 5);
  }
  let pair = SHARED_CONNACKS.get(brokerProperties);
  if (pair === undefined) {
    const announced = announcedProperties(brokerProperties);
    const encode = (present: boolean) =>
      encodeConnack(
        { type: PACKET_TYPE.CONNACK, sessionPresent: present, reasonCode: 0, properties: announced },
        5,
      );
    pair = [encode(false), encode(true)];
    SHARED_CONNACKS.set(brokerProperties, pair);
  }
  return pair[sessionPresent ? 1 : 0];
}

/**
 * The refusing CONNACK for `reasonCode`, or `undefined` when 3.1/3.1.1 has no return code for it: then the
 * connection closes without CONNACK [MQTT-3.2.2-6 (3.1.1)]. The Reason String is left out when the client
 * asked for no problem information, or when it would not fit the client's Maximum Packet Size
 * [MQTT-3.2.2-19 (5.0)].
 */
export function refusalConnack(
  version: ProtocolVersion,
  refusal: ConnectRefusal,
  problemInfo: boolean,
  maxPacketSize: number,
): Uint8Array | undefined {
  if (version !== 5) {
    const code = connackCodeV3(refusal.reasonCode);
    if (code === undefined) return undefined;
    return encodeConnack({ type: PACKET_TYPE.CONNACK, sessionPresent: false, reasonCode: code }, version);
  }
  const encode = (properties: Properties | undefined) =>
    encodeConnack(
      {
        type: PACKET_TYPE.CONNACK,
        sessionPresent: false,
        reasonCode: refusal.reasonCode,
        ...(properties === undefined ? {} : { properties }),
      },
      5,
    );
  const bytes = encode({ ...refusal.properties, ...(problemInfo ? { reasonString: refusal.reason } : {}) });
  return maxPacketSize !== 0 && bytes.length > maxPacketSize ? encode(refusal.properties) : bytes;
}
