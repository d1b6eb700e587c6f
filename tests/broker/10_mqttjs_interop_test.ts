/**
 * Interop with MQTT.js (npm `mqtt`, pinned in deno.json) over TCP, for protocol 4 and 5: QoS 0/1/2, retained
 * messages, wills and a persistent session resumed with queued QoS 1 messages.
 *
 * MQTT.js reads the environment and files when it loads, so these tests need `--allow-env` and `--allow-read`;
 * without them they are registered as ignored with a name that says so.
 */

import assert from "node:assert/strict";
import type { IClientOptions, MqttClient } from "mqtt";
import { Broker } from "../../lib/broker/broker.ts";

const granted = (name: "env" | "read"): boolean => Deno.permissions.querySync({ name }).state === "granted";
const permitted = granted("env") && granted("read");
const SKIP = permitted ? "" : " (ignored: needs --allow-env --allow-read to load MQTT.js)";

type Connect = (url: string, options: IClientOptions) => MqttClient;

/** Loads MQTT.js only when it can run. */
async function loadMqtt(): Promise<Connect> {
  const mod = await import("mqtt");
  return mod.default.connect;
}

interface Received {
  readonly topic: string;
  readonly payload: string;
  readonly qos: number;
  readonly retain: boolean;
}

interface Inbox {
  /** Waits for `count` more messages and takes them. */
  next(count: number): Promise<Received[]>;
}

/** Collects messages of a client from now on. */
function inbox(client: MqttClient): Inbox {
  const messages: Received[] = [];
  let wake: (() => void) | undefined;
  client.on("message", (topic, payload, packet) => {
    messages.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain });
    wake?.();
  });
  return {
    async next(count: number): Promise<Received[]> {
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
          throw new Error(`timed out waiting for ${count} messages, got ${JSON.stringify(messages)}`);
        }
      }
      return messages.splice(0, count);
    },
  };
}

/** A connected MQTT.js client, its inbox (listening before CONNECT went out) and its CONNACK. */
interface Connected {
  readonly client: MqttClient;
  readonly messages: Inbox;
  readonly sessionPresent: boolean;
}

/** Runs `fn` with a broker and MQTT.js; ends every client and closes the broker. */
async function withMqttJs(
  fn: (connect: (options: IClientOptions) => Promise<Connected>) => Promise<void>,
): Promise<void> {
  const connect = await loadMqtt();
  const broker = new Broker({ sysInterval: 0 });
  const { port } = await broker.listen({ hostname: "127.0.0.1", port: 0 });
  const clients: MqttClient[] = [];
  try {
    await fn((options) => {
      const client = connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, ...options });
      clients.push(client);
      const messages = inbox(client);
      return new Promise<Connected>((resolve, reject) => {
        client.once(
          "connect",
          (connack) => resolve({ client, messages, sessionPresent: connack.sessionPresent }),
        );
        client.once("error", reject);
      });
    });
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await broker.close();
    // MQTT.js's message store stream emits 'close' from a setTimeout(0) after destroy() (lib/store.js); let it
    // run so the op sanitizer does not see the library's timer as ours.
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

for (const protocolVersion of [4, 5] as const) {
  const name = (what: string) => `MQTT.js v${protocolVersion}: ${what}${SKIP}`;

  Deno.test({
    name: name("QoS 0, 1 and 2 published and received at the subscription's QoS"),
    ignore: !permitted,
    fn: async () => {
      await withMqttJs(async (connect) => {
        const { client: sub, messages } = await connect({
          protocolVersion,
          clientId: `sub${protocolVersion}`,
        });
        const granted = await sub.subscribeAsync({ "it/q2": { qos: 2 }, "it/q1": { qos: 1 } });
        assert.deepEqual(granted.map((g) => g.qos), [2, 1]);
        const { client: pub } = await connect({ protocolVersion, clientId: `pub${protocolVersion}` });
        for (const qos of [0, 1, 2] as const) {
          await pub.publishAsync("it/q2", `q${qos}`, { qos });
          await pub.publishAsync("it/q1", `q${qos}`, { qos });
        }
        const received = await messages.next(6);
        const byTopic = (topic: string) => received.filter((m) => m.topic === topic);
        assert.deepEqual(byTopic("it/q2").map((m) => [m.payload, m.qos]), [["q0", 0], ["q1", 1], ["q2", 2]]);
        assert.deepEqual(byTopic("it/q1").map((m) => [m.payload, m.qos]), [["q0", 0], ["q1", 1], ["q2", 1]]);
      });
    },
  });

  Deno.test({
    name: name("a retained message reaches a later subscriber with retain set"),
    ignore: !permitted,
    fn: async () => {
      await withMqttJs(async (connect) => {
        const { client: pub } = await connect({ protocolVersion, clientId: "retainer" });
        await pub.publishAsync("it/retained", "kept", { qos: 1, retain: true });
        const { client: sub, messages } = await connect({ protocolVersion, clientId: "late" });
        await sub.subscribeAsync("it/retained", { qos: 1 });
        const [message] = await messages.next(1);
        assert.deepEqual(message, { topic: "it/retained", payload: "kept", qos: 1, retain: true });
      });
    },
  });

  Deno.test({
    name: name("the will is published when the connection drops without DISCONNECT"),
    ignore: !permitted,
    fn: async () => {
      await withMqttJs(async (connect) => {
        const { client: watcher, messages } = await connect({ protocolVersion, clientId: "watcher" });
        await watcher.subscribeAsync("it/will", { qos: 1 });
        const { client: dying } = await connect({
          protocolVersion,
          clientId: "dying",
          will: { topic: "it/will", payload: "gone", qos: 1, retain: false },
        });
        dying.stream.destroy(); // the network drops: no DISCONNECT
        const [message] = await messages.next(1);
        assert.deepEqual(message, { topic: "it/will", payload: "gone", qos: 1, retain: false });
      });
    },
  });

  Deno.test({
    name: name("a persistent session resumes with the QoS 1 messages queued while away"),
    ignore: !permitted,
    fn: async () => {
      await withMqttJs(async (connect) => {
        const options: IClientOptions = {
          protocolVersion,
          clientId: `resume${protocolVersion}`,
          clean: false,
          ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}),
        };
        const first = await connect(options);
        assert.equal(first.sessionPresent, false);
        await first.client.subscribeAsync("it/queued", { qos: 1 });
        await first.client.endAsync();
        const { client: pub } = await connect({ protocolVersion, clientId: "producer" });
        for (let i = 0; i < 3; i++) await pub.publishAsync("it/queued", `m${i}`, { qos: 1 });
        const again = await connect(options);
        assert.equal(again.sessionPresent, true, "CONNACK Session Present");
        const received = await again.messages.next(3);
        assert.deepEqual(received.map((m) => [m.payload, m.qos]), [["m0", 1], ["m1", 1], ["m2", 1]]);
      });
    },
  });
}
