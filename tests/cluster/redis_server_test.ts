/** The Redis test harness itself: crash and restart from AOF, restart empty, TCP, clean-up. */

import assert from "node:assert/strict";
import { testIf } from "../_permissions.ts";
import { RedisServer, redisUnavailable, withRedis } from "../_redis.ts";

testIf("RedisServer keeps what its AOF holds across SIGKILL and restart", [redisUnavailable()], async () => {
  await withRedis(async (redis) => {
    assert.equal(await redis.command("SET", "k", "v"), "OK");
    await redis.kill();
    await assert.rejects(() => redis.command("PING"));
    await redis.restart();
    assert.equal(await redis.command("GET", "k"), "v");
  }, { appendfsync: "always" });
});

testIf("RedisServer restarts empty on request", [redisUnavailable()], async () => {
  await withRedis(async (redis) => {
    await redis.command("SET", "k", "v");
    await redis.restart({ empty: true });
    assert.equal(await redis.command("GET", "k"), null);
    assert.equal(await redis.command("DBSIZE"), 0);
  });
});

testIf(
  "RedisServer listens on loopback TCP when asked, and removes its directory",
  [redisUnavailable()],
  async () => {
    const redis = await RedisServer.start({ tcp: true });
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: redis.port! });
      conn.close();
      assert.equal(redis.url, `redis://127.0.0.1:${redis.port}`);
    } finally {
      await redis.stop();
    }
    await assert.rejects(() => Deno.stat(redis.dir), Deno.errors.NotFound);
  },
);
