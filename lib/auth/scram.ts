/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) primitives shared by the client and the broker: credential derivation, the
 * client's side of the exchange and the few message helpers the server's side needs. In MQTT 5.0 enhanced
 * authentication (section 4.12) CONNECT carries client-first, AUTH 0x18 server-first, AUTH 0x18 client-final and
 * CONNACK server-final; the server never sees the password, only a salted key.
 *
 * @module
 */

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

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** HMAC-SHA-256 of `data` (a string is hashed as UTF-8) under `key`. */
export async function hmacSha256(key: Uint8Array, data: Uint8Array | string): Promise<Uint8Array> {
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

/** SHA-256 of `data`. */
export async function sha256(data: Uint8Array): Promise<Uint8Array> {
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
  const clientKey = await hmacSha256(salted, "Client Key");
  return {
    salt: s,
    iterations,
    storedKey: await sha256(clientKey),
    serverKey: await hmacSha256(salted, "Server Key"),
  };
}

/** Standard base64, as SCRAM messages carry binary values. */
export function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}

/** Decodes standard base64; throws on malformed input. */
export function fromBase64(text: string): Uint8Array {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

/** A fresh random nonce, printable as SCRAM requires. */
export function scramNonce(): string {
  return toBase64(crypto.getRandomValues(new Uint8Array(18)));
}

/** The `k=value` attributes of a SCRAM message, by their one-letter key. */
export function scramAttributes(message: Uint8Array | string): Map<string, string> {
  const text = typeof message === "string" ? message : decoder.decode(message);
  const map = new Map<string, string>();
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    if (eq === 1) map.set(part[0]!, part.slice(2));
  }
  return map;
}

/** RFC 5802 saslname: "=" and "," are escaped as "=3D" and "=2C". */
export function escapeSaslName(name: string): string {
  return name.replaceAll("=", "=3D").replaceAll(",", "=2C");
}

/** Reverses {@linkcode escapeSaslName}. */
export function unescapeSaslName(name: string): string {
  return name.replaceAll("=2C", ",").replaceAll("=3D", "=");
}

/** Compares in time that does not depend on where the inputs differ. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/**
 * The server's check of client-final: whether `proof` (base64) proves knowledge of the password behind
 * `credential` for this `authMessage`. A malformed proof is simply false.
 */
export async function verifyClientProof(
  credential: ScramCredential,
  authMessage: string,
  proof: string,
): Promise<boolean> {
  let given: Uint8Array;
  try {
    given = fromBase64(proof);
  } catch {
    return false;
  }
  const clientKey = xor(given, await hmacSha256(credential.storedKey, authMessage));
  return constantTimeEqual(await sha256(clientKey), credential.storedKey);
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
  const clientNonce = scramNonce();
  const bare = `n=${escapeSaslName(username)},r=${clientNonce}`;
  let serverSignature: Uint8Array | undefined;
  return {
    first: encoder.encode(`n,,${bare}`),
    async final(serverFirstBytes: Uint8Array): Promise<Uint8Array> {
      const serverFirst = decoder.decode(serverFirstBytes);
      const attrs = scramAttributes(serverFirst);
      const nonce = attrs.get("r") ?? "";
      if (!nonce.startsWith(clientNonce)) throw new Error("SCRAM: server nonce does not extend ours");
      const salt = fromBase64(attrs.get("s") ?? "");
      const iterations = Number(attrs.get("i"));
      const salted = await saltedPassword(password, salt, iterations);
      const clientKey = await hmacSha256(salted, "Client Key");
      const storedKey = await sha256(clientKey);
      const withoutProof = `c=biws,r=${nonce}`;
      const authMessage = `${bare},${serverFirst},${withoutProof}`;
      const proof = xor(clientKey, await hmacSha256(storedKey, authMessage));
      serverSignature = await hmacSha256(await hmacSha256(salted, "Server Key"), authMessage);
      return encoder.encode(`${withoutProof},p=${toBase64(proof)}`);
    },
    verify(serverFinal: Uint8Array): Promise<boolean> {
      const v = scramAttributes(serverFinal).get("v");
      if (serverSignature === undefined || v === undefined) return Promise.resolve(false);
      try {
        return Promise.resolve(constantTimeEqual(fromBase64(v), serverSignature));
      } catch {
        return Promise.resolve(false); // malformed base64 from the server
      }
    },
  };
}
