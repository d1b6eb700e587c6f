/**
 * Peers that are not (or no longer) MQTT clients: one that speaks TLS or HTTP to a plain MQTT port, and socket
 * errors that only mean the peer went away. Both are said plainly in the log rather than as decode warnings or
 * internal errors.
 *
 * @module
 */

/**
 * Whether the first bytes of a connection are a TLS handshake (0x16 0x03: a TLS client on a plain port) or an
 * HTTP request (an upper-case method: `GET `, `POST`, `PRI ` ...): no MQTT CONNECT starts so [MQTT-3.1.0-1 (3.1.1)].
 */
export function isForeignProtocol(buffer: Uint8Array, n: number): boolean {
  if (n >= 2 && buffer[0] === 0x16 && buffer[1] === 0x03) return true;
  if (n < 4) return false;
  for (let i = 0; i < 3; i++) {
    const b = buffer[i]!;
    if (b < 0x41 || b > 0x5a) return false;
  }
  return true;
}

/** The log line for a peer {@linkcode isForeignProtocol} caught. */
export function foreignProtocolLine(remoteAddress: string, buffer: Uint8Array, n: number): string {
  const head = Array.from(buffer.subarray(0, Math.min(n, 8)), (b) => b.toString(16).padStart(2, "0"));
  return `${remoteAddress} does not speak MQTT (TLS client on a plain port? HTTP?): first bytes ${
    head.join(" ")
  }`;
}

/** Whether a socket error means the peer went away (reset, broken pipe): a lost connection, not our fault. */
export function isConnectionLost(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionAborted || error instanceof Deno.errors.UnexpectedEof;
}
