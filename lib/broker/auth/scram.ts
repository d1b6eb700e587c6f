/**
 * The broker's SCRAM-SHA-256 enhanced authentication method (MQTT 5.0 section 4.12, RFC 7677): the server's side
 * of the exchange, built on the primitives client and broker share in `lib/auth/scram.ts`.
 *
 * @module
 */

import type { AuthConversation, AuthStepResult, EnhancedAuthMethod } from "./auth.ts";
import { REASON_CODE } from "../../packet/reason_code.ts";
import {
  hmacSha256,
  SCRAM_SHA_256,
  scramAttributes,
  type ScramCredential,
  scramNonce,
  sha256,
  toBase64,
  unescapeSaslName,
  verifyClientProof,
} from "../../auth/scram.ts";

/** Looks up a user's SCRAM credential. */
export type ScramLookup = (
  username: string,
) => Promise<ScramCredential | undefined> | ScramCredential | undefined;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The server side: an {@linkcode EnhancedAuthMethod} for the broker's `authMethods` option.
 *
 * @example
 * ```ts ignore
 * import { Broker } from "../../mod.ts";
 * import { scramCredential } from "../../auth/scram.ts";
 * import { ScramSha256 } from "./scram.ts";
 * const users = new Map([["alice", await scramCredential("secret")]]);
 * const broker = new Broker({ authMethods: [new ScramSha256((u) => users.get(u))] });
 * ```
 */
export class ScramSha256 implements EnhancedAuthMethod {
  readonly name: typeof SCRAM_SHA_256 = SCRAM_SHA_256;
  readonly #lookup: ScramLookup;

  /** `lookup` finds a user's credential; an unknown user fails the exchange as a wrong password would. */
  constructor(lookup: ScramLookup) {
    this.#lookup = lookup;
  }

  begin(): AuthConversation {
    const lookup = this.#lookup;
    let stage: "client-first" | "client-final" | "done" = "client-first";
    let username = "";
    let clientFirstBare = "";
    let serverFirst = "";
    let nonce = "";
    let credential: ScramCredential | undefined;
    const fail = (reason: string): AuthStepResult => {
      stage = "done";
      return { kind: "failure", reasonCode: REASON_CODE.NotAuthorized, reason };
    };
    return {
      async step(data: Uint8Array | undefined): Promise<AuthStepResult> {
        if (data === undefined) return fail("SCRAM: Authentication Data is missing");
        const text = decoder.decode(data);
        if (stage === "client-first") {
          // gs2-header "n,," (no channel binding), then n=user,r=nonce
          if (!text.startsWith("n,,")) return fail("SCRAM: channel binding is not supported");
          clientFirstBare = text.slice(3);
          const attrs = scramAttributes(clientFirstBare);
          const user = attrs.get("n");
          const clientNonce = attrs.get("r");
          if (user === undefined || clientNonce === undefined || clientNonce === "") {
            return fail("SCRAM: malformed client-first message");
          }
          username = unescapeSaslName(user);
          credential = await lookup(username);
          // An unknown user still gets a challenge (with a made-up salt) so a probe cannot tell users apart.
          const salt = credential?.salt ?? await sha256(encoder.encode(`unknown:${username}`));
          const iterations = credential?.iterations ?? 4096;
          nonce = clientNonce + scramNonce();
          serverFirst = `r=${nonce},s=${toBase64(salt.subarray(0, 16))},i=${iterations}`;
          stage = "client-final";
          return { kind: "continue", data: encoder.encode(serverFirst) };
        }
        if (stage !== "client-final") return fail("SCRAM: unexpected message");
        stage = "done";
        const attrs = scramAttributes(text);
        const proof = attrs.get("p");
        if (attrs.get("r") !== nonce || attrs.get("c") !== "biws" || proof === undefined) {
          return fail("SCRAM: malformed client-final message");
        }
        if (credential === undefined) return fail("SCRAM: authentication failed");
        const withoutProof = text.slice(0, text.lastIndexOf(",p="));
        const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
        if (!await verifyClientProof(credential, authMessage, proof)) {
          return fail("SCRAM: authentication failed");
        }
        const serverSignature = await hmacSha256(credential.serverKey, authMessage);
        return { kind: "success", username, data: encoder.encode(`v=${toBase64(serverSignature)}`) };
      },
    };
  }
}
