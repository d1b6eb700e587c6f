/**
 * The `cluster` config key and the `--cluster` flag: a bad value stops the broker at start with a message naming
 * the key, never a broker running alone by mistake.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../lib/broker/server/config.ts";
import { redisUrlProblem } from "../../lib/cluster/config.ts";
import { runBroker, subprocessUnavailable } from "../cli/_broker_process.ts";
import { redisUnavailable, withRedis } from "../_redis.ts";
import { ClusterBroker, clusterProcessUnavailable } from "./_cluster_process.ts";

Deno.test("parseConfig() reads the cluster key", () => {
  const config = parseConfig(
    JSON.stringify({ cluster: { redis: "redis://127.0.0.1:6379", node: "a-1", leaseMs: 5000 } }),
    "b.json",
  );
  assert.deepEqual(config.cluster, { redis: "redis://127.0.0.1:6379", node: "a-1", leaseMs: 5000 });
  assert.deepEqual(parseConfig('{"cluster":{"redis":"unix:///run/redis.sock"}}', "b.json").cluster, {
    redis: "unix:///run/redis.sock",
  });
});

const BAD: readonly (readonly [unknown, string])[] = [
  ["redis://x", "must be an object"],
  [{}, "cluster.redis must be a non-empty string"],
  [{ redis: "http://x:1" }, 'cluster.redis: "http://x:1" must start with redis://'],
  [{ redis: "nonsense" }, 'cluster.redis: "nonsense" is not a URL'],
  [{ redis: "unix:///" }, "names no socket path"],
  [{ redis: "redis-sentinel://s1:26379" }, "must be redis-sentinel://HOST:PORT[,HOST:PORT...]/MASTER"],
  [{ redis: "redis://h:1", leaseMs: 10 }, "cluster.leaseMs must be an integer from 300 to 600000"],
  [{ redis: "redis://h:1", leaseMs: "5s" }, "cluster.leaseMs must be an integer"],
  [{ redis: "redis://h:1", node: "a b" }, "cluster.node must be 1 to 64 letters"],
  [{ redis: "redis://h:1", ttl: 1 }, "unknown key cluster.ttl"],
];

for (const [value, message] of BAD) {
  Deno.test(`parseConfig() refuses cluster ${JSON.stringify(value)} naming the key`, () => {
    assert.throws(
      () => parseConfig(JSON.stringify({ cluster: value }), "b.json"),
      (error: unknown) =>
        error instanceof ConfigError && error.message.startsWith("b.json: ") &&
        error.message.includes(message),
    );
  });
}

Deno.test("redisUrlProblem() accepts redis://, rediss://, redis-sentinel:// and unix:// URLs", () => {
  for (
    const url of [
      "redis://127.0.0.1:6379",
      "rediss://r.example:6380/2",
      "unix:///tmp/r.sock",
      "redis-sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster",
      "redis-sentinel://:secret@s1:26379/mq",
    ]
  ) {
    assert.equal(redisUrlProblem(url), undefined, url);
  }
});

Deno.test({
  name: "broker.ts --cluster with a bad URL exits at start, naming the flag",
  ignore: subprocessUnavailable() !== undefined,
  fn: async () => {
    const { code, stderr } = await runBroker(["--cluster", "http://127.0.0.1:6379", "-p", "0"]);
    assert.equal(code, 2);
    assert.match(stderr, /--cluster: "http:\/\/127\.0\.0\.1:6379" must start with redis:\/\//);
  },
});

Deno.test({
  name: "broker.ts with a bad cluster key in its config file exits at start, naming the key",
  ignore: subprocessUnavailable() !== undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const file = `${dir}/b.json`;
      await Deno.writeTextFile(
        file,
        JSON.stringify({ cluster: { redis: "redis://127.0.0.1:1", leaseMs: 1 } }),
      );
      const { code, stderr } = await runBroker(["-c", file, "-p", "0"]);
      assert.equal(code, 2);
      assert.match(stderr, /cluster\.leaseMs must be an integer from 300 to 600000/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "broker.ts --cluster-peer that is not HOST:PORT, or without a cluster, exits at start naming the flag",
  ignore: subprocessUnavailable() !== undefined,
  fn: async () => {
    const bad = await runBroker(["--cluster", "redis://127.0.0.1:1", "--cluster-peer", "nowhere", "-p", "0"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--cluster-peer: "nowhere" must be HOST:PORT/);
    const wildcard = await runBroker(["--cluster", "redis://127.0.0.1:1", "--cluster-peer", "0.0.0.0:7883"]);
    assert.equal(wildcard.code, 2);
    assert.match(wildcard.stderr, /--cluster-peer: "0\.0\.0\.0:7883" binds every address/);
    const alone = await runBroker(["--cluster-peer", "127.0.0.1:7883", "-p", "0"]);
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /--cluster-peer needs --cluster/);
  },
});

const PEER_UNAVAILABLE = redisUnavailable() ?? clusterProcessUnavailable();
Deno.test({
  name: `broker.ts --cluster-peer HOST:PORT listens there and advertises it to the other nodes${
    PEER_UNAVAILABLE === undefined ? "" : ` (${PEER_UNAVAILABLE})`
  }`,
  ignore: PEER_UNAVAILABLE !== undefined,
  fn: async () => {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = probe.addr.port;
    probe.close();
    const dir = await Deno.makeTempDir();
    try {
      await withRedis(async (redis) => {
        const node = await ClusterBroker.start({
          redis: redis.url,
          node: "p",
          dir,
          args: ["--cluster-peer", `127.0.0.1:${port}`],
        });
        try {
          const peers = await redis.command("HGETALL", "mq:peers");
          assert.ok(Array.isArray(peers) && peers.includes(`127.0.0.1:${port}`), JSON.stringify(peers));
          const socket = await Deno.connect({ hostname: "127.0.0.1", port });
          socket.close();
        } finally {
          await node.stop();
        }
      }, { tcp: true });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
