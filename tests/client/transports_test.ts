/**
 * The client over the broker's other transports: TLS (`tlsConnector`), MQTT over WebSocket
 * (`webSocketConnector`, also `wss://` with a CA of its own) and a Unix socket (`unixConnector`), each a QoS 1
 * round trip through our broker.
 */

import assert from "node:assert/strict";
import { MqttClient } from "../../lib/client/client.ts";
import { tlsConnector, unixConnector, webSocketConnector } from "../../lib/client/connector.ts";
import { certificatesUnavailable, makeCertificates, type TestCertificates } from "../broker/server/_certs.ts";
import { within, withListeners } from "../broker/server/_helpers.ts";
import { withUnixBroker } from "../cli/_cli.ts";
import { filesUnavailable, testIf } from "../_permissions.ts";

async function roundTrip(client: MqttClient, topic: string): Promise<void> {
  await client.connect();
  try {
    await client.subscribe(topic, { qos: 1 });
    const messages = client.messages(topic);
    const result = await client.publish(topic, "over the wire", { qos: 1 });
    assert.equal(result.reasonCode, 0);
    const next = await within(messages[Symbol.asyncIterator]().next(), "the message back");
    assert.equal(next.done, false);
    assert.equal(new TextDecoder().decode(next.value!.payload), "over the wire");
  } finally {
    await client.close();
  }
}

Deno.test("MqttClient over WebSocket (webSocketConnector) to a ws listener: QoS 1 round trip", async () => {
  await withListeners([{ type: "ws", hostname: "127.0.0.1", port: 0 }], async (running) => {
    const url = running.listeners[0]!.url;
    const client = new MqttClient({ connect: webSocketConnector(url), reconnect: false, protocolVersion: 5 });
    await roundTrip(client, "ws/roundtrip");
  });
});

Deno.test("webSocketConnector: a path the broker does not serve fails the connect", async () => {
  await withListeners([{ type: "ws", hostname: "127.0.0.1", port: 0 }], async (running) => {
    const url = running.listeners[0]!.url.replace(/\/mqtt$/, "/nothing");
    const client = new MqttClient({ connect: webSocketConnector(url), reconnect: false });
    await assert.rejects(client.connect());
    await client.close();
  });
});

Deno.test("webSocketConnector: a string second argument still names the subprotocol", async () => {
  await withListeners([{ type: "ws", hostname: "127.0.0.1", port: 0 }], async (running) => {
    const url = running.listeners[0]!.url;
    const client = new MqttClient({ connect: webSocketConnector(url, "mqtt"), reconnect: false });
    await roundTrip(client, "ws/protocol");
  });
});

Deno.test("webSocketConnector refuses unsafelyDisableHostnameVerification: Deno's WebSocket cannot do it", () => {
  assert.throws(
    () => webSocketConnector("wss://localhost/mqtt", { tls: { unsafelyDisableHostnameVerification: true } }),
    TypeError,
  );
});

testIf("MqttClient over a Unix socket (unixConnector): QoS 1 round trip", [filesUnavailable()], async () => {
  await withUnixBroker(async (path) => {
    const client = new MqttClient({ connect: unixConnector(path), reconnect: false, protocolVersion: 5 });
    await roundTrip(client, "unix/roundtrip");
  });
});

const noCerts = certificatesUnavailable();

/** A test against a `tls` or `wss` listener with throw-away certificates; `url` names the server as localhost. */
function certificateTest(
  name: string,
  type: "tls" | "wss",
  fn: (url: string, certs: TestCertificates) => Promise<void>,
): void {
  Deno.test({
    name: `${name}${noCerts === undefined ? "" : ` (ignored: ${noCerts})`}`,
    ignore: noCerts !== undefined,
    async fn() {
      const certs = await makeCertificates();
      try {
        await withListeners(
          [{ type, hostname: "127.0.0.1", port: 0, cert: certs.serverCert, key: certs.serverKey }],
          (running) => fn(running.listeners[0]!.url.replace("127.0.0.1", "localhost"), certs),
        );
      } finally {
        await certs.remove();
      }
    },
  });
}

certificateTest(
  "MqttClient over TLS (tlsConnector) to a tls listener: QoS 1 round trip",
  "tls",
  async (url, certs) => {
    const port = Number(new URL(url).port);
    const client = new MqttClient({
      connect: tlsConnector("localhost", port, { caCerts: [certs.ca] }),
      reconnect: false,
      protocolVersion: 4,
    });
    await roundTrip(client, "tls/roundtrip");
  },
);

certificateTest(
  "MqttClient over wss:// (webSocketConnector with tls.caCerts) to a wss listener: QoS 1 round trip",
  "wss",
  async (url, certs) => {
    const connect = webSocketConnector(url, { tls: { caCerts: [certs.ca] } });
    await roundTrip(new MqttClient({ connect, reconnect: false, protocolVersion: 5 }), "wss/roundtrip");
    // The same CA through a Deno.HttpClient of the caller's, which the connector leaves open.
    const httpClient = Deno.createHttpClient({ caCerts: [certs.ca] });
    try {
      const viaClient = webSocketConnector(url, { client: httpClient });
      await roundTrip(new MqttClient({ connect: viaClient, reconnect: false }), "wss/client");
    } finally {
      httpClient.close();
    }
  },
);
