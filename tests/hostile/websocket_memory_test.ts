/**
 * Issue 15 item 7, the attack as a test: 16 WebSocket peers that never send CONNECT each start a 60 MB frame and
 * send part of it. Deno's WebSocket buffered every such message whole (the broker went from 191 MB to 1,176 MB);
 * the listener's own framing refuses the frame from its header, so the broker's memory stays where it was.
 */

import assert from "node:assert/strict";
import { withListeners } from "../broker/server/_helpers.ts";

const SOCKETS = 16;
const CLAIMED = 60_000_000;
const SENT = 8 * 1024 * 1024;

function upgradeRequest(): string {
  return "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";
}

/** A masked binary frame header claiming `length` bytes (64-bit length form). */
function frameHeader(length: number): Uint8Array {
  return Uint8Array.of(
    0x82,
    0x80 | 127,
    0,
    0,
    0,
    0,
    (length >>> 24) & 0xff,
    (length >>> 16) & 0xff,
    (length >>> 8) & 0xff,
    length & 0xff,
    1,
    2,
    3,
    4,
  );
}

/** Upgrades, then sends the header of a `CLAIMED`-byte frame and `SENT` bytes of it (as far as the broker lets). */
async function attack(port: number): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(upgradeRequest()));
    const head = new Uint8Array(1024);
    const n = await conn.read(head);
    assert.match(new TextDecoder().decode(head.subarray(0, n ?? 0)), /^HTTP\/1\.1 101 /);
    await conn.write(frameHeader(CLAIMED));
    const chunk = new Uint8Array(64 * 1024);
    for (let sent = 0; sent < SENT;) sent += await conn.write(chunk);
  } catch {
    // refused: the broker closed the connection under us
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

Deno.test("16 WebSocket peers starting 60 MB frames before CONNECT do not grow the broker's memory", async () => {
  await withListeners([{ type: "ws", port: 0 }], async (running, broker) => {
    const port = running.listeners[0]!.port;
    const before = Deno.memoryUsage().rss;
    await Promise.all(Array.from({ length: SOCKETS }, () => attack(port)));
    const grown = Deno.memoryUsage().rss - before;
    console.log(
      `  ${SOCKETS} peers sent ${SENT / 1048576} MiB of a ${CLAIMED / 1e6} MB frame each: RSS +${
        (grown / 1048576).toFixed(1)
      } MiB`,
    );
    // The test's own sockets and buffers move RSS a little; a buffered message each would be 64 MiB or more.
    assert.ok(grown < 32 * 1024 * 1024, `RSS grew by ${grown} bytes`);
    assert.equal(broker.connectionCount, 0, "every peer was closed");
  });
});
