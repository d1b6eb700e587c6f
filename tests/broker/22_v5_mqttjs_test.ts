/**
 * MQTT 5.0 interop with MQTT.js (npm `mqtt`, pinned in deno.json, `protocolVersion: 5`): topic aliases both ways,
 * subscription identifiers, shared subscriptions across two clients, message expiry on a ManualClock, and a
 * request/response round trip with Response Topic and Correlation Data.
 *
 * MQTT.js reads the environment and files when it loads, so these tests need `--allow-env` and `--allow-read`;
 * without them they are registered as ignored with a name that says which permission is missing.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { IClientOptions, IConnackPacket, IPublishPacket, MqttClient, Packet } from "mqtt";
import { Broker, type BrokerOptions } from "../../lib/broker/broker.ts";
import { ManualClock } from "../../lib/clock.ts";
import { waitFor } from "./_wire.ts";

const missing = (["env", "read"] as const).filter((name) =>
  Deno.permissions.querySync({ name }).state !== "granted"
);
const SKIP = missing.length === 0
  ? ""
  : ` (ignored: needs ${missing.map((name) => `--allow-${name}`).join(" ")} to load MQTT.js)`;

/** A message as MQTT.js handed it over. */
interface Received {
  readonly topic: string;
  readonly payload: string;
  readonly packet: IPublishPacket;
}

/** A connected MQTT.js client and what it received. */
interface Connected {
  readonly client: MqttClient;
  readonly connack: IConnackPacket;
  /** Waits for `count` more messages and takes them. */
  next(count: number): Promise<Received[]>;
  /** PUBLISH packets as written to and read from the wire: topic and Topic Alias at that moment. */
  readonly wire: { readonly sent: AliasUse[]; readonly received: AliasUse[] };
}

interface AliasUse {
  readonly topic: string;
  readonly alias: number | undefined;
}

interface Context {
  readonly broker: Broker;
  /** Connects MQTT.js with protocol 5 (no reconnects, no keep-alive pings) and waits for CONNACK. */
  connect(options: IClientOptions): Promise<Connected>;
}

/** Runs `fn` with a broker and MQTT.js; ends every client and closes the broker. */
async function withMqttJs(options: BrokerOptions, fn: (context: Context) => Promise<void>): Promise<void> {
  const mqtt = (await import("mqtt")).default;
  const broker = new Broker({ sysInterval: 0, ...options });
  const { port } = await broker.listen({ hostname: "127.0.0.1", port: 0 });
  const clients: MqttClient[] = [];
  const connect = (clientOptions: IClientOptions): Promise<Connected> => {
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      keepalive: 0,
      ...clientOptions,
    });
    clients.push(client);
    const messages: Received[] = [];
    let wake: (() => void) | undefined;
    client.on("message", (topic, payload, packet) => {
      messages.push({ topic, payload: payload.toString(), packet });
      wake?.();
    });
    const wire = { sent: [] as AliasUse[], received: [] as AliasUse[] };
    const record = (list: AliasUse[]) => (packet: Packet) => {
      if (packet.cmd !== "publish") return;
      list.push({ topic: packet.topic.toString(), alias: packet.properties?.topicAlias });
    };
    client.on("packetsend", record(wire.sent));
    client.on("packetreceive", record(wire.received));
    const next = async (count: number): Promise<Received[]> => {
      const deadline = Date.now() + 5000;
      while (messages.length < count) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        });
        clearTimeout(timer);
        wake = undefined;
        if (Date.now() >= deadline && messages.length < count) {
          throw new Error(`timed out waiting for ${count} messages, got ${messages.length}`);
        }
      }
      return messages.splice(0, count);
    };
    return new Promise<Connected>((resolve, reject) => {
      client.once("connect", (connack) => resolve({ client, connack, next, wire }));
      client.once("error", reject);
    });
  };
  try {
    await fn({ broker, connect });
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await broker.close();
    // MQTT.js's message store stream emits 'close' from a setTimeout(0) after destroy() (lib/store.js); let it
    // run so the op sanitizer does not see the library's timer as ours (it failed about one run in five).
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** The Subscription Identifiers of a received PUBLISH, sorted (mqtt-packet gives one as a number, several as an array). */
function subscriptionIds(packet: IPublishPacket): number[] {
  const ids = packet.properties?.subscriptionIdentifier;
  return ids === undefined ? [] : (Array.isArray(ids) ? [...ids] : [ids]).sort((a, b) => a - b);
}

Deno.test({
  name: `MQTT.js v5: topic aliases from MQTT.js (autoAssignTopicAlias) are resolved by the broker${SKIP}`,
  ignore: missing.length > 0,
  fn: async () => {
    await withMqttJs({ topicAliasMaximum: 2 }, async ({ connect }) => {
      const sub = await connect({ clientId: "sub" });
      await sub.client.subscribeAsync("alias/#", { qos: 1 });
      const pub = await connect({ clientId: "pub", autoAssignTopicAlias: true });
      assert.equal(pub.connack.properties?.topicAliasMaximum, 2, "CONNACK Topic Alias Maximum");
      const topics = ["alias/a", "alias/a", "alias/b", "alias/a", "alias/b", "alias/a"];
      for (const [i, topic] of topics.entries()) await pub.client.publishAsync(topic, `${i}`, { qos: 1 });
      const received = await sub.next(topics.length);
      assert.deepEqual(received.map((m) => [m.topic, m.payload]), topics.map((t, i) => [t, `${i}`]));
      assert.ok(
        pub.wire.sent.some((p) => p.topic === "" && p.alias !== undefined),
        `MQTT.js sent some PUBLISH as an alias alone: ${JSON.stringify(pub.wire.sent)}`,
      );
      assert.ok(pub.wire.sent.every((p) => p.alias === undefined || (p.alias >= 1 && p.alias <= 2)));
    });
  },
});

Deno.test({
  name: `MQTT.js v5: the broker uses topic aliases towards MQTT.js within its topicAliasMaximum${SKIP}`,
  ignore: missing.length > 0,
  fn: async () => {
    await withMqttJs({}, async ({ connect }) => {
      const sub = await connect({ clientId: "sub", properties: { topicAliasMaximum: 1 } });
      await sub.client.subscribeAsync("down/#", { qos: 0 });
      const pub = await connect({ clientId: "pub" });
      const topics = ["down/a", "down/a", "down/b", "down/a", "down/b"];
      for (const [i, topic] of topics.entries()) await pub.client.publishAsync(topic, `${i}`);
      const received = await sub.next(topics.length);
      assert.deepEqual(received.map((m) => m.topic), topics, "MQTT.js resolved every alias to its topic");
      const onWire = sub.wire.received;
      assert.equal(
        onWire[1]?.topic,
        "",
        `the repeated topic came as an alias alone: ${JSON.stringify(onWire)}`,
      );
      assert.ok(
        onWire.every((p) => p.alias === undefined || p.alias === 1),
        "never above the client's maximum",
      );
    });
  },
});

Deno.test({
  name:
    `MQTT.js v5: subscription identifiers arrive in packet.properties, every matching one [MQTT-3.3.4-3 (5.0)]${SKIP}`,
  ignore: missing.length > 0,
  fn: async () => {
    await withMqttJs({}, async ({ connect }) => {
      const sub = await connect({ clientId: "sub" });
      await sub.client.subscribeAsync("ids/+", { qos: 1, properties: { subscriptionIdentifier: 3 } });
      await sub.client.subscribeAsync("ids/#", { qos: 1, properties: { subscriptionIdentifier: 4 } });
      await sub.client.subscribeAsync("other", { qos: 1 });
      const pub = await connect({ clientId: "pub" });
      await pub.client.publishAsync("ids/x", "both", { qos: 1 });
      await pub.client.publishAsync("other", "none", { qos: 1 });
      const [both, none] = await sub.next(2);
      assert.equal(both?.payload, "both");
      assert.deepEqual(subscriptionIds(both!.packet), [3, 4], "one copy with both identifiers");
      assert.equal(none?.payload, "none");
      assert.deepEqual(subscriptionIds(none!.packet), [], "no identifier without one");
    });
  },
});

Deno.test({
  name: `MQTT.js v5: a shared subscription spreads messages across two MQTT.js clients, each once${SKIP}`,
  ignore: missing.length > 0,
  fn: async () => {
    await withMqttJs({}, async ({ connect }) => {
      const first = await connect({ clientId: "worker1" });
      const second = await connect({ clientId: "worker2" });
      await first.client.subscribeAsync("$share/workers/jobs/+", { qos: 1 });
      await second.client.subscribeAsync("$share/workers/jobs/+", { qos: 1 });
      const pub = await connect({ clientId: "pub" });
      for (let i = 0; i < 6; i++) await pub.client.publishAsync(`jobs/${i}`, `${i}`, { qos: 1 });
      const [a, b] = await Promise.all([first.next(3), second.next(3)]);
      assert.deepEqual(
        [...a, ...b].map((m) => m.payload).sort(),
        ["0", "1", "2", "3", "4", "5"],
        "each job exactly once, three each",
      );
    });
  },
});

Deno.test({
  name:
    `MQTT.js v5: a message waiting 20 s for an offline session arrives with 40 s of its 60 left [MQTT-3.3.2-6 (5.0)]${SKIP}`,
  ignore: missing.length > 0,
  fn: async () => {
    const clock = new ManualClock(1_000_000);
    await withMqttJs({ clock }, async ({ connect, broker }) => {
      const persistent = { clientId: "away", clean: false, properties: { sessionExpiryInterval: 300 } };
      const sub = await connect(persistent);
      await sub.client.subscribeAsync("expiring", { qos: 1 });
      await sub.client.endAsync();
      await waitFor(() => broker.session("away")?.link === undefined, "the broker to see the client go");
      const pub = await connect({ clientId: "pub" });
      await pub.client.publishAsync("expiring", "soon", {
        qos: 1,
        properties: { messageExpiryInterval: 60 },
      });
      await pub.client.publishAsync("expiring", "too soon", {
        qos: 1,
        properties: { messageExpiryInterval: 10 },
      });
      assert.equal(broker.session("away")?.queued, 2, "both queued for the offline session");
      clock.advance(20_000);
      const back = await connect(persistent);
      assert.equal(back.connack.sessionPresent, true);
      const [message] = await back.next(1);
      assert.equal(message?.payload, "soon", "the expired one was dropped [MQTT-3.3.2-5 (5.0)]");
      assert.equal(message?.packet.properties?.messageExpiryInterval, 40);
    });
  },
});

Deno.test({
  name: `MQTT.js v5: request/response: Response Topic and Correlation Data make the round trip${SKIP}`,
  ignore: missing.length > 0,
  fn: async () => {
    await withMqttJs({ responseInformation: "replies/" }, async ({ connect }) => {
      const requester = await connect({
        clientId: "requester",
        properties: { requestResponseInformation: true },
      });
      const base = requester.connack.properties?.responseInformation;
      assert.equal(base, "replies/", "Response Information from the broker");
      const responder = await connect({ clientId: "responder" });
      await responder.client.subscribeAsync("service/add", { qos: 1 });
      responder.client.on("message", (_topic, payload, packet) => {
        const [x, y] = payload.toString().split("+").map(Number);
        responder.client.publish(packet.properties!.responseTopic!, `${x! + y!}`, {
          qos: 1,
          properties: { correlationData: packet.properties!.correlationData! },
        });
      });
      const replyTopic = `${base}requester`;
      await requester.client.subscribeAsync(replyTopic, { qos: 1 });
      const correlation = Buffer.from([0, 1, 254, 255]);
      await requester.client.publishAsync("service/add", "2+2", {
        qos: 1,
        properties: { responseTopic: replyTopic, correlationData: correlation },
      });
      const [reply] = await requester.next(1);
      assert.equal(reply?.topic, replyTopic);
      assert.equal(reply?.payload, "4");
      assert.deepEqual(
        [...reply!.packet.properties!.correlationData!],
        [...correlation],
        "Correlation Data intact",
      );
    });
  },
});
