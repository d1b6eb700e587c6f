/**
 * The client's errors when the address is wrong (issue #16, "Clearer errors"): nothing listening, a TLS port, an
 * HTTP server, any peer that does not speak MQTT. Each against a real local socket.
 */

import assert from "node:assert/strict";
import { MqttClient } from "../../lib/client/client.ts";
import { certificatesUnavailable, makeCertificates } from "../broker/server/_certs.ts";
import { testIf } from "../broker/server/_helpers.ts";

/** A port where nothing listens: bound, then released. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A server that reads what the client sends and answers each connection with `answer`, then closes it. */
function foreignServer(answer: Uint8Array): { port: number; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served: Promise<void>[] = [];
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        served.push((async () => {
          try {
            await conn.read(new Uint8Array(1024));
            await conn.write(answer);
          } catch {
            // the client went away
          } finally {
            conn.close();
          }
        })());
      }
    } catch {
      // listener closed
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      await loop;
      await Promise.all(served);
    },
  };
}

async function connectError(port: number): Promise<Error> {
  const client = new MqttClient({ hostname: "127.0.0.1", port, reconnect: false, connectTimeoutMs: 5000 });
  try {
    await client.connect();
  } catch (error) {
    assert.ok(error instanceof Error);
    return error;
  } finally {
    await client.close();
  }
  throw new Error("connect() succeeded");
}

Deno.test("connect() where nothing listens says the address refused the connection", async () => {
  const port = freePort();
  const error = await connectError(port);
  assert.ok(error instanceof Deno.errors.ConnectionRefused);
  assert.equal(error.message, `Connection refused by 127.0.0.1:${port}: nothing listens there`);
});

Deno.test("connect() to a TLS record says the server does not speak MQTT and suggests TLS", async () => {
  // What a TLS server answers to a plain-text CONNECT: an alert record (21, version 3.3, length 2).
  const server = foreignServer(Uint8Array.of(0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32));
  try {
    const error = await connectError(server.port);
    assert.match(error.message, new RegExp(`^127\\.0\\.0\\.1:${server.port} does not speak MQTT`));
    assert.match(error.message, /TLS port\?/);
    assert.match(error.message, /mqtts/);
    assert.doesNotMatch(error.message, /Cannot decode/);
  } finally {
    await server.close();
  }
});

testIf(
  "connect() to a real TLS listener says it is probably a TLS port",
  [certificatesUnavailable()],
  async () => {
    const certs = await makeCertificates();
    const listener = Deno.listenTls({
      hostname: "127.0.0.1",
      port: 0,
      cert: certs.serverCert,
      key: certs.serverKey,
    });
    const served: Promise<void>[] = [];
    const loop = (async () => {
      try {
        for await (const conn of listener) {
          served.push(conn.read(new Uint8Array(1024)).then(() => {}, () => {}).finally(() => conn.close()));
        }
      } catch {
        // listener closed
      }
    })();
    try {
      const error = await connectError((listener.addr as Deno.NetAddr).port);
      assert.match(error.message, /does not speak MQTT/);
      assert.match(error.message, /TLS port\?/);
    } finally {
      listener.close();
      await loop;
      await Promise.all(served);
      await certs.remove();
    }
  },
);

Deno.test("connect() to an HTTP server says the server does not speak MQTT and suggests HTTP", async () => {
  const server = foreignServer(
    new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
  );
  try {
    const error = await connectError(server.port);
    assert.match(error.message, /does not speak MQTT/);
    assert.match(error.message, /HTTP server\?/);
    assert.match(error.message, /HTTP\/1\.1 400 Bad Request/);
  } finally {
    await server.close();
  }
});

Deno.test("connect() to a peer whose first byte is not CONNACK says it does not speak MQTT", async () => {
  const server = foreignServer(new TextEncoder().encode("SSH-2.0-OpenSSH_9.6\r\n"));
  try {
    const error = await connectError(server.port);
    assert.match(error.message, /does not speak MQTT/);
  } finally {
    await server.close();
  }
});
