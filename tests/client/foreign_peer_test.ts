import assert from "node:assert/strict";
import { foreignPeerError } from "../../lib/client/foreign_peer.ts";

Deno.test("foreignPeerError() lets every header a server may send through", () => {
  for (
    const byte of [
      0x20,
      0x30,
      0x31,
      0x33,
      0x35,
      0x38,
      0x3d,
      0x40,
      0x50,
      0x62,
      0x70,
      0x90,
      0xb0,
      0xd0,
      0xe0,
      0xf0,
    ]
  ) {
    assert.equal(foreignPeerError(Uint8Array.of(byte, 0), "h:1"), undefined, `0x${byte.toString(16)}`);
  }
  assert.equal(foreignPeerError(new Uint8Array(0), "h:1"), undefined);
});

Deno.test("foreignPeerError() names TLS records, HTTP answers and other bytes", () => {
  const tls = foreignPeerError(Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0x2a), "h:1");
  assert.ok(tls instanceof Deno.errors.InvalidData);
  assert.match(tls.message, /^h:1 does not speak MQTT: .*TLS port\?/);
  assert.match(
    foreignPeerError(new TextEncoder().encode("HTTP/1.0 200 OK\r\n"), "h:1")!.message,
    /HTTP server\?/,
  );
  // PUBLISH with QoS 3 [MQTT-3.3.1-4 (5.0)], CONNECT, and a client-only SUBSCRIBE cannot come from a server.
  for (const byte of [0x36, 0x10, 0x82]) {
    assert.match(foreignPeerError(Uint8Array.of(byte), "h:1")!.message, /first byte is 0x/);
  }
});
