/**
 * What only the Redis engine has: a real server killed and restarted from its AOF or empty, a hung server, a
 * tombstone set behind a node's back, URLs. The shared behaviour is in `engine_contract.ts`.
 */

import assert from "node:assert/strict";
import { redisTarget } from "../../lib/cluster/_redis_client.ts";
import { ClusterUnavailableError } from "../../lib/cluster/engine.ts";
import { RedisClusterEngine } from "../../lib/cluster/redis_engine.ts";
import { testIf } from "../_permissions.ts";
import { type RedisServer, redisUnavailable, withRedis } from "../_redis.ts";
import { EventLog } from "./engine_contract.ts";

const LEASE_MS = 600;

async function node(
  redis: RedisServer,
  name: string,
  nodes: RedisClusterEngine[],
): Promise<{ engine: RedisClusterEngine; log: EventLog; id: string }> {
  const engine = new RedisClusterEngine({ url: redis.url });
  nodes.push(engine);
  const log = new EventLog();
  const { incarnation } = await engine.join({ node: name, leaseMs: LEASE_MS, listener: log.listener });
  return { engine, log, id: incarnation };
}

async function withNodes(
  body: (redis: RedisServer, nodes: RedisClusterEngine[]) => Promise<void>,
  options: { readonly tcp?: boolean } = {},
): Promise<void> {
  await withRedis(async (redis) => {
    const nodes: RedisClusterEngine[] = [];
    try {
      await body(redis, nodes);
    } finally {
      for (const engine of nodes) await engine.close();
    }
  }, options);
}

const text = (bytes: Uint8Array | undefined): string => new TextDecoder().decode(bytes);

testIf(
  "Redis killed and restarted from its AOF: sessions, queues and routes survive",
  [redisUnavailable()],
  async () => {
    await withNodes(async (redis, nodes) => {
      const a = await node(redis, "a", nodes);
      const b = await node(redis, "b", nodes);
      await a.engine.addRoutes(["kept/#"]);
      const claim = await a.engine.claim("X");
      await a.engine.commit({
        ops: [
          {
            op: {
              kind: "putSession",
              session: { clientId: "X", protocolVersion: 4, expiryInterval: 60, subscriptions: [] },
            },
            epoch: claim.epoch,
          },
          {
            op: {
              kind: "putOutgoing",
              clientId: "X",
              entry: {
                seq: 1,
                message: {
                  topic: "kept/1",
                  payload: new TextEncoder().encode("acked"),
                  qos: 1,
                  retain: false,
                },
                qos: 1,
                retain: false,
                state: "queued",
              },
            },
            epoch: claim.epoch,
          },
        ],
        forwards: [],
      });
      await redis.kill();
      await a.log.until("down", () => a.log.connection().includes("down") || undefined);
      await redis.restart();
      await a.log.until("up", () => a.log.connection().at(-1) === "up" || undefined);
      await b.log.until("up", () => b.log.connection().at(-1) === "up" || undefined);
      assert.deepEqual((await b.engine.routes()).nodes.get(a.id), ["kept/#"]);
      await a.engine.release("X", claim.epoch);
      const taken = await b.engine.claim("X", { timeoutMs: 300 });
      assert.equal(text(taken.session?.outgoing[0]?.message.payload), "acked");
      assert.ok(taken.epoch > claim.epoch);
    });
  },
);

testIf(
  "Redis restarted empty: every node hears reset, and the cluster id is set again",
  [redisUnavailable()],
  async () => {
    await withNodes(async (redis, nodes) => {
      const a = await node(redis, "a", nodes);
      const id = await redis.command("GET", "mq:cluster");
      assert.equal(typeof id, "string");
      await redis.restart({ empty: true });
      await a.log.until("reset", () => a.log.connection().at(-1) === "reset" || undefined);
      const again = await redis.command("GET", "mq:cluster");
      assert.equal(typeof again, "string");
      assert.notEqual(again, id, "a new cluster id: a node that slept through this sees a reset too");
      // The node is registered again and its events flow.
      const b = await node(redis, "b", nodes);
      await b.engine.addRoutes(["after/reset"]);
      await a.log.until(
        "b's route",
        (events) => events.find((e) => e.kind === "route" && e.node === b.id && e.filter === "after/reset"),
      );
      assert.deepEqual([...await a.engine.liveNodes()].sort(), [a.id, b.id].sort());
    });
  },
);

testIf("a hung Redis (SIGSTOP): calls are bounded, the node hears down, then up after SIGCONT", [
  redisUnavailable(),
], async () => {
  await withNodes(async (redis, nodes) => {
    const a = await node(redis, "a", nodes);
    redis.pause();
    try {
      const started = Date.now();
      await assert.rejects(() => a.engine.addRoutes(["hung"]), ClusterUnavailableError);
      assert.ok(Date.now() - started < LEASE_MS * 2, `rejected after ${Date.now() - started} ms`);
      await a.log.until("down", () => a.log.connection().includes("down") || undefined);
    } finally {
      redis.resume();
    }
    await a.log.until("up", () => a.log.connection().at(-1) === "up" || undefined);
    await a.engine.addRoutes(["back"]);
  });
});

testIf("a node declared dead behind its back is fenced at its next renewal; its writes are refused", [
  redisUnavailable(),
], async () => {
  await withNodes(async (redis, nodes) => {
    const a = await node(redis, "a", nodes);
    const claim = await a.engine.claim("F");
    const write = {
      ops: [{ op: { kind: "deleteWill", clientId: "F" } as const, epoch: claim.epoch }],
      forwards: [],
    };
    await redis.command("SET", `mq:dead:${a.id}`, "1");
    // Refused by the script's own check, before the renewal has seen the tombstone, and after.
    assert.deepEqual((await a.engine.commit(write)).refused, ["F"]);
    await a.log.until("fenced", () => a.log.connection().includes("fenced") || undefined);
    assert.deepEqual((await a.engine.commit(write)).refused, ["F"]);
    // Rejoining makes a new incarnation that is not fenced.
    const { incarnation } = await a.engine.join({ node: "a", leaseMs: LEASE_MS, listener: a.log.listener });
    assert.notEqual(incarnation, a.id);
    await a.engine.addRoutes(["rejoined"]);
  });
});

testIf(
  "join fails at once with ClusterUnavailableError when Redis is not there",
  [redisUnavailable()],
  async () => {
    await withRedis(async (redis) => {
      const engine = new RedisClusterEngine({ url: `unix://${redis.dir}/missing.sock` });
      const started = Date.now();
      await assert.rejects(
        () => engine.join({ node: "a", leaseMs: LEASE_MS, listener: () => {} }),
        ClusterUnavailableError,
      );
      assert.ok(Date.now() - started < 3000);
      await engine.close();
    });
  },
);

testIf("the engine works over TCP with a redis:// URL", [redisUnavailable()], async () => {
  await withNodes(async (redis, nodes) => {
    assert.match(redis.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
    const a = await node(redis, "a", nodes);
    const b = await node(redis, "b", nodes);
    await a.engine.retain({ topic: "r", payload: new TextEncoder().encode("tcp"), qos: 0, retain: true });
    await b.log.until("retained", (events) => events.find((e) => e.kind === "retained" && e.topic === "r"));
  }, { tcp: true });
});

Deno.test("redisTarget() accepts redis://, rediss:// and unix:///path, and names what it expected", () => {
  assert.deepEqual(redisTarget("redis://127.0.0.1:6379"), { url: "redis://127.0.0.1:6379" });
  assert.deepEqual(redisTarget("rediss://h:1"), { url: "rediss://h:1" });
  assert.deepEqual(redisTarget("unix:///tmp/r.sock"), { path: "/tmp/r.sock" });
  assert.throws(() => redisTarget("http://x"), /expected redis:\/\/HOST:PORT/);
  assert.throws(() => redisTarget("unix://relative.sock"), /absolute path/);
});
