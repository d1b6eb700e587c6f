/**
 * Where a node's peer link listens and what it advertises: the `cluster.peer` config key, the
 * `--cluster-peer HOST:PORT` flag's parser, and the `peer` cluster option (a wildcard bind with an advertised
 * address, or no link at all).
 *
 * @module
 */

import assert from "node:assert/strict";
import { Broker } from "../../lib/broker/broker.ts";
import { ConfigError, parseConfig } from "../../lib/broker/server/config.ts";
import { parsePeerFlag } from "../../lib/cluster/config.ts";
import type { ForwardBatch } from "../../lib/cluster/engine.ts";
import { MemoryCluster } from "../../lib/cluster/memory_engine.ts";
import type { ClusterOptions } from "../../lib/cluster/node.ts";
import { advertisedAddress } from "../../lib/cluster/peer_link.ts";
import { memoryPair } from "../../lib/transport/memory.ts";
import { assertPublish } from "../broker/_v5.ts";
import { connectPacket, publishPacket, subscribe, waitFor, WireClient } from "../broker/_wire.ts";
import { spyForwards } from "./_cluster.ts";

Deno.test("parseConfig() reads cluster.peer", () => {
  const peer = { host: "0.0.0.0", port: 7883, advertise: "10.0.0.5" };
  const config = parseConfig(JSON.stringify({ cluster: { redis: "redis://h:1", peer } }), "b.json");
  assert.deepEqual(config.cluster, { redis: "redis://h:1", peer });
  const off = parseConfig(JSON.stringify({ cluster: { redis: "redis://h:1", peer: false } }), "b.json");
  assert.deepEqual(off.cluster, { redis: "redis://h:1", peer: false });
});

const BAD: readonly (readonly [unknown, string])[] = [
  ["127.0.0.1:7883", "cluster.peer must be an object"],
  [{ port: 70000 }, "cluster.peer.port must be an integer from 0 to 65535"],
  [{ port: "7883" }, "cluster.peer.port must be an integer"],
  [{ host: 1 }, "cluster.peer.host must be a string"],
  [{ advertise: "" }, "cluster.peer.advertise must be HOST or HOST:PORT"],
  [{ bind: "x" }, "unknown key cluster.peer.bind"],
  [{ host: "0.0.0.0" }, 'cluster.peer.advertise is needed when cluster.peer.host is "0.0.0.0"'],
];

for (const [peer, message] of BAD) {
  Deno.test(`parseConfig() refuses cluster.peer ${JSON.stringify(peer)} naming the key`, () => {
    assert.throws(
      () => parseConfig(JSON.stringify({ cluster: { redis: "redis://h:1", peer } }), "b.json"),
      (error: unknown) => error instanceof ConfigError && error.message.includes(message),
    );
  });
}

Deno.test("parsePeerFlag() reads HOST:PORT and [IPV6]:PORT, and refuses what other nodes cannot reach", () => {
  assert.deepEqual(parsePeerFlag("10.0.0.5:7883"), { host: "10.0.0.5", port: 7883 });
  assert.deepEqual(parsePeerFlag("node-a.lan:0"), { host: "node-a.lan", port: 0 });
  assert.deepEqual(parsePeerFlag("[fd00::5]:7883"), { host: "fd00::5", port: 7883 });
  for (const bad of ["7883", "h:", "h:99999", "fd00::5:7883", "a b:1"]) {
    assert.match(parsePeerFlag(bad) as string, /must be HOST:PORT/, bad);
  }
  assert.match(parsePeerFlag("0.0.0.0:7883") as string, /binds every address/);
});

Deno.test("advertisedAddress() keeps a given port, else adds the bound one", () => {
  const bound: Deno.NetAddr = { transport: "tcp", hostname: "0.0.0.0", port: 4321 };
  assert.equal(advertisedAddress("10.0.0.5", bound), "10.0.0.5:4321");
  assert.equal(advertisedAddress("10.0.0.5:7000", bound), "10.0.0.5:7000");
  assert.equal(advertisedAddress("fd00::5", bound), "[fd00::5]:4321");
  assert.equal(advertisedAddress("[fd00::5]", bound), "[fd00::5]:4321");
  assert.equal(advertisedAddress("[fd00::5]:7000", bound), "[fd00::5]:7000");
  assert.equal(advertisedAddress(undefined, { ...bound, hostname: "127.0.0.1" }), "127.0.0.1:4321");
});

/** Two brokers on one memory cluster with `peer` options: a subscriber on node 0, a publisher on node 1. */
async function pair(
  peer: NonNullable<ClusterOptions["peer"]>,
  fn: (ctx: Pair) => Promise<void>,
): Promise<void> {
  const memory = new MemoryCluster();
  const brokers = [0, 1].map((i) =>
    new Broker({ sysInterval: 0, cluster: { engine: memory.engine(), node: `n${i}`, leaseMs: 5000, peer } })
  );
  const clients: WireClient[] = [];
  const served: Promise<void>[] = [];
  const connect = async (node: number, clientId: string): Promise<WireClient> => {
    const [ours, theirs] = memoryPair();
    served.push(brokers[node]!.handle(theirs, { remoteAddress: "memory", allowAnonymous: true }));
    const client = new WireClient(ours, 5);
    clients.push(client);
    await client.send(connectPacket({ version: 5, clientId }));
    await client.expectPacket(2, "CONNACK");
    return client;
  };
  try {
    for (const broker of brokers) await broker.start();
    const sub = await connect(0, "sub");
    await subscribe(sub, 1, [["t/#", 0]]);
    const source = brokers[0]!.cluster!;
    await source.summary.settled();
    const wanted = source.storedVersion;
    await waitFor(() => brokers[1]!.cluster!.sys.routesVersion >= wanted, "node 1 to route to node 0");
    const pub = await connect(1, "pub");
    await fn({ brokers, sub, pub, viaEngine: spyForwards(brokers[1]!.cluster!.engine) });
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    for (const broker of brokers) await broker.close();
    await Promise.all(served);
    memory.close();
  }
}

interface Pair {
  readonly brokers: readonly Broker[];
  readonly sub: WireClient;
  readonly pub: WireClient;
  /** Node 1's QoS 0 forwards through the engine from the start of `fn`. */
  readonly viaEngine: ForwardBatch[];
}

Deno.test("a node bound on every address advertises the one it was given, and QoS 0 crosses over it", async () => {
  await pair({ host: "0.0.0.0", advertise: "127.0.0.1" }, async ({ brokers, sub, pub, viaEngine }) => {
    assert.match(brokers[0]!.cluster!.peers!.address, /^127\.0\.0\.1:[1-9]\d*$/);
    await pub.send(publishPacket(5, { topic: "t/1", payload: "one" }));
    assertPublish(await sub.nextPacket(), { topic: "t/1", payload: "one" });
    const link = brokers[1]!.cluster!.peers!.link(brokers[0]!.cluster!.incarnation)!;
    await waitFor(() => link.up, "the link up");
    const before = viaEngine.length;
    await pub.send(publishPacket(5, { topic: "t/2", payload: "two" }));
    assertPublish(await sub.nextPacket(), { topic: "t/2", payload: "two" });
    assert.equal(viaEngine.length, before, "over the link");
  });
});

Deno.test("peer: false runs no link: QoS 0 forwards all go through the engine", async () => {
  await pair(false, async ({ brokers, sub, pub, viaEngine }) => {
    assert.equal(brokers[0]!.cluster!.peers, undefined);
    for (let i = 0; i < 3; i++) {
      await pub.send(publishPacket(5, { topic: "t/x", payload: `${i}` }));
      assertPublish(await sub.nextPacket(), { topic: "t/x", payload: `${i}` });
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    assert.equal(viaEngine.length, 3);
  });
});

Deno.test("a wildcard bind without an advertised address stops the node at start", async () => {
  const memory = new MemoryCluster();
  const broker = new Broker({
    sysInterval: 0,
    cluster: { engine: memory.engine(), peer: { host: "0.0.0.0" } },
  });
  try {
    await assert.rejects(broker.start(), /needs an advertised address/);
  } finally {
    await broker.close();
    memory.close();
  }
});
