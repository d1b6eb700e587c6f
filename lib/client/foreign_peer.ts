/**
 * Recognizes a server that does not speak MQTT from the first bytes it sends, so a wrong port gives an error that
 * says so ("is it a TLS port?") instead of a decoder complaint about fixed header flags.
 *
 * @module
 */

/**
 * Fixed header bytes a server can send (5.0 section 2.1.2 and 2.1.3, the same in 3.1.1). Anything else cannot
 * come from an MQTT server; a valid packet other than CONNACK is left to the dispatcher, which answers it as the
 * Protocol Error it is [MQTT-3.2.0-1 (5.0)].
 */
const SERVER_HEADERS: ReadonlySet<number> = new Set([
  0x20, // CONNACK
  0x40, // PUBACK
  0x50, // PUBREC
  0x62, // PUBREL
  0x70, // PUBCOMP
  0x90, // SUBACK
  0xb0, // UNSUBACK
  0xd0, // PINGRESP
  0xe0, // DISCONNECT
  0xf0, // AUTH
]);

/** Whether `byte` can start a packet from a server: one of the above, or PUBLISH with a QoS of 0-2. */
function serverHeader(byte: number): boolean {
  return SERVER_HEADERS.has(byte) || (byte >> 4 === 3 && (byte & 0x06) !== 0x06);
}

/** TLS record content types (RFC 8446 section 5.1): change_cipher_spec, alert, handshake, application_data. */
const TLS_RECORD_TYPES: ReadonlySet<number> = new Set([0x14, 0x15, 0x16, 0x17]);

/**
 * An error naming `peer` when `first` (the first bytes read from a new connection) cannot start a packet from an
 * MQTT server, with a guess at what the peer is; undefined when it can.
 *
 * @example
 * ```ts
 * import { foreignPeerError } from "./foreign_peer.ts";
 * const error = foreignPeerError(Uint8Array.of(0x15, 0x03, 0x03, 0x00, 0x02), "127.0.0.1:8883");
 * console.assert(error?.message.includes("TLS port?"));
 * console.assert(foreignPeerError(Uint8Array.of(0x20, 0x02, 0, 0), "127.0.0.1:1883") === undefined);
 * ```
 */
export function foreignPeerError(first: Uint8Array, peer: string): Error | undefined {
  const byte = first[0];
  if (byte === undefined || serverHeader(byte)) return undefined;
  return new Deno.errors.InvalidData(`${peer} does not speak MQTT: ${guess(first)}`);
}

function guess(first: Uint8Array): string {
  if (TLS_RECORD_TYPES.has(first[0]!) && (first.length < 2 || first[1] === 0x03)) {
    return "it answered with a TLS record (is it a TLS port? connect with TLS: the tls option, mqtts:// or " +
      "--cafile)";
  }
  const text = printable(first);
  if (text.startsWith("HTTP/")) {
    return `it answered "${text}" (an HTTP server? MQTT over WebSocket needs a ws:// or wss:// URL)`;
  }
  const shown = text === "" ? "" : ` ("${text}")`;
  return `its first byte is 0x${
    first[0]!.toString(16).padStart(2, "0")
  }${shown}, which no MQTT packet from a ` +
    "server starts with (5.0 section 2.1.2)";
}

/** The first line of `bytes` when it is printable ASCII, else "". */
function printable(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes.subarray(0, 80)) {
    if (b === 0x0d || b === 0x0a) break;
    if (b < 0x20 || b > 0x7e) return "";
    text += String.fromCharCode(b);
  }
  return text;
}
