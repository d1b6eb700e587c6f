import assert from "node:assert/strict";
import { WebSocketByteStream, WS_CLOSE } from "../../../lib/transport/websocket.ts";
import { mqttJsRoundTrip, mqttJsUnavailable, testIf, within, withListeners } from "./_helpers.ts";

// v3.1.1 CONNECT, client id "ws", clean session, keep alive 60.
const CONNECT = Uint8Array.of(0x10, 14, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 60, 0, 2, 0x77, 0x73);
const CONNACK = [0x20, 2, 0, 0];
// SUBSCRIBE id 1 to "t" at QoS 0, then PINGREQ.
const SUBSCRIBE_AND_PING = Uint8Array.of(0x82, 6, 0, 1, 0, 1, 0x74, 0, 0xc0, 0);
const SUBACK_AND_PINGRESP = [0x90, 3, 0, 1, 0, 0xd0, 0];

/** A WebSocket client that collects every byte it receives. */
async function openClient(url: string, protocols: string[] = ["mqtt"]) {
  const socket = new WebSocket(url, protocols);
  socket.binaryType = "arraybuffer";
  const bytes: number[] = [];
  let wake: (() => void) | undefined;
  socket.onmessage = (event) => {
    bytes.push(...new Uint8Array(event.data as ArrayBuffer));
    wake?.();
  };
  const closed = new Promise<CloseEvent>((resolve) => socket.onclose = resolve);
  await within(
    new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error(`cannot open ${url}`));
    }),
    `open ${url}`,
  );
  return {
    socket,
    closed,
    /** Resolves with the first `n` bytes received (and forgets them). */
    async take(n: number): Promise<number[]> {
      while (bytes.length < n) await within(new Promise<void>((resolve) => wake = resolve), `${n} bytes`);
      return bytes.splice(0, n);
    },
    async close(): Promise<void> {
      socket.close();
      await closed;
    },
  };
}

testIf("ws listener: MQTT.js (v3.1.1 and v5) publishes and receives over ws://127.0.0.1:PORT/mqtt", [
  mqttJsUnavailable(),
], async () => {
  await withListeners([{ type: "ws", port: 0 }], async (running) => {
    const url = running.listeners[0]!.url;
    assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+\/mqtt$/);
    await mqttJsRoundTrip(url, { protocolVersion: 4 });
    await mqttJsRoundTrip(url, { protocolVersion: 5 });
  });
});

testIf("ws listener: MQTT.js v3.1 gets the mqttv3.1 subprotocol", [mqttJsUnavailable()], async () => {
  await withListeners([{ type: "ws", port: 0, path: "/" }], async (running) => {
    await mqttJsRoundTrip(running.listeners[0]!.url, { protocolId: "MQIsdp", protocolVersion: 3 });
    const client = await openClient(running.listeners[0]!.url, ["mqttv3.1"]);
    assert.equal(client.socket.protocol, "mqttv3.1");
    await client.close();
  });
});

Deno.test("ws listener: a packet split over two messages, and two packets in one message [MQTT-6.0.0-2 (5.0)]", async () => {
  await withListeners([{ type: "ws", port: 0 }], async (running) => {
    const client = await openClient(running.listeners[0]!.url);
    assert.equal(client.socket.protocol, "mqtt");
    client.socket.send(CONNECT.subarray(0, 5));
    client.socket.send(CONNECT.subarray(5));
    assert.deepEqual(await client.take(4), CONNACK);
    client.socket.send(SUBSCRIBE_AND_PING);
    assert.deepEqual(await client.take(SUBACK_AND_PINGRESP.length), SUBACK_AND_PINGRESP);
    await client.close();
  });
});

Deno.test("ws listener: a text message closes the connection [MQTT-6.0.0-1 (5.0)]", async () => {
  await withListeners([{ type: "ws", port: 0 }], async (running) => {
    const client = await openClient(running.listeners[0]!.url);
    client.socket.send(CONNECT);
    assert.deepEqual(await client.take(4), CONNACK);
    client.socket.send("PINGREQ");
    const event = await within(client.closed, "the close");
    assert.equal(event.code, WS_CLOSE.UnsupportedData);
  });
});

Deno.test("ws listener: another path is 404, no mqtt subprotocol is 400, a plain GET is 426", async () => {
  await withListeners([{ type: "ws", port: 0, path: "/broker" }], async (running) => {
    const { port } = running.listeners[0]!;
    const base = `http://127.0.0.1:${port}`;
    const upgrade = { upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13" };
    const key = { "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" };
    const cases: [string, Record<string, string>, number][] = [
      ["/mqtt", { ...upgrade, ...key, "sec-websocket-protocol": "mqtt" }, 404],
      ["/broker", { ...upgrade, ...key }, 400],
      ["/broker", { ...upgrade, ...key, "sec-websocket-protocol": "chat, superchat" }, 400],
      ["/broker", {}, 426],
    ];
    for (const [path, headers, status] of cases) {
      const response = await fetch(base + path, { headers });
      await response.body?.cancel();
      assert.equal(response.status, status, `${path} ${JSON.stringify(headers)}`);
    }
    // A browser-style client that offers other subprotocols besides mqtt gets mqtt.
    const client = await openClient(running.listeners[0]!.url, ["chat", "mqtt"]);
    assert.equal(client.socket.protocol, "mqtt");
    await client.close();
  });
});

/** Serves one WebSocket whose server end is handed to `body` as a WebSocketByteStream. */
async function withStream(
  options: ConstructorParameters<typeof WebSocketByteStream>[1],
  body: (stream: WebSocketByteStream, client: Awaited<ReturnType<typeof openClient>>) => Promise<void>,
): Promise<void> {
  const streams = Promise.withResolvers<WebSocketByteStream>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request, { protocol: "mqtt" });
    streams.resolve(new WebSocketByteStream(socket, options));
    return response;
  });
  try {
    const client = await openClient(`ws://127.0.0.1:${server.addr.port}/`);
    try {
      await body(await streams.promise, client);
    } finally {
      client.socket.close();
      await client.closed;
    }
  } finally {
    await server.shutdown();
  }
}

Deno.test("WebSocketByteStream: read() returns what fits and keeps the rest; write() sends binary", async () => {
  await withStream({}, async (stream, client) => {
    client.socket.send(Uint8Array.of(1, 2, 3, 4, 5));
    const buffer = new Uint8Array(3);
    assert.equal(await stream.read(buffer), 3);
    assert.deepEqual([...buffer], [1, 2, 3]);
    assert.equal(await stream.read(buffer), 2);
    assert.deepEqual([...buffer.subarray(0, 2)], [4, 5]);
    const data = Uint8Array.of(9, 8, 7);
    assert.equal(await stream.write(data), 3);
    data.fill(0); // the socket took a copy
    assert.deepEqual(await client.take(3), [9, 8, 7]);
  });
});

Deno.test("WebSocketByteStream: more unread bytes than maxUnreadBytes closes with 1009", async () => {
  await withStream({ maxUnreadBytes: 8 }, async (stream, client) => {
    client.socket.send(new Uint8Array(5));
    client.socket.send(new Uint8Array(5));
    assert.equal((await within(client.closed, "the close")).code, WS_CLOSE.MessageTooBig);
    assert.equal(await stream.read(new Uint8Array(16)), null, "unread data is dropped when we close");
  });
});

Deno.test("WebSocketByteStream: the peer's close ends reads after queued data; writes then fail", async () => {
  await withStream({}, async (stream, client) => {
    client.socket.send(Uint8Array.of(7));
    client.socket.close();
    await client.closed;
    const buffer = new Uint8Array(4);
    assert.equal(await stream.read(buffer), 1);
    assert.equal(await stream.read(buffer), null);
    await assert.rejects(stream.write(Uint8Array.of(1)), Deno.errors.BrokenPipe);
    stream.close(); // closing twice does not throw
    stream.close();
  });
});
