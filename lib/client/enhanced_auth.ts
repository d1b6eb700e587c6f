/**
 * MQTT 5.0 enhanced authentication (section 4.12) on the client side: a challenge/response exchange of AUTH
 * packets during CONNECT, named by an Authentication Method.
 *
 * @module
 */

import { SCRAM_SHA_256, scramClient } from "../auth/scram.ts";

/**
 * One enhanced authentication exchange. The client starts a new one for every connect attempt (a nonce must
 * not be reused).
 */
export interface ClientAuthExchange {
  /** The Authentication Method, e.g. `"SCRAM-SHA-256"`. */
  readonly method: string;
  /** The Authentication Data sent in CONNECT. */
  readonly data?: Uint8Array;
  /** Answers the server's AUTH (Continue authentication, 0x18) with the next Authentication Data. */
  continue(data: Uint8Array | undefined): Promise<Uint8Array | undefined>;
  /** Checks the Authentication Data of a successful CONNACK; false means the server is not who it claims. */
  verify?(data: Uint8Array | undefined): Promise<boolean>;
}

/** Starts an exchange; called once per connect attempt. */
export type EnhancedAuth = () => ClientAuthExchange | Promise<ClientAuthExchange>;

/**
 * SCRAM-SHA-256 (RFC 7677) as an MQTT enhanced authentication method: the password never crosses the wire and
 * the server proves it knows the credential too.
 *
 * @example
 * ```ts ignore
 * import { MqttClient } from "./client.ts";
 * import { scramSha256 } from "./enhanced_auth.ts";
 * const client = new MqttClient({ enhancedAuth: scramSha256("alice", "secret") });
 * ```
 */
export function scramSha256(username: string, password: string): EnhancedAuth {
  return () => {
    const scram = scramClient(username, password);
    return {
      method: SCRAM_SHA_256,
      data: scram.first,
      continue: (data) => scram.final(data ?? new Uint8Array(0)),
      verify: (data) => data === undefined ? Promise.resolve(false) : scram.verify(data),
    };
  };
}
