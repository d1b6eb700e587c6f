/**
 * MQTT 5.0 reason codes (5.0 section 2.4) and the MQTT 3.1/3.1.1 CONNACK return codes.
 *
 * @module
 */

/** Every MQTT 5.0 reason code by name. */
export const REASON_CODE = {
  Success: 0x00,
  NormalDisconnection: 0x00,
  GrantedQoS0: 0x00,
  GrantedQoS1: 0x01,
  GrantedQoS2: 0x02,
  DisconnectWithWillMessage: 0x04,
  NoMatchingSubscribers: 0x10,
  NoSubscriptionExisted: 0x11,
  ContinueAuthentication: 0x18,
  ReAuthenticate: 0x19,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  ServerUnavailable: 0x88,
  ServerBusy: 0x89,
  Banned: 0x8a,
  ServerShuttingDown: 0x8b,
  BadAuthenticationMethod: 0x8c,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicFilterInvalid: 0x8f,
  TopicNameInvalid: 0x90,
  PacketIdentifierInUse: 0x91,
  PacketIdentifierNotFound: 0x92,
  ReceiveMaximumExceeded: 0x93,
  TopicAliasInvalid: 0x94,
  PacketTooLarge: 0x95,
  MessageRateTooHigh: 0x96,
  QuotaExceeded: 0x97,
  AdministrativeAction: 0x98,
  PayloadFormatInvalid: 0x99,
  RetainNotSupported: 0x9a,
  QoSNotSupported: 0x9b,
  UseAnotherServer: 0x9c,
  ServerMoved: 0x9d,
  SharedSubscriptionsNotSupported: 0x9e,
  ConnectionRateExceeded: 0x9f,
  MaximumConnectTime: 0xa0,
  SubscriptionIdentifiersNotSupported: 0xa1,
  WildcardSubscriptionsNotSupported: 0xa2,
} as const;

/** A reason code value. */
export type ReasonCode = (typeof REASON_CODE)[keyof typeof REASON_CODE];

/** MQTT 3.1 / 3.1.1 CONNACK return codes (3.1.1 section 3.2.2.3). */
export const CONNACK_RETURN_CODE_V3 = {
  Accepted: 0x00,
  UnacceptableProtocolVersion: 0x01,
  IdentifierRejected: 0x02,
  ServerUnavailable: 0x03,
  BadUserNameOrPassword: 0x04,
  NotAuthorized: 0x05,
} as const;

/** A v3 CONNACK return code value. */
export type ConnackReturnCodeV3 = (typeof CONNACK_RETURN_CODE_V3)[keyof typeof CONNACK_RETURN_CODE_V3];

const NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(REASON_CODE).reverse().map(([name, code]) => [code, name]),
);

/** The name of a v5 reason code, e.g. `reasonName(0x87)` is `"NotAuthorized"`. */
export function reasonName(code: number): string {
  return NAMES.get(code) ?? `0x${code.toString(16).padStart(2, "0")}`;
}

/**
 * The one map between MQTT 5.0 reason codes and the MQTT 3.1/3.1.1 CONNACK and SUBACK return codes: every v3
 * CONNACK return code with the v5 reason it stands for and the words the 3.1.1 table gives it.
 */
const CONNACK_V3: readonly {
  readonly v3: ConnackReturnCodeV3;
  readonly v5: number;
  readonly text: string;
}[] = [
  { v3: CONNACK_RETURN_CODE_V3.Accepted, v5: REASON_CODE.Success, text: "connection accepted" },
  {
    v3: CONNACK_RETURN_CODE_V3.UnacceptableProtocolVersion,
    v5: REASON_CODE.UnsupportedProtocolVersion,
    text: "unacceptable protocol version",
  },
  {
    v3: CONNACK_RETURN_CODE_V3.IdentifierRejected,
    v5: REASON_CODE.ClientIdentifierNotValid,
    text: "identifier rejected",
  },
  {
    v3: CONNACK_RETURN_CODE_V3.ServerUnavailable,
    v5: REASON_CODE.ServerUnavailable,
    text: "server unavailable",
  },
  {
    v3: CONNACK_RETURN_CODE_V3.BadUserNameOrPassword,
    v5: REASON_CODE.BadUserNameOrPassword,
    text: "bad user name or password",
  },
  { v3: CONNACK_RETURN_CODE_V3.NotAuthorized, v5: REASON_CODE.NotAuthorized, text: "not authorized" },
];

/** v5 refusals with no v3 return code of their own that still map to a near one. */
const CONNACK_V3_ALIASES: ReadonlyMap<number, ConnackReturnCodeV3> = new Map([
  [REASON_CODE.BadAuthenticationMethod, CONNACK_RETURN_CODE_V3.BadUserNameOrPassword],
  [REASON_CODE.Banned, CONNACK_RETURN_CODE_V3.NotAuthorized],
]);

/**
 * Refusals that 3.1/3.1.1 cannot express because the CONNECT itself broke the rules: the server closes without
 * a CONNACK [MQTT-3.2.2-6 (3.1.1)].
 */
const CONNACK_V3_NONE: ReadonlySet<number> = new Set([
  REASON_CODE.MalformedPacket,
  REASON_CODE.ProtocolError,
  REASON_CODE.TopicNameInvalid,
  REASON_CODE.PacketTooLarge,
  REASON_CODE.PayloadFormatInvalid,
  REASON_CODE.RetainNotSupported,
  REASON_CODE.QoSNotSupported,
]);

/**
 * Maps a v5 CONNACK reason code to the closest v3.1.1 return code (MQTT 5.0 has more reasons than 3.1.1 can
 * express; the rest become "server unavailable"). `undefined` for a refusal 3.1.1 answers by closing without
 * CONNACK (a malformed or rule-breaking CONNECT).
 */
export function connackCodeV3(reasonCode: number): ConnackReturnCodeV3 | undefined {
  if (CONNACK_V3_NONE.has(reasonCode)) return undefined;
  const alias = CONNACK_V3_ALIASES.get(reasonCode);
  if (alias !== undefined) return alias;
  return CONNACK_V3.find((entry) => entry.v5 === reasonCode)?.v3 ?? CONNACK_RETURN_CODE_V3.ServerUnavailable;
}

/**
 * What a v3 CONNACK return code means: the v5 reason code it stands for and the 3.1.1 table's words, or
 * `undefined` for a code the table does not have (6-255 are reserved).
 */
export function connackReasonFromV3(
  returnCode: number,
): { readonly reasonCode: number; readonly text: string } | undefined {
  const entry = CONNACK_V3.find((e) => e.v3 === returnCode);
  return entry === undefined ? undefined : { reasonCode: entry.v5, text: entry.text };
}

/** The v3.1.1 SUBACK return code for a v5 SUBACK reason code: granted QoS as is, any failure 0x80. */
export function subackCodeV3(reasonCode: number): number {
  return reasonCode < 0x80 ? reasonCode : 0x80;
}

const set = (...codes: number[]): ReadonlySet<number> => new Set(codes);

/** The v5 reason codes each packet may carry (5.0 section 2.4 and each packet's reason code table). */
export const VALID_REASON_CODES: Readonly<Record<number, ReadonlySet<number>>> = {
  2: set(
    0x00,
    0x80,
    0x81,
    0x82,
    0x83,
    0x84,
    0x85,
    0x86,
    0x87,
    0x88,
    0x89,
    0x8a,
    0x8c,
    0x90,
    0x95,
    0x97,
    0x99,
    0x9a,
    0x9b,
    0x9c,
    0x9d,
    0x9f,
  ),
  4: set(0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99),
  5: set(0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99),
  6: set(0x00, 0x92),
  7: set(0x00, 0x92),
  9: set(0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2),
  11: set(0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91),
  14: set(
    0x00,
    0x04,
    0x80,
    0x81,
    0x82,
    0x83,
    0x87,
    0x89,
    0x8b,
    0x8c,
    0x8d,
    0x8e,
    0x8f,
    0x90,
    0x93,
    0x94,
    0x95,
    0x96,
    0x97,
    0x98,
    0x99,
    0x9a,
    0x9b,
    0x9c,
    0x9d,
    0x9e,
    0x9f,
    0xa0,
    0xa1,
    0xa2,
  ),
  15: set(0x00, 0x18, 0x19),
};
