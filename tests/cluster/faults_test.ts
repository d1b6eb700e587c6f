/**
 * Faults with real processes: cluster brokers as subprocesses on one real Redis, SIGKILLed, SIGSTOPped and
 * SIGCONTed, and Redis itself SIGKILLed and restarted from its AOF or empty. Clients are this project's client
 * and raw wire clients (for the exact CONNACK bytes). Leases are short (1 s, 4 s where an outage must stay under
 * the self-fencing time); counts and deadlines are bounded; at most 3 brokers and Redis run at once.
 */

import assert from "node:assert/strict";
import type { IClientOptions, MqttClient as MqttJsClient } from "mqtt";
import { MqttClient } from "../../lib/client/client.ts";
import type { MqttMessage } from "../../lib/client/inbox.ts";
import type { MqttClientOptions } from "../../lib/client/options.ts";
import { connectPacket, type ConnectSpec, toHex, WireClient } from "../broker/_wire.ts";
import { testIf } from "../_permissions.ts";
import { type RedisServer, redisUnavailable, withRedis } from "../_redis.ts";
import { ClusterBroker, clusterProcessUnavailable } from "./_cluster_process.ts";

const UNAVAILABLE = [redisUnavailable(), clusterProcessUnavailable()];
const decoder = new TextDecoder();

/** A connected client of ours whose messages are collected as they come. */
class Receiver {
  readonly client: MqttClient;
  readonly got: string[] = [];
  #reading: Promise<void> | undefined;

  constructor(client: MqttClient) {
    this.client = client;
  }

  start(): void {
    this.#reading = (async () => {
      try {
        for await (const message of this.client.messages()) this.got.push(describe(message));
      } catch {
        // the connection ended: what came is in `got`
      }
    })();
  }

  /** Waits until `done()` holds, for at most `ms`. */
  async until(what: string, done: () => boolean, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${this.got.join(" ")}`);
      await sleep(25);
    }
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => {});
    await this.#reading;
  }
}

function describe(message: MqttMessage): string {
  return `${message.topic}=${decoder.decode(message.payload)}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What one fault test gets. */
interface FaultCluster {
  readonly redis: RedisServer;
  readonly brokers: ClusterBroker[];
  /** Connects a client of ours to `broker` (not reconnecting by itself). */
  client(broker: ClusterBroker, options: MqttClientOptions): Promise<MqttClient>;
  /** The same, collecting what it receives. */
  receiver(broker: ClusterBroker, options: MqttClientOptions): Promise<Receiver>;
  /** An MQTT.js client connected to `broker` (no reconnects), with what it receives as `topic=payload`. */
  mqttjs(broker: ClusterBroker, options: IClientOptions): Promise<{ client: MqttJsClient; got: string[] }>;
}

async function withFaultCluster(
  nodes: readonly string[],
  leaseMs: number,
  body: (cluster: FaultCluster) => Promise<void>,
): Promise<void> {
  await withRedis(async (redis) => {
    const brokers: ClusterBroker[] = [];
    const clients: MqttClient[] = [];
    const receivers: Receiver[] = [];
    const mqttjsClients: MqttJsClient[] = [];
    const client = async (broker: ClusterBroker, options: MqttClientOptions): Promise<MqttClient> => {
      const c = new MqttClient({ hostname: "127.0.0.1", port: broker.port, reconnect: false, ...options });
      clients.push(c);
      await c.connect();
      return c;
    };
    const receiver = async (broker: ClusterBroker, options: MqttClientOptions): Promise<Receiver> => {
      const r = new Receiver(await client(broker, options));
      receivers.push(r);
      r.start();
      return r;
    };
    const mqttjs = async (
      broker: ClusterBroker,
      options: IClientOptions,
    ): Promise<{ client: MqttJsClient; got: string[] }> => {
      const { default: mqtt } = await import("mqtt");
      const got: string[] = [];
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, {
        reconnectPeriod: 0,
        ...options,
      });
      mqttjsClients.push(c);
      c.on("message", (topic, payload) => got.push(`${topic}=${payload.toString()}`));
      return { client: c, got };
    };
    try {
      for (const node of nodes) {
        brokers.push(await ClusterBroker.start({ redis: redis.url, node, leaseMs, dir: redis.dir }));
      }
      await body({ redis, brokers, client, receiver, mqttjs });
    } finally {
      for (const c of mqttjsClients) await c.endAsync(true).catch(() => {});
      for (const r of receivers) await r.close();
      for (const c of clients) await c.close().catch(() => {});
      for (const broker of brokers) await broker.stop();
    }
    // TCP, as the broker task's permissions allow; fsync always: the AOF case checks that nothing acknowledged is lost.
  }, { tcp: true, appendfsync: "always" });
}

/** Publishes QoS 0 probes on `topic` from `pub` until `sub` has one: the route from there to here is in place. */
async function routed(pub: MqttClient, sub: Receiver, topic: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!sub.got.some((entry) => entry.startsWith(`${topic}=`))) {
    if (Date.now() > deadline) throw new Error(`no route for ${topic}`);
    await pub.publish(topic, "probe", { qos: 0 });
    await sleep(50);
  }
}

/** A raw CONNECT to `port`: answers the CONNACK's bytes. */
async function rawConnack(port: number, spec: ConnectSpec): Promise<string> {
  const wire = new WireClient(await Deno.connect({ hostname: "127.0.0.1", port }), spec.version);
  try {
    await wire.send(connectPacket(spec));
    // A CONNECT may wait for one bounded engine call (the command timeout) before it is refused.
    const frame = await wire.nextOrEnd(6000, "CONNACK");
    if (frame === undefined) throw new Error("connection closed before CONNACK");
    return toHex(frame);
  } finally {
    await wire.close();
  }
}

/** v5 CONNACK Server unavailable [MQTT-3.2.2-6 (5.0)]; v3 return code 3 Server unavailable (3.1.1 section 3.2.2.3). */
const REFUSED_V5 = /^20 [0-9a-f]{2} 00 88/;
const REFUSED_V3 = "20 02 00 03";

testIf(
  "SIGKILL of a node: its client's will goes out on another node, and acknowledged QoS 1 messages of a persistent session reach it on a third",
  UNAVAILABLE,
  async () => {
    await withFaultCluster(["a", "b", "c"], 1000, async ({ brokers: [a, b, c], client, receiver }) => {
      const watcher = await receiver(b!, { clientId: "watcher" });
      await watcher.client.subscribe("will/#", { qos: 1 });
      await client(a!, {
        clientId: "holder",
        protocolVersion: 4,
        cleanStart: false,
        will: { topic: "will/holder", payload: "gone", qos: 1 },
      });
      const sub = await receiver(a!, { clientId: "sub", protocolVersion: 4, cleanStart: false });
      await sub.client.subscribe("data/#", { qos: 1 });
      const pub = await client(c!, { clientId: "pub" });
      await routed(pub, sub, "data/probe");
      await sub.close(); // offline: what comes now is queued in its session, held by a
      for (let i = 1; i <= 20; i++) await pub.publish(`data/${i}`, `m${i}`, { qos: 1 });
      const killed = Date.now();
      await a!.stop();
      for (let i = 21; i <= 30; i++) await pub.publish(`data/${i}`, `m${i}`, { qos: 1 });
      await watcher.until("the will of holder", () => watcher.got.includes("will/holder=gone"), 15_000);
      const willAfter = Date.now() - killed;
      assert.ok(willAfter < 1000 * 6, `will within lease + sweep (${willAfter} ms)`);
      assert.equal(watcher.got.filter((m) => m === "will/holder=gone").length, 1, "the will once");
      const back = await receiver(c!, { clientId: "sub", protocolVersion: 4, cleanStart: false });
      await back.until("every acknowledged message", () => {
        const seen = new Set(back.got);
        for (let i = 1; i <= 30; i++) if (!seen.has(`data/${i}=m${i}`)) return false;
        return true;
      });
    });
  },
);

testIf(
  "SIGKILL of a node right after a will-carrying client's CONNACK: the will is stored already, and the adopter publishes it once",
  UNAVAILABLE,
  async () => {
    await withFaultCluster(["a", "b"], 4000, async ({ redis, brokers: [a, b], client, receiver }) => {
      const watcher = await receiver(b!, { clientId: "watcher" });
      await watcher.client.subscribe("will/#", { qos: 1 });
      // A session a holds: the next CONNECT of this id on a needs no claim, only its will written.
      const first = await client(a!, { clientId: "holder", protocolVersion: 4, cleanStart: false });
      await first.close();
      await sleep(200);
      // Writes held in Redis for a moment: an unawaited will write is still waiting there when a dies.
      await redis.command("CLIENT", "PAUSE", 300, "WRITE");
      await client(a!, {
        clientId: "holder",
        protocolVersion: 4,
        cleanStart: false,
        will: { topic: "will/holder", payload: "gone", qos: 1 },
      });
      a!.signal("SIGKILL");
      await watcher.until("the will of holder", () => watcher.got.includes("will/holder=gone"), 15_000);
      await sleep(500);
      assert.equal(watcher.got.filter((m) => m === "will/holder=gone").length, 1, "the will once");
    });
  },
);

testIf(
  "SIGSTOP past the lease, then SIGCONT: the paused node fences itself and delivers nothing twice",
  UNAVAILABLE,
  async () => {
    await withFaultCluster(["a", "b"], 1000, async ({ brokers: [a, b], receiver, client }) => {
      const old = await receiver(a!, { clientId: "s", protocolVersion: 4, cleanStart: false, keepAlive: 0 });
      await old.client.subscribe("data/#", { qos: 1 });
      const pub = await client(b!, { clientId: "pub" });
      await routed(pub, old, "data/probe");
      a!.signal("SIGSTOP");
      try {
        await sleep(3000); // three leases: declared dead, its sessions up for adoption
        const moved = await receiver(b!, { clientId: "s", protocolVersion: 4, cleanStart: false });
        for (let i = 1; i <= 10; i++) await pub.publish(`data/${i}`, `m${i}`, { qos: 1 });
        await moved.until(
          "m1..m10 on b",
          () => moved.got.filter((m) => m.startsWith("data/") && !m.endsWith("probe")).length >= 10,
        );
      } finally {
        a!.signal("SIGCONT");
      }
      // The old connection is closed by the fenced node, and got none of what was published after the pause.
      await old.until("the old connection closed", () => old.client.state.kind === "closed", 10_000);
      assert.deepEqual(
        old.got.filter((m) => !m.endsWith("probe")),
        [],
        "nothing delivered by the paused node",
      );
      for (let i = 11; i <= 15; i++) await pub.publish(`data/${i}`, `m${i}`, { qos: 1 });
      await sleep(500);
      assert.deepEqual(old.got.filter((m) => !m.endsWith("probe")), []);
    });
  },
);

/** A Redis outage: how it starts and how it ends. */
interface Outage {
  readonly name: string;
  begin(redis: RedisServer): Promise<void>;
  end(redis: RedisServer): Promise<void>;
}

const OUTAGES: readonly Outage[] = [
  {
    name: "SIGKILLed and restarted from its AOF",
    begin: (redis) => redis.kill(),
    end: (redis) => redis.restart(),
  },
  {
    name: "SIGKILLed and restarted empty",
    begin: (redis) => redis.kill(),
    end: (redis) => redis.restart({ empty: true }),
  },
  {
    // Hung, not gone: connections stay open and nothing answers; calls are bounded by the command timeout.
    name: "stopped (SIGSTOP) and continued",
    begin: (redis) => Promise.resolve(redis.pause()),
    end: (redis) => Promise.resolve(redis.resume()),
  },
];

for (const outage of OUTAGES) {
  testIf(
    `Redis ${outage.name}: local QoS 0 flows, CONNECT is refused (v5 0x88, v3 0x03), everything recovers without restarting brokers`,
    UNAVAILABLE,
    async () => {
      await withFaultCluster(["a", "b"], 4000, async ({ redis, brokers: [a, b], client, receiver }) => {
        const local = await receiver(a!, { clientId: "local-sub" });
        await local.client.subscribe("local/#", { qos: 0 });
        const localPub = await client(a!, { clientId: "local-pub" });
        const remote = await receiver(b!, { clientId: "remote-sub" });
        await remote.client.subscribe("x/#", { qos: 1 });
        await routed(localPub, remote, "x/probe");
        await outage.begin(redis);
        try {
          // CONNECT is refused while ownership cannot be fenced.
          const deadline = Date.now() + 6000;
          let v5 = "";
          while (!REFUSED_V5.test(v5)) {
            assert.ok(Date.now() < deadline, `CONNECT during the outage: ${v5}`);
            v5 = await rawConnack(a!.port, { version: 5, clientId: "during-5" });
          }
          assert.equal(await rawConnack(a!.port, { version: 4, clientId: "during-4" }), REFUSED_V3);
          for (let i = 1; i <= 20; i++) await localPub.publish(`local/${i}`, `q${i}`, { qos: 0 });
          await local.until("local QoS 0 during the outage", () => local.got.includes("local/20=q20"), 2000);
        } finally {
          await outage.end(redis);
        }
        // Recovery by itself: a CONNECT is accepted again, and cross-node delivery resumes.
        const back = Date.now() + 10_000;
        while (true) {
          const connack = await rawConnack(a!.port, { version: 4, clientId: "after" });
          if (connack === "20 02 00 00") break;
          assert.ok(Date.now() < back, `CONNECT after the outage: ${connack}`);
          await sleep(100);
        }
        await routed(localPub, remote, "x/probe-after");
        await localPub.publish("x/after", "ok", { qos: 1 });
        await remote.until("x/after on b", () => remote.got.includes("x/after=ok"));
      });
    },
  );
}
