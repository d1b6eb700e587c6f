/**
 * The client over the broker's other transports: TLS (`tlsConnector`) and MQTT over WebSocket
 * (`webSocketConnector`), each a QoS 1 round trip through our broker's listeners.
 */

import assert from "node:assert/strict";
import { MqttClient } from "../../lib/client/client.ts";
import { tlsConnector, webSocketConnector } from "../../lib/client/connector.ts";
import { certificatesUnavailable, makeCertificates } from "../broker/server/_certs.ts";
import { within, withListeners } from "../broker/server/_helpers.ts";

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

const noCerts = certificatesUnavailable();
Deno.test({
  name: `MqttClient over TLS (tlsConnector) to a tls listener: QoS 1 round trip${
    noCerts === undefined ? "" : ` (ignored: ${noCerts})`
  }`,
  ignore: noCerts !== undefined,
  async fn() {
    const certs = await makeCertificates();
    try {
      await withListeners(
        [{ type: "tls", hostname: "127.0.0.1", port: 0, cert: certs.serverCert, key: certs.serverKey }],
        async (running) => {
          const port = Number(new URL(running.listeners[0]!.url).port);
          const client = new MqttClient({
            connect: tlsConnector("localhost", port, { caCerts: [certs.ca] }),
            reconnect: false,
            protocolVersion: 4,
          });
          await roundTrip(client, "tls/roundtrip");
        },
      );
    } finally {
      await certs.remove();
    }
  },
});
