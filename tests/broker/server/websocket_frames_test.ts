/**
 * The ws listener's own RFC 6455 framing, spoken byte by byte over TCP: frame limits before CONNECT (issue 15
 * item 7), masking (item 14), fragmentation, ping/pong, the close handshake, and the log lines of refusals.
 */

import assert from "node:assert/strict";
import type { Logger } from "../../../lib/broker/logger.ts";
import type { BrokerOptions } from "../../../lib/broker/options.ts";
import { within, withListeners } from "./_helpers.ts";

// v3.1.1 CONNECT, client id "ws", clean session, keep alive 60.
const CONNECT = Uint8Array.of(0x10, 14, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 60, 0, 2, 0x77, 0x73);
const CONNACK = [0x20, 2, 0, 0];

/** A client frame: FIN and `opcode`, masked unless `masked` is false; `length` may claim more than `payload`. */
function clientFrame(
  opcode: number,
  payload: Uint8Array,
  options: { fin?: boolean; masked?: boolean; length?: number } = {},
): Uint8Array {
  const length = options.length ?? payload.length;
  const masked = options.masked ?? true;
  const head: number[] = [(options.fin ?? true ? 0x80 : 0) | opcode];
  const maskBit = masked ? 0x80 : 0;
  if (length < 126) head.push(maskBit | length);
  else if (length < 65_536) head.push(maskBit | 126, length >> 8, length & 0xff);
  else {
    head.push(maskBit | 127, 0, 0, 0, 0);
    head.push((length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
  }
  const mask = [0x12, 0x34, 0x56, 0x78];
  if (masked) head.push(...mask);
  const body = masked ? payload.map((b, i) => b ^ mask[i & 3]!) : payload;
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

/** A server frame as parsed by the test client. */
interface ServerFrame {
  readonly opcode: number;
  readonly fin: boolean;
  readonly payload: Uint8Array;
}

/** A raw WebSocket client over TCP. */
class RawClient {
  readonly conn: Deno.TcpConn;
  #buffered = new Uint8Array(0);

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  /** Connects and sends `request` (default: a valid upgrade to `path` with subprotocol mqtt). */
  static async connect(port: number, request?: string): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const client = new RawClient(conn);
    await client.send(new TextEncoder().encode(request ?? upgradeRequest("/mqtt")));
    return client;
  }

  async send(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length;) at += await this.conn.write(bytes.subarray(at));
  }

  /** Reads until `count` bytes are buffered; false when the connection ends first. */
  async #fill(count: number): Promise<boolean> {
    while (this.#buffered.length < count) {
      const chunk = new Uint8Array(65_536);
      let n: number | null;
      try {
        n = await within(this.conn.read(chunk), `${count} bytes`);
      } catch (error) {
        if (error instanceof Error && error.message.startsWith("timed out")) throw error;
        n = null;
      }
      if (n === null) return false;
      const joined = new Uint8Array(this.#buffered.length + n);
      joined.set(this.#buffered);
      joined.set(chunk.subarray(0, n), this.#buffered.length);
      this.#buffered = joined;
    }
    return true;
  }

  /** The HTTP response head, status line first. */
  async response(): Promise<string> {
    for (;;) {
      const text = new TextDecoder().decode(this.#buffered);
      const end = text.indexOf("\r\n\r\n");
      if (end !== -1) {
        this.#buffered = this.#buffered.slice(new TextEncoder().encode(text.slice(0, end + 4)).length);
        return text.slice(0, end);
      }
      if (!await this.#fill(this.#buffered.length + 1)) return text;
    }
  }

  /** The next server frame, or undefined when the connection ended. */
  async frame(): Promise<ServerFrame | undefined> {
    if (!await this.#fill(2)) return undefined;
    const b = this.#buffered;
    assert.equal(b[1]! & 0x80, 0, "server frames are not masked");
    let length = b[1]! & 0x7f;
    let at = 2;
    if (length === 126) {
      if (!await this.#fill(4)) return undefined;
      length = (this.#buffered[2]! << 8) | this.#buffered[3]!;
      at = 4;
    }
    if (!await this.#fill(at + length)) return undefined;
    const frame = {
      opcode: this.#buffered[0]! & 0x0f,
      fin: (this.#buffered[0]! & 0x80) !== 0,
      payload: this.#buffered.slice(at, at + length),
    };
    this.#buffered = this.#buffered.slice(at + length);
    return frame;
  }

  /** The close code the server sends, after any other frames; undefined when it just drops the connection. */
  async closeCode(): Promise<number | undefined> {
    for (;;) {
      const frame = await this.frame();
      if (frame === undefined) return undefined;
      if (frame.opcode === 8) return (frame.payload[0]! << 8) | frame.payload[1]!;
    }
  }

  /** Resolves when the server has closed the TCP connection. */
  async ended(): Promise<void> {
    while (await this.#fill(this.#buffered.length + 1)) this.#buffered = new Uint8Array(0);
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

function upgradeRequest(path: string, extra = "Sec-WebSocket-Protocol: mqtt\r\n"): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
}

/** Runs `fn` with a raw client already upgraded (101) on a ws listener of a broker with `options`. */
async function withUpgradedClient(
  fn: (client: RawClient) => Promise<void>,
  options: BrokerOptions = {},
): Promise<void> {
  await withListeners([{ type: "ws", port: 0 }], async (running) => {
    const client = await RawClient.connect(running.listeners[0]!.port);
    try {
      assert.match(await client.response(), /^HTTP\/1\.1 101 /);
      await fn(client);
    } finally {
      client.close();
    }
  }, options);
}

/** A logger that keeps the info lines. */
function infoLines(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger: Logger = { error: () => {}, warn: () => {}, info: (m) => lines.push(m), debug: () => {} };
  return { logger, lines };
}

Deno.test("ws listener: answers the upgrade with the RFC 6455 accept key and the mqtt subprotocol", async () => {
  await withListeners([{ type: "ws", port: 0 }], async (running) => {
    const client = await RawClient.connect(running.listeners[0]!.port);
    try {
      const head = await client.response();
      assert.match(head, /^HTTP\/1\.1 101 /);
      // The example key of RFC 6455 section 1.3.
      assert.match(head, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
      assert.match(head, /\r\nSec-WebSocket-Protocol: mqtt(\r\n|$)/i);
    } finally {
      client.close();
    }
  });
});

Deno.test("ws listener: a frame over the maximum packet size is refused from its header, before CONNECT (1009)", async () => {
  // Issue 15 item 7: Deno buffered a 60 MB frame before our limits applied; 16 such sockets took 1 GB.
  await withUpgradedClient(async (client) => {
    const header = clientFrame(2, new Uint8Array(0), { length: 60_000_000 });
    await client.send(header);
    await client.send(new Uint8Array(1000)); // the start of the payload, and then nothing
    assert.equal(await client.closeCode(), 1009);
    await client.ended();
  }, { maxPacketSize: 65_536 });
});

Deno.test("ws listener: a frame up to the maximum packet size is accepted", async () => {
  await withUpgradedClient(async (client) => {
    // CONNECT, then a PUBLISH QoS 0 of exactly 1024 bytes in one frame of 1024 bytes.
    await client.send(clientFrame(2, CONNECT));
    assert.deepEqual([...(await client.frame())!.payload], CONNACK);
    const publish = new Uint8Array(1024);
    publish.set([0x30, 0xfd, 0x07, 0, 1, 0x74]); // Remaining Length 1021, topic "t"
    await client.send(clientFrame(2, publish));
    await client.send(clientFrame(2, Uint8Array.of(0xc0, 0)));
    assert.deepEqual([...(await client.frame())!.payload], [0xd0, 0]);
  }, { maxPacketSize: 1024 });
});

Deno.test("ws listener: an unmasked client frame is refused with 1002 (RFC 6455 section 5.1)", async () => {
  await withUpgradedClient(async (client) => {
    await client.send(clientFrame(2, CONNECT, { masked: false }));
    assert.equal(await client.closeCode(), 1002);
    await client.ended();
  });
});

Deno.test("ws listener: a fragmented message with a ping between its fragments is one byte stream [MQTT-6.0.0-2 (5.0)]", async () => {
  await withUpgradedClient(async (client) => {
    await client.send(clientFrame(2, CONNECT.subarray(0, 3), { fin: false }));
    await client.send(clientFrame(9, Uint8Array.of(7, 7)));
    await client.send(clientFrame(0, CONNECT.subarray(3, 9), { fin: false }));
    await client.send(clientFrame(0, CONNECT.subarray(9)));
    const pong = await client.frame();
    assert.deepEqual([pong?.opcode, ...pong!.payload], [10, 7, 7]);
    assert.deepEqual([...(await client.frame())!.payload], CONNACK);
    // A continuation with no message started, or a new message inside one, breaks the protocol.
    await client.send(clientFrame(0, Uint8Array.of(0xc0, 0)));
    assert.equal(await client.closeCode(), 1002);
  });
});

Deno.test("ws listener: a text frame closes with 1003 [MQTT-6.0.0-1 (5.0)]", async () => {
  await withUpgradedClient(async (client) => {
    await client.send(clientFrame(1, new TextEncoder().encode("hello")));
    assert.equal(await client.closeCode(), 1003);
  });
});

Deno.test("ws listener: the client's close frame is answered with the same code, then the connection ends", async () => {
  await withUpgradedClient(async (client) => {
    await client.send(clientFrame(2, CONNECT));
    assert.deepEqual([...(await client.frame())!.payload], CONNACK);
    await client.send(clientFrame(8, Uint8Array.of(0x03, 0xe9))); // 1001 going away
    assert.equal(await client.closeCode(), 1001);
    await client.ended();
  });
});

Deno.test("ws listener: refusals (path, subprotocol, not an upgrade) are logged at info with the address", async () => {
  const { logger, lines } = infoLines();
  await withListeners([{ type: "ws", port: 0 }], async (running) => {
    const port = running.listeners[0]!.port;
    const requests: [string, RegExp][] = [
      [upgradeRequest("/other"), /^HTTP\/1\.1 404 /],
      [upgradeRequest("/mqtt", "Sec-WebSocket-Protocol: chat\r\n"), /^HTTP\/1\.1 400 /],
      ["GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 426 /],
    ];
    for (const [request, status] of requests) {
      const client = await RawClient.connect(port, request);
      try {
        assert.match(await client.response(), status);
        await client.ended();
      } finally {
        client.close();
      }
    }
  }, { logger });
  const refusals = lines.filter((line) => line.includes("refused WebSocket from 127.0.0.1:"));
  assert.equal(refusals.length, 3, lines.join("\n"));
  assert.match(refusals[0]!, /404 path \/other/);
  assert.match(refusals[1]!, /400 .*subprotocol/);
  assert.match(refusals[2]!, /426 not a WebSocket upgrade/);
});

Deno.test("ws listener: an upgrade request that never ends is dropped at 8 KiB (431)", async () => {
  await withListeners([{ type: "ws", port: 0 }], async (running) => {
    const client = await RawClient.connect(
      running.listeners[0]!.port,
      `GET /mqtt HTTP/1.1\r\nX: ${"a".repeat(9000)}`,
    );
    try {
      assert.match(await client.response(), /^HTTP\/1\.1 431 /);
    } finally {
      client.close();
    }
  });
});

Deno.test("ws listener: an upgrade request longer than the first read buffer is still read whole", async () => {
  await withListeners([{ type: "ws", port: 0 }], async (running) => {
    const request = upgradeRequest(
      "/mqtt",
      `Sec-WebSocket-Protocol: mqtt\r\nCookie: ${"c".repeat(3000)}\r\n`,
    );
    const client = await RawClient.connect(running.listeners[0]!.port, request);
    try {
      assert.match(await client.response(), /^HTTP\/1\.1 101 /);
    } finally {
      client.close();
    }
  });
});

Deno.test("ws listener: handshakes in progress count against maxConnections", async () => {
  const warnings: string[] = [];
  const logger: Logger = { error: () => {}, warn: (m) => warnings.push(m), info: () => {}, debug: () => {} };
  await withListeners([{ type: "ws", port: 0 }], async (running) => {
    const port = running.listeners[0]!.port;
    const silent = await Promise.all([0, 1].map(() => Deno.connect({ hostname: "127.0.0.1", port })));
    const third = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      assert.equal(await within(third.read(new Uint8Array(16)).catch(() => null), "the refusal"), null);
      assert.ok(warnings.some((w) => w.includes("too many handshakes in progress")), warnings.join("\n"));
    } finally {
      for (const conn of [...silent, third]) {
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
    }
  }, { logger, maxConnections: 2 });
});

Deno.test("ws listener: an MQTT client on the ws port gets 400 at once, not after the connect timeout", async () => {
  const { logger, lines } = infoLines();
  await withListeners([{ type: "ws", port: 0 }], async (running) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: running.listeners[0]!.port });
    try {
      // A 3.1.1 CONNECT for client id "a": no HTTP request starts with a byte below "A".
      await conn.write(new Uint8Array([0x10, 13, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60, 0, 1, 0x61]));
      const buffer = new Uint8Array(64);
      const n = await within(conn.read(buffer), "the refusal (well before the 10 s connect timeout)");
      assert.match(new TextDecoder().decode(buffer.subarray(0, n ?? 0)), /^HTTP\/1\.1 400 /);
    } finally {
      conn.close();
    }
  }, { logger });
  assert.ok(
    lines.some((line) => /refused WebSocket from 127\.0\.0\.1:\d+: 400 not an HTTP request/.test(line)),
    lines.join("\n"),
  );
});
