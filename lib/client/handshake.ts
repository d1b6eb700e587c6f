/**
 * The client's side of connecting (sections 3.1, 3.2 and 4.12): the CONNECT it sends, what a refusing CONNACK
 * means, and the answer to an AUTH challenge of enhanced authentication.
 *
 * @module
 */

import { utf8Encode } from "../codec/utf8.ts";
import { MqttError, protocolError } from "../mqtt_error.ts";
import type { AuthPacket } from "../packet/auth.ts";
import type { ConnackPacket } from "../packet/connack.ts";
import type { ConnectPacket, WillMessage } from "../packet/connect.ts";
import { PACKET_TYPE, type ProtocolVersion } from "../packet/packet_type.ts";
import type { Properties } from "../packet/properties.ts";
import { connackReasonFromV3, REASON_CODE, reasonName } from "../packet/reason_code.ts";
import type { ClientAuthExchange } from "./enhanced_auth.ts";
import { CLIENT_DEFAULTS, type MqttClientOptions } from "./options.ts";
import { isPermanentRefusal, markFinal } from "./reconnect.ts";

/**
 * The CONNECT for one attempt. `first` is the first connect of the client; `auth` the enhanced-authentication
 * exchange of this attempt, if any.
 */
export function connectPacket(
  options: MqttClientOptions,
  version: ProtocolVersion,
  clientId: string,
  first: boolean,
  auth: ClientAuthExchange | undefined,
): ConnectPacket {
  const v5 = version === 5;
  const cleanStart = options.cleanStart ?? true;
  const password = options.password;
  let will: WillMessage | undefined;
  if (options.will !== undefined) {
    const w = options.will;
    will = {
      topic: w.topic,
      payload: typeof w.payload === "string" ? utf8Encode(w.payload) : w.payload ?? new Uint8Array(0),
      qos: w.qos ?? 0,
      retain: w.retain ?? false,
      ...(v5 && w.properties !== undefined ? { properties: w.properties } : {}),
    };
  }
  const properties: Properties | undefined = auth === undefined ? options.properties : {
    ...options.properties,
    authenticationMethod: auth.method,
    ...(auth.data === undefined ? {} : { authenticationData: auth.data }),
  };
  return {
    type: PACKET_TYPE.CONNECT,
    protocolVersion: version,
    clientId,
    // A v5 reconnect resumes the session this client started; a v3 one keeps the flag, since Clean Session 0
    // would leave a session behind that never expires.
    cleanStart: first || !v5 ? cleanStart : false,
    keepAlive: options.keepAlive ?? CLIENT_DEFAULTS.keepAlive,
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(password === undefined
      ? {}
      : { password: typeof password === "string" ? utf8Encode(password) : password }),
    ...(will === undefined ? {} : { will }),
    ...(v5 && properties !== undefined ? { properties } : {}),
  };
}

/** The error for a refusing CONNACK, with v3 return codes mapped to v5 reason codes; permanent ones are final. */
export function connackError(packet: ConnackPacket, version: ProtocolVersion): MqttError {
  let error: MqttError;
  if (version === 5) {
    const reason = packet.properties?.reasonString;
    error = new MqttError(
      packet.reasonCode,
      `Connection refused: ${reasonName(packet.reasonCode)} (0x${
        packet.reasonCode.toString(16).padStart(2, "0")
      })${reason === undefined ? "" : `: ${reason}`}`,
    );
  } else {
    const { reasonCode, text } = connackReasonFromV3(packet.reasonCode) ??
      { reasonCode: REASON_CODE.UnspecifiedError, text: "unknown reason" };
    error = new MqttError(reasonCode, `Connection refused: ${text} (return code ${packet.reasonCode})`);
  }
  return isPermanentRefusal(error.reasonCode) ? markFinal(error) : error;
}

/**
 * Answers the server's AUTH challenge during CONNECT (section 4.12): resolves with the AUTH to send back. Throws a
 * Protocol Error for an AUTH the exchange did not ask for; rejects with a final Not authorized error when the
 * method cannot answer.
 */
export function answerChallenge(
  auth: ClientAuthExchange | undefined,
  packet: AuthPacket,
): Promise<AuthPacket> {
  if (auth === undefined) {
    throw protocolError(
      "The server sent AUTH, but the client asked for no enhanced authentication [MQTT-4.12.0-6 (5.0)]",
    );
  }
  const method = packet.properties?.authenticationMethod;
  if (packet.reasonCode !== REASON_CODE.ContinueAuthentication || method !== auth.method) {
    throw protocolError(
      `Expected AUTH Continue authentication for ${auth.method}, received ${
        reasonName(packet.reasonCode)
      } for ${method ?? "no method"} [MQTT-4.12.0-5 (5.0)]`,
    );
  }
  return auth.continue(packet.properties?.authenticationData).then((data): AuthPacket => ({
    type: PACKET_TYPE.AUTH,
    reasonCode: REASON_CODE.ContinueAuthentication,
    properties: {
      authenticationMethod: auth.method,
      ...(data === undefined ? {} : { authenticationData: data }),
    },
  }), (error) => {
    throw markFinal(
      new MqttError(
        REASON_CODE.NotAuthorized,
        `${auth.method} authentication failed: ${error instanceof Error ? error.message : error}`,
      ),
    );
  });
}

/**
 * Checks the server's proof in a successful CONNACK, when the method has one: resolves, or rejects with a final
 * Not authorized error when the server failed to prove itself.
 */
export async function verifyServer(
  auth: ClientAuthExchange | undefined,
  connack: ConnackPacket,
): Promise<void> {
  const verify = auth?.verify;
  if (verify === undefined) return;
  if (!await verify.call(auth, connack.properties?.authenticationData)) {
    throw markFinal(
      new MqttError(
        REASON_CODE.NotAuthorized,
        `The server failed to prove itself in ${auth!.method} authentication`,
      ),
    );
  }
}
