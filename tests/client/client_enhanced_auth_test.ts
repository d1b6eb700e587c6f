/**
 * MqttClient with v5 enhanced authentication (SCRAM-SHA-256) against our broker over the in-memory transport,
 * through the `connect` seam. Needs no permission.
 */

import assert from "node:assert/strict";
import { Broker } from "../../lib/broker/broker.ts";
import { scramCredential } from "../../lib/auth/scram.ts";
import { ScramSha256 } from "../../lib/broker/auth/scram.ts";
import { MqttClient } from "../../lib/client/client.ts";
import type { MqttClientOptions } from "../../lib/client/options.ts";
import type { Connector } from "../../lib/client/connector.ts";
import { scramSha256 } from "../../lib/client/enhanced_auth.ts";
import { MqttError } from "../../lib/mqtt_error.ts";
import type { Packet } from "../../lib/packet/packet.ts";
import { memoryPair } from "../../lib/transport/memory.ts";

async function withScramBroker(fn: (connector: Connector) => Promise<void>): Promise<void> {
  const users = new Map([["alice", await scramCredential("wonderland", 4096)]]);
  const broker = new Broker({ sysInterval: 0, authMethods: [new ScramSha256((name) => users.get(name))] });
  await broker.start();
  const served: Promise<void>[] = [];
  try {
    await fn(() => {
      const [client, server] = memoryPair();
      served.push(broker.handle(server, { remoteAddress: "127.0.0.1:1", allowAnonymous: true }));
      return Promise.resolve(client);
    });
  } finally {
    await broker.close();
    await Promise.all(served);
  }
}

function client(connector: Connector, options: MqttClientOptions): MqttClient {
  return new MqttClient({ connect: connector, reconnect: false, keepAlive: 0, ...options });
}

Deno.test("enhanced authentication: SCRAM-SHA-256 through AUTH challenges, the server's proof checked", async () => {
  await withScramBroker(async (connector) => {
    const packets: string[] = [];
    const observe = (direction: "in" | "out", packet: Packet): void => {
      packets.push(`${direction} ${packet.type}${packet.type === 15 ? `:${packet.reasonCode}` : ""}`);
    };
    const c = client(connector, { enhancedAuth: scramSha256("alice", "wonderland"), onPacket: observe });
    const result = await c.connect();
    assert.equal(result.properties?.authenticationMethod, "SCRAM-SHA-256");
    assert.deepEqual(packets, ["out 1", "in 15:24", "out 15:24", "in 2"]); // CONNECT, AUTH, AUTH, CONNACK
    await c.subscribe("s");
    await c.publish("s", "authenticated", { qos: 1 });
    const message = await c.messages().next();
    assert.equal(new TextDecoder().decode(message.value!.payload), "authenticated");
    await c.close();
  });
});

Deno.test("enhanced authentication: a wrong password is refused with the broker's reason code", async () => {
  await withScramBroker(async (connector) => {
    const c = client(connector, { enhancedAuth: scramSha256("alice", "looking-glass") });
    await assert.rejects(c.connect(), (error: unknown) => {
      assert.ok(error instanceof MqttError);
      assert.ok(error.reasonCode === 0x86 || error.reasonCode === 0x87, error.message);
      return true;
    });
    assert.equal(c.state.kind, "closed");
  });
});
