/**
 * Enhanced authentication (5.0 section 4.12): the conversation a CONNECT with an Authentication Method starts,
 * its AUTH steps, and re-authentication after CONNACK with the same method.
 *
 * @module
 */

import type { AuthPacket } from "../../packet/auth.ts";
import type { ConnectPacket } from "../../packet/connect.ts";
import { protocolError } from "../../mqtt_error.ts";
import { REASON_CODE } from "../../packet/reason_code.ts";
import type { AuthOutcome } from "../core.ts";
import type { AuthConversation, AuthStepResult, ClientIdentity, EnhancedAuthMethod } from "./auth.ts";

/** The side of a connection a conversation needs: who it is. */
export interface AuthParty {
  readonly clientId: string;
  readonly identity: ClientIdentity;
}

/** The conversations in progress, one per connection, forgotten with the connection. */
export class AuthConversations {
  readonly #methods: Map<string, EnhancedAuthMethod>;
  readonly #conversations = new WeakMap<AuthParty, { method: string; conversation: AuthConversation }>();

  /** `methods` are the enhanced authentication methods the broker offers. */
  constructor(methods: readonly EnhancedAuthMethod[]) {
    this.#methods = new Map(methods.map((m) => [m.name, m]));
  }

  /** Starts the enhanced authentication `method` asked for in CONNECT (section 4.12). */
  async begin(party: AuthParty, packet: ConnectPacket, method: string): Promise<AuthOutcome> {
    const handler = this.#methods.get(method);
    if (handler === undefined) {
      return {
        reasonCode: REASON_CODE.BadAuthenticationMethod,
        reason: `authentication method ${method} is not supported`,
      };
    }
    const conversation = handler.begin({
      clientId: party.clientId,
      ...(packet.username === undefined ? {} : { username: packet.username }),
    });
    this.#conversations.set(party, { method, conversation });
    return authStep(method, await conversation.step(packet.properties?.authenticationData));
  }

  /** Takes the next step of the conversation `party` started with CONNECT (section 4.12). */
  async continue(party: AuthParty, packet: AuthPacket): Promise<AuthOutcome> {
    const current = this.#conversations.get(party);
    if (current === undefined) {
      throw protocolError("AUTH without an authentication in progress (section 4.12)");
    }
    if (packet.properties?.authenticationMethod !== current.method) {
      throw protocolError("AUTH with another Authentication Method than CONNECT's [MQTT-4.12.0-5 (5.0)]");
    }
    return authStep(current.method, await current.conversation.step(packet.properties?.authenticationData));
  }

  /** Re-authentication after CONNACK, with the method CONNECT used (section 4.12.1). */
  async reauthenticate(party: AuthParty, packet: AuthPacket): Promise<AuthOutcome> {
    const current = this.#conversations.get(party);
    const method = packet.properties?.authenticationMethod;
    if (current === undefined || method !== current.method) {
      throw protocolError(
        "Re-authentication must use the Authentication Method of CONNECT [MQTT-4.12.1-1 (5.0)]",
      );
    }
    if (packet.reasonCode === REASON_CODE.ReAuthenticate) {
      const handler = this.#methods.get(method)!;
      current.conversation = handler.begin({
        clientId: party.clientId,
        ...(party.identity.username === undefined ? {} : { username: party.identity.username }),
      });
    } else if (packet.reasonCode !== REASON_CODE.ContinueAuthentication) {
      throw protocolError("AUTH with reason Success from a client (section 3.15.2.1)");
    }
    return authStep(method, await current.conversation.step(packet.properties?.authenticationData));
  }
}

/** Turns a method's step into what the connection sends: AUTH to continue, CONNACK (or AUTH) at the end. */
function authStep(method: string, result: AuthStepResult): AuthOutcome {
  switch (result.kind) {
    case "continue":
      return { challenge: { authenticationMethod: method, authenticationData: result.data } };
    case "success":
      return {
        reasonCode: REASON_CODE.Success,
        ...(result.username === undefined ? {} : { username: result.username }),
        properties: {
          authenticationMethod: method,
          ...(result.data === undefined ? {} : { authenticationData: result.data }),
        },
      };
    case "failure":
      return {
        reasonCode: result.reasonCode ?? REASON_CODE.NotAuthorized,
        reason: result.reason ?? "authentication failed",
      };
  }
}
