/**
 * What only the Redis engine has: a real server killed and restarted from its AOF or empty, a hung server, a
 * tombstone set behind a node's back, URLs. The shared behaviour is in `engine_contract.ts`.
 */

import assert from "node:assert/strict";
import { redactUrl, redisTarget } from "../../lib/cluster/_redis_client.ts";
import { encodeMessage } from "../../lib/cluster/_redis_codec.ts";
import { ClusterUnavailableError } from "../../lib/cluster/engine.ts";
import { RedisClusterEngine } from "../../lib/cluster/redis_engine.ts";
import { testIf } from "../_permissions.ts";
import {
  RedisSentinel,
  RedisServer,
  type RedisServerOptions,
  redisUnavailable,
  withRedis,
} from "../_redis.ts";
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
  options: RedisServerOptions = {},
): Promise<void> {
  await withRedis(async (redis) => {
    const nodes: RedisClusterEngine[] = [];
    try {
      await body(redis, nodes);
    } finally {
      for (const engine of nodes) await engine.close();
    }
  }, { appendfsync: "always", ...options });
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
      assert.ok(
        Date.now() - started < 2500,
        `rejected after ${Date.now() - started} ms (the 1 s command timeout)`,
      );
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

testIf("join against a hung Redis (SIGSTOP) fails within a bound instead of hanging the broker's start", [
  redisUnavailable(),
], async () => {
  await withRedis(async (redis) => {
    redis.pause();
    const engine = new RedisClusterEngine({ url: redis.url });
    try {
      const started = Date.now();
      await assert.rejects(
        () => engine.join({ node: "a", leaseMs: LEASE_MS, listener: () => {} }),
        ClusterUnavailableError,
      );
      assert.ok(Date.now() - started < 8000, `rejected after ${Date.now() - started} ms`);
    } finally {
      await engine.close();
      redis.resume();
    }
  }, { tcp: true });
});

testIf("the engine works over TCP with a redis:// URL", [redisUnavailable()], async () => {
  await withNodes(async (redis, nodes) => {
    assert.match(redis.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
    const a = await node(redis, "a", nodes);
    const b = await node(redis, "b", nodes);
    await a.engine.retain({ topic: "r", payload: new TextEncoder().encode("tcp"), qos: 0, retain: true });
    await b.log.until("retained", (events) => events.find((e) => e.kind === "retained" && e.topic === "r"));
  }, { tcp: true });
});

Deno.test("redisTarget() accepts redis://, rediss://, unix:///path and redis-sentinel://, and names what it expected", () => {
  assert.deepEqual(redisTarget("redis://127.0.0.1:6379"), { kind: "url", url: "redis://127.0.0.1:6379" });
  assert.deepEqual(redisTarget("rediss://h:1"), { kind: "url", url: "rediss://h:1" });
  assert.deepEqual(redisTarget("unix:///tmp/r.sock"), { kind: "socket", path: "/tmp/r.sock" });
  assert.deepEqual(redisTarget("redis-sentinel://:pw@s1:26379,s2:26380,s3/mymaster"), {
    kind: "sentinel",
    sentinels: [{ host: "s1", port: 26379 }, { host: "s2", port: 26380 }, { host: "s3", port: 26379 }],
    name: "mymaster",
    password: "pw",
  });
  assert.throws(() => redisTarget("redis-sentinel://s1:99999/m"), /is not HOST:PORT/);
  assert.throws(() => redisTarget("redis-sentinel://s1:1"), /expected/);
  assert.throws(() => redisTarget("http://x"), /expected redis:\/\/HOST:PORT/);
  assert.throws(() => redisTarget("unix://relative.sock"), /absolute path/);
});

Deno.test("redactUrl() hides a password in logs and errors", () => {
  assert.equal(redactUrl("redis://user:secret@h:6379/0"), "redis://user:***@h:6379/0");
  assert.equal(redactUrl("rediss://:secret@h:1"), "rediss://:***@h:1");
  assert.equal(redactUrl("redis://h:6379"), "redis://h:6379");
  assert.equal(redactUrl("redis-sentinel://:secret@s:1/m"), "redis-sentinel://:***@s:1/m");
  assert.equal(new RedisClusterEngine({ url: "redis://u:pw@127.0.0.1:1" }).name, "redis://u:***@127.0.0.1:1");
});

testIf("a node whose unread control entries were trimmed away resyncs routes and retained messages", [
  redisUnavailable(),
], async () => {
  await withNodes(async (redis, nodes) => {
    const a = await node(redis, "a", nodes);
    const b = await node(redis, "b", nodes);
    await b.engine.retain({ topic: "old", payload: new TextEncoder().encode("x"), qos: 0, retain: true });
    await a.log.until("old", (events) => events.find((e) => e.kind === "retained" && e.topic === "old"));
    // One script: a route add and retained changes with their entries, then those entries trimmed, then one
    // more entry. A's blocked read is served after it, so A sees a hole in the sequence numbers.
    const retained = encodeMessage({
      topic: "ghost",
      payload: new TextEncoder().encode("g"),
      qos: 0,
      retain: true,
    });
    await redis.command(
      "EVAL",
      `redis.call('SADD', 'mq:routes:' .. ARGV[1], 'ghost/#')
local v = redis.call('INCR', 'mq:rv')
redis.call('XADD', 'mq:ctl', '*', 'q', redis.call('INCR', 'mq:ctl:seq'), 'k', 'route', 'n', ARGV[1], 'o', 'add',
  'f', 'ghost/#', 'v', v)
redis.call('HSET', 'mq:ret', 'ghost', ARGV[2])
redis.call('HDEL', 'mq:ret', 'old')
redis.call('XADD', 'mq:ctl', '*', 'q', redis.call('INCR', 'mq:ctl:seq'), 'k', 'ret', 't', 'ghost', 'm', ARGV[2])
redis.call('XADD', 'mq:ctl', '*', 'q', redis.call('INCR', 'mq:ctl:seq'), 'k', 'ret', 't', 'old')
redis.call('XTRIM', 'mq:ctl', 'MAXLEN', 0)
redis.call('XADD', 'mq:ctl', '*', 'q', redis.call('INCR', 'mq:ctl:seq'), 'k', 'noop')
return 1`,
      0,
      b.id,
      retained,
    );
    await a.log.until(
      "ghost/# of b",
      (events) =>
        events.find((e) => e.kind === "route" && e.node === b.id && e.filter === "ghost/#" && e.op === "add"),
    );
    await a.log.until(
      "retained ghost",
      (events) =>
        events.find((e) => e.kind === "retained" && e.topic === "ghost" && text(e.message?.payload) === "g"),
    );
    await a.log.until(
      "retained old deleted",
      (events) => events.find((e) => e.kind === "retained" && e.topic === "old" && e.message === undefined),
    );
    // And it goes on reading after the cut.
    await b.engine.addRoutes(["after/cut"]);
    await a.log.until(
      "after/cut",
      (events) => events.find((e) => e.kind === "route" && e.filter === "after/cut"),
    );
  });
});

testIf("through Redis Sentinel: nodes find the master, and follow a failover to the promoted replica", [
  redisUnavailable(),
], async () => {
  const master = await RedisServer.start({ tcp: true, appendfsync: "always" });
  const replica = await RedisServer.start({ tcp: true, replicaOf: master.port! });
  const sentinel = await RedisSentinel.start(master);
  const nodes: RedisClusterEngine[] = [];
  try {
    const join = async (name: string) => {
      const engine = new RedisClusterEngine({ url: sentinel.url });
      nodes.push(engine);
      const log = new EventLog();
      const { incarnation } = await engine.join({ node: name, leaseMs: 2000, listener: log.listener });
      return { engine, log, id: incarnation };
    };
    const a = await join("a");
    const b = await join("b");
    await a.engine.addRoutes(["before/failover"]);
    await b.log.until(
      "a's route",
      (events) => events.find((e) => e.kind === "route" && e.filter === "before/failover"),
    );
    // Wait until the replica has acknowledged everything (WAIT), then lose the master.
    assert.equal(await master.command("WAIT", 1, 10_000), 1, "the replica caught up");
    await master.kill();
    for (const node of [a, b]) {
      await node.log.until("down", () => node.log.connection().includes("down") || undefined);
      await node.log.until("back on the promoted replica", () => {
        const last = node.log.connection().at(-1);
        return last === "up" || last === "reset" ? true : undefined;
      });
    }
    assert.equal(await replica.command("ROLE").then((r) => (r as string[])[0]), "master");
    await b.engine.addRoutes(["after/failover"]);
    await a.log.until(
      "b's route after the failover",
      (events) => events.find((e) => e.kind === "route" && e.filter === "after/failover"),
    );
  } finally {
    for (const engine of nodes) await engine.close();
    await sentinel.stop();
    await replica.stop();
    await master.stop();
  }
});
