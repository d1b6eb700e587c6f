/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as an MQTT 5.0 enhanced authentication method (section 4.12): CONNECT
 * carries client-first, AUTH 0x18 server-first, AUTH 0x18 client-final, CONNACK server-final. The broker never
 * sees the password, only a salted key.
 *
 * @module
 */

import type { AuthConversation, AuthStepResult, EnhancedAuthMethod } from "./auth/auth.ts";
import { REASON_CODE } from "../packet/reason_code.ts";

/** The Authentication Method name. */
export const SCRAM_SHA_256 = "SCRAM-SHA-256";

/** What the server stores for one user (RFC 5802 section 3). */
export interface ScramCredential {
  /** The user's random salt, sent to the client in server-first. */
  readonly salt: Uint8Array;
  /** PBKDF2 iteration count used to derive the salted password. */
  readonly iterations: number;
  /** `H(ClientKey)`: verifies the client's proof without knowing the password. */
  readonly storedKey: Uint8Array;
  /** `HMAC(SaltedPassword, "Server Key")`: signs server-final so the client can verify the server. */
  readonly serverKey: Uint8Array;
}

/** Looks up a user's SCRAM credential. */
export type ScramLookup = (
  username: string,
) => Promise<ScramCredential | undefined> | ScramCredential | undefined;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function hmac(key: Uint8Array, data: Uint8Array | string): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as BufferSource,
    { name: "HMAC", hash: "SHA-256" },
    false,
    [
      "sign",
    ],
  );
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, bytes as BufferSource));
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data as BufferSource));
}

/** PBKDF2-HMAC-SHA-256 of `password` (RFC 5802 Hi()). */
export async function saltedPassword(
  password: string,
  salt: Uint8Array,
  iterations: number,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: salt as BufferSource, iterations },
    key,
    256,
  );
  return new Uint8Array(bits);
}

/** Derives the credential the server stores from a password (e.g. when loading a user list). */
export async function scramCredential(
  password: string,
  iterations = 4096,
  salt?: Uint8Array,
): Promise<ScramCredential> {
  const s = salt ?? crypto.getRandomValues(new Uint8Array(16));
  const salted = await saltedPassword(password, s, iterations);
  const clientKey = await hmac(salted, "Client Key");
  return {
    salt: s,
    iterations,
    storedKey: await sha256(clientKey),
    serverKey: await hmac(salted, "Server Key"),
  };
}

function base64(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}

function unbase64(text: string): Uint8Array {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

function attributes(message: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const part of message.split(",")) {
    const eq = part.indexOf("=");
    if (eq === 1) map.set(part[0]!, part.slice(2));
  }
  return map;
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** RFC 5802 saslname: "=" and "," are escaped as "=3D" and "=2C". */
function unescapeName(name: string): string {
  return name.replaceAll("=2C", ",").replaceAll("=3D", "=");
}

/**
 * The server side: an {@linkcode EnhancedAuthMethod} for the broker's `authMethods` option.
 *
 * @example
 * ```ts ignore
 * import { Broker } from "../mod.ts";
 * import { ScramSha256, scramCredential } from "./scram.ts";
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
          const attrs = attributes(clientFirstBare);
          const user = attrs.get("n");
          const clientNonce = attrs.get("r");
          if (user === undefined || clientNonce === undefined || clientNonce === "") {
            return fail("SCRAM: malformed client-first message");
          }
          username = unescapeName(user);
          credential = await lookup(username);
          // An unknown user still gets a challenge (with a made-up salt) so a probe cannot tell users apart.
          const salt = credential?.salt ?? await sha256(encoder.encode(`unknown:${username}`));
          const iterations = credential?.iterations ?? 4096;
          nonce = clientNonce + base64(crypto.getRandomValues(new Uint8Array(18)));
          serverFirst = `r=${nonce},s=${base64(salt.subarray(0, 16))},i=${iterations}`;
          stage = "client-final";
          return { kind: "continue", data: encoder.encode(serverFirst) };
        }
        if (stage !== "client-final") return fail("SCRAM: unexpected message");
        stage = "done";
        const attrs = attributes(text);
        const proof = attrs.get("p");
        if (attrs.get("r") !== nonce || attrs.get("c") !== "biws" || proof === undefined) {
          return fail("SCRAM: malformed client-final message");
        }
        if (credential === undefined) return fail("SCRAM: authentication failed");
        const withoutProof = text.slice(0, text.lastIndexOf(",p="));
        const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
        const clientSignature = await hmac(credential.storedKey, authMessage);
        let clientKey: Uint8Array;
        try {
          clientKey = xor(unbase64(proof), clientSignature);
        } catch {
          return fail("SCRAM: malformed proof");
        }
        if (!constantTimeEqual(await sha256(clientKey), credential.storedKey)) {
          return fail("SCRAM: authentication failed");
        }
        const serverSignature = await hmac(credential.serverKey, authMessage);
        return { kind: "success", username, data: encoder.encode(`v=${base64(serverSignature)}`) };
      },
    };
  }
}

/** The client side of SCRAM-SHA-256, for the client library and tests. */
export interface ScramClient {
  /** client-first message, the Authentication Data of CONNECT. */
  readonly first: Uint8Array;
  /** Answers server-first (AUTH 0x18) with client-final. */
  final(serverFirst: Uint8Array): Promise<Uint8Array>;
  /** Checks server-final (CONNACK's Authentication Data); false if the server is not who it claims. */
  verify(serverFinal: Uint8Array): Promise<boolean>;
}

/** Starts a client-side SCRAM-SHA-256 exchange. */
export function scramClient(username: string, password: string): ScramClient {
  const clientNonce = base64(crypto.getRandomValues(new Uint8Array(18)));
  const bare = `n=${username.replaceAll("=", "=3D").replaceAll(",", "=2C")},r=${clientNonce}`;
  let serverSignature: Uint8Array | undefined;
  return {
    first: encoder.encode(`n,,${bare}`),
    async final(serverFirstBytes: Uint8Array): Promise<Uint8Array> {
      const serverFirst = decoder.decode(serverFirstBytes);
      const attrs = attributes(serverFirst);
      const nonce = attrs.get("r") ?? "";
      if (!nonce.startsWith(clientNonce)) throw new Error("SCRAM: server nonce does not extend ours");
      const salt = unbase64(attrs.get("s") ?? "");
      const iterations = Number(attrs.get("i"));
      const salted = await saltedPassword(password, salt, iterations);
      const clientKey = await hmac(salted, "Client Key");
      const storedKey = await sha256(clientKey);
      const withoutProof = `c=biws,r=${nonce}`;
      const authMessage = `${bare},${serverFirst},${withoutProof}`;
      const proof = xor(clientKey, await hmac(storedKey, authMessage));
      serverSignature = await hmac(await hmac(salted, "Server Key"), authMessage);
      return encoder.encode(`${withoutProof},p=${base64(proof)}`);
    },
    verify(serverFinal: Uint8Array): Promise<boolean> {
      const v = attributes(decoder.decode(serverFinal)).get("v");
      return Promise.resolve(
        serverSignature !== undefined && v !== undefined && constantTimeEqual(unbase64(v), serverSignature),
      );
    },
  };
}
