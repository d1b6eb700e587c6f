/**
 * The server side of the WebSocket opening handshake (RFC 6455 section 4.2) over a TCP or TLS stream: reads one
 * HTTP/1.1 request, checks the path, the upgrade headers and the MQTT subprotocol, and answers 101 or an error
 * status. Ours rather than `Deno.serve` + `Deno.upgradeWebSocket`, whose WebSocket buffers whole messages of up
 * to 64 MiB before the broker's limits apply (see `websocket_frames.ts`).
 *
 * @module
 */

import { type ByteStream, writeAll } from "./transport.ts";
import { MQTT_SUBPROTOCOLS, type MqttSubprotocol } from "./websocket.ts";
import { WebSocketServerStream, type WebSocketServerStreamOptions } from "./websocket_frames.ts";

/** Options for {@linkcode upgradeWebSocket}. */
export interface WebSocketUpgradeOptions extends Omit<WebSocketServerStreamOptions, "leftover"> {
  /** The only path served (the query string is ignored); others get 404. */
  path: string;
  /**
   * The largest request head (request line and headers) read; a longer one gets 431.
   *
   * @default {8192}
   */
  maxHeadBytes?: number;
}

/** What came of an upgrade request. */
export type WebSocketUpgrade =
  /** Upgraded: MQTT flows over `stream`. */
  | { readonly kind: "upgraded"; readonly protocol: MqttSubprotocol; readonly stream: WebSocketServerStream }
  /** Refused with an HTTP status (0: the peer closed or sent no HTTP), and why; the connection is closed. */
  | { readonly kind: "refused"; readonly status: number; readonly reason: string };

/** The first read buffer of a request head; browsers send about 500 bytes. */
const HEAD_START = 1024;
/** RFC 6455 section 1.3: appended to the client's key before hashing. */
const ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
};

/**
 * Reads the HTTP upgrade request from `conn` and answers it. Upgraded, the returned stream owns `conn`;
 * refused, `conn` is closed after the error response. The caller bounds the time this takes.
 *
 * @example
 * ```ts ignore
 * import { upgradeWebSocket } from "./websocket_upgrade.ts";
 * const listener = Deno.listen({ port: 0 });
 * const conn = await listener.accept();
 * const result = await upgradeWebSocket(conn, { path: "/mqtt" });
 * if (result.kind === "upgraded") console.log(result.protocol); // read and write MQTT on result.stream
 * ```
 */
export async function upgradeWebSocket(
  conn: ByteStream,
  options: WebSocketUpgradeOptions,
): Promise<WebSocketUpgrade> {
  const head = await readHead(conn, options.maxHeadBytes ?? 8192);
  if (typeof head === "number") {
    const why = head === 0
      ? "closed before a full request"
      : head === 400
      ? "not an HTTP request (an MQTT client on a WebSocket port?)"
      : "request head too large";
    return refuse(conn, head, why);
  }
  const lines = new TextDecoder().decode(head.bytes).split("\r\n");
  const [method, target, version] = lines[0]!.split(" ");
  if (method === undefined || target === undefined || version?.startsWith("HTTP/") !== true) {
    return refuse(conn, 400, "not an HTTP request");
  }
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  const query = target.indexOf("?");
  const path = query === -1 ? target : target.slice(0, query);
  if (path !== options.path) return refuse(conn, 404, `path ${path} is not ${options.path}`);
  const tokens = (name: string) => (headers.get(name) ?? "").toLowerCase().split(",").map((t) => t.trim());
  if (!tokens("upgrade").includes("websocket")) {
    return refuse(conn, 426, "not a WebSocket upgrade", "Upgrade: websocket\r\n");
  }
  if (method !== "GET") return refuse(conn, 405, `method ${method}`);
  if (headers.get("sec-websocket-version") !== "13") {
    return refuse(conn, 426, "WebSocket version is not 13", "Sec-WebSocket-Version: 13\r\n");
  }
  const key = headers.get("sec-websocket-key") ?? "";
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) return refuse(conn, 400, "no valid Sec-WebSocket-Key");
  const offered = (headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim());
  const protocol = MQTT_SUBPROTOCOLS.find((p) => offered.includes(p));
  if (protocol === undefined) {
    return refuse(conn, 400, `the WebSocket subprotocol "mqtt" is required [MQTT-6.0.0-3 (5.0)]`);
  }
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(key + ACCEPT_GUID));
  const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
  const response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    `Sec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`;
  try {
    await writeAll(conn, new TextEncoder().encode(response));
  } catch {
    closeQuietly(conn);
    return { kind: "refused", status: 0, reason: "closed during the upgrade" };
  }
  const stream = new WebSocketServerStream(conn, { ...options, leftover: head.leftover });
  return { kind: "upgraded", protocol, stream };
}

/**
 * The request head up to the blank line, and what came after it; or 0 (closed early), 400 (not HTTP) or 431 (too
 * long).
 */
async function readHead(
  conn: ByteStream,
  max: number,
): Promise<{ bytes: Uint8Array; leftover: Uint8Array } | number> {
  // Starts small and grows: a peer that sends half a request and waits holds 1 KiB, not `max`.
  let buffer = new Uint8Array(Math.min(HEAD_START, max));
  let length = 0;
  for (;;) {
    if (length === buffer.length) {
      if (length >= max) return 431;
      const grown = new Uint8Array(Math.min(max, buffer.length * 2));
      grown.set(buffer);
      buffer = grown;
    }
    let n: number | null;
    try {
      n = await conn.read(buffer.subarray(length));
    } catch {
      n = null;
    }
    if (n === null) return 0;
    // An HTTP request starts with its method, an upper-case token: anything else (an MQTT CONNECT is 0x10) is
    // refused at once rather than waited on until the connect timeout.
    if (length === 0 && n > 0 && !(buffer[0]! >= 0x41 && buffer[0]! <= 0x5a)) return 400;
    const from = Math.max(0, length - 3);
    length += n;
    for (let i = from; i + 3 < length; i++) {
      if (buffer[i] === 13 && buffer[i + 1] === 10 && buffer[i + 2] === 13 && buffer[i + 3] === 10) {
        return { bytes: buffer.subarray(0, i), leftover: buffer.slice(i + 4, length) };
      }
    }
  }
}

async function refuse(
  conn: ByteStream,
  status: number,
  reason: string,
  headers = "",
): Promise<WebSocketUpgrade> {
  if (status !== 0) {
    const body = `${reason}\n`;
    const response = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}\r\n${headers}` +
      `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${
        new TextEncoder().encode(body).length
      }\r\n` +
      `Connection: close\r\n\r\n${body}`;
    try {
      await writeAll(conn, new TextEncoder().encode(response));
    } catch {
      // the peer is gone
    }
  }
  closeQuietly(conn);
  return { kind: "refused", status, reason };
}

function closeQuietly(conn: ByteStream): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
