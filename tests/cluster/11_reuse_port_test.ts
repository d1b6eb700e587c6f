/**
 * Several cluster brokers on one port (`--reuse-port`, SO_REUSEPORT): the README's way to use every core of one
 * machine without a balancer. Linux spreads the connections over the processes; the cluster makes them one
 * broker. Subprocesses started as `deno task broker` starts them, on one real Redis.
 */

import assert from "node:assert/strict";
import { MqttClient } from "../../lib/client/client.ts";
import { testIf } from "../_permissions.ts";
import { redisUnavailable, withRedis } from "../_redis.ts";
import { ClusterBroker, clusterProcessUnavailable, freePort, sleep } from "./_cluster_process.ts";

const decoder = new TextDecoder();
const CLIENTS = 16;

testIf(
  "--reuse-port: two cluster nodes listen on one port, connections spread over both, and a message crosses between them",
  [redisUnavailable(), clusterProcessUnavailable()],
  async () => {
    await withRedis(async (redis) => {
      const port = freePort();
      const brokers: ClusterBroker[] = [];
      const clients: MqttClient[] = [];
      try {
        for (const node of ["a", "b"]) {
          brokers.push(
            await ClusterBroker.start({
              redis: redis.url,
              node,
              dir: redis.dir,
              args: ["-p", String(port), "--reuse-port"],
            }),
          );
        }
        assert.deepEqual(brokers.map((b) => b.port), [port, port], "both listen on the one port");
        for (let i = 0; i < CLIENTS; i++) {
          const c = new MqttClient({ hostname: "127.0.0.1", port, clientId: `c${i}`, reconnect: false });
          clients.push(c);
          await c.connect();
        }
        const nodeOf = (clientId: string): string | undefined =>
          brokers.find((b) => new RegExp(`client ${clientId} connected from`).test(b.output))?.node;
        const nodes = clients.map((c) => nodeOf(c.clientId));
        assert.ok(nodes.every((n) => n !== undefined), `every client logged by a node: ${nodes.join(" ")}`);
        // Linux picks the socket by a hash of the connection's addresses and ports: all 16 on one node has a
        // chance of 2 × 2^-16.
        assert.equal(new Set(nodes).size, 2, `connections spread over both nodes: ${nodes.join(" ")}`);

        const sub = clients[0]!;
        const pub = clients[nodes.findIndex((n) => n !== nodes[0])]!;
        const got: string[] = [];
        const reading = (async () => {
          for await (const m of sub.messages()) got.push(`${m.topic}=${decoder.decode(m.payload)}`);
        })().catch(() => {});
        await sub.subscribe("shared/port/#", { qos: 1 });
        const deadline = Date.now() + 10_000;
        while (!got.includes("shared/port/1=hello")) {
          if (Date.now() > deadline) throw new Error(`nothing crossed between the nodes: ${got.join(" ")}`);
          await pub.publish("shared/port/1", "hello", { qos: 1 });
          await sleep(50);
        }
        for (const c of clients) await c.close();
        await reading;
      } finally {
        for (const c of clients) await c.close().catch(() => {});
        for (const broker of brokers) await broker.stop();
      }
    }, { tcp: true });
  },
);
