/**
 * The retained message store on its own: set, replace, delete by empty payload, match, the expiry sweep and
 * the count and byte caps. Its matching is also held to `matchesFilter` in tests/topic/matcher_contract_test.ts.
 */

import assert from "node:assert/strict";
import { RetainedStore } from "../../lib/broker/retained.ts";
import type { Message } from "../../lib/broker/storage/persistence.ts";

function message(topic: string, payload = "x", expiresAt?: number): Message {
  return {
    topic,
    payload: new TextEncoder().encode(payload),
    qos: 1,
    retain: true,
    ...(expiresAt === undefined ? {} : { expiresAt }),
  };
}

function topics(messages: Iterable<Message>): string[] {
  return [...messages].map((m) => m.topic).sort();
}

Deno.test("RetainedStore.set() stores a message per topic, counting messages and payload bytes", () => {
  const store = new RetainedStore();
  store.set(message("a/b", "hello"));
  store.set(message("a", "hi"));
  store.set(message("/a", ""));
  assert.equal(store.size, 3);
  assert.equal(store.bytes, 7);
  assert.equal(new TextDecoder().decode(store.get("a/b")?.payload), "hello");
  assert.equal(store.get("a/c"), undefined);
  assert.equal(store.get("a/b/c"), undefined);
  assert.deepEqual(topics(store.all()), ["/a", "a", "a/b"]);
});

Deno.test("RetainedStore.retain() replaces the topic's retained message [MQTT-3.3.1-5 (5.0)]", () => {
  const store = new RetainedStore();
  assert.equal(store.retain(message("t", "first")), "stored");
  const second = message("t", "2nd");
  assert.equal(store.retain(second), "stored");
  assert.equal(store.get("t"), second, "kept as given, not copied");
  assert.equal(store.size, 1);
  assert.equal(store.bytes, 3);
});

Deno.test("RetainedStore.retain() with an empty payload deletes and stores nothing [MQTT-3.3.1-6 (5.0)] [MQTT-3.3.1-7 (5.0)]", () => {
  const store = new RetainedStore();
  store.retain(message("a/b", "one"));
  store.retain(message("a/b/c", "two"));
  assert.equal(store.retain(message("a/b", "")), "deleted");
  assert.equal(store.get("a/b"), undefined);
  assert.equal(store.size, 1);
  assert.equal(store.bytes, 3);
  assert.deepEqual(topics(store.match("a/#")), ["a/b/c"], "the deeper topic stays");
  assert.equal(store.retain(message("a/b", "")), "unchanged", "nothing left to delete");
  assert.equal(store.retain(message("never", "")), "unchanged");
  assert.equal(store.get("never"), undefined);
  assert.equal(store.size, 1);
});

Deno.test("RetainedStore.delete() reports whether there was a message and prunes empty branches", () => {
  const store = new RetainedStore();
  store.set(message("a/b/c"));
  store.set(message("a"));
  assert.equal(store.delete("a/b"), false, "a branch without a message");
  assert.equal(store.delete("x/y"), false);
  assert.equal(store.delete("a/b/c"), true);
  assert.equal(store.delete("a/b/c"), false);
  assert.deepEqual(topics(store.all()), ["a"]);
  assert.equal(store.delete("a"), true);
  assert.equal(store.size, 0);
  assert.equal(store.bytes, 0);
  assert.deepEqual(store.match("#"), []);
  store.set(message("a/b/c"));
  assert.deepEqual(topics(store.match("a/+/c")), ["a/b/c"], "a pruned branch can grow again");
});

Deno.test("RetainedStore.match() follows the wildcard and $ rules [MQTT-4.7.1-2 (3.1.1)] [MQTT-4.7.2-1 (5.0)]", () => {
  const store = new RetainedStore();
  for (
    const topic of ["sport", "sport/tennis", "sport/tennis/p1", "sport/golf", "/x", "$SYS/uptime", "a/$b"]
  ) {
    store.set(message(topic));
  }
  assert.deepEqual(topics(store.match("sport/#")), [
    "sport",
    "sport/golf",
    "sport/tennis",
    "sport/tennis/p1",
  ]);
  assert.deepEqual(topics(store.match("sport/+")), ["sport/golf", "sport/tennis"]);
  assert.deepEqual(topics(store.match("sport/tennis/p1")), ["sport/tennis/p1"]);
  assert.deepEqual(topics(store.match("+/x")), ["/x"]);
  assert.deepEqual(topics(store.match("#")), [
    "/x",
    "a/$b",
    "sport",
    "sport/golf",
    "sport/tennis",
    "sport/tennis/p1",
  ]);
  assert.deepEqual(topics(store.match("+/uptime")), []);
  assert.deepEqual(topics(store.match("$SYS/#")), ["$SYS/uptime"]);
  assert.deepEqual(topics(store.match("a/+")), ["a/$b"]);
});

Deno.test("RetainedStore.sweepExpired() removes what expired by now and returns its topics (5.0 section 3.3.2.3.3)", () => {
  const store = new RetainedStore();
  store.set(message("old", "aa", 1_000));
  store.set(message("edge", "bbb", 2_000));
  store.set(message("later", "c", 3_000));
  store.set(message("forever", "dddd"));
  assert.deepEqual(store.sweepExpired(999), []);
  assert.deepEqual(store.sweepExpired(2_000).sort(), ["edge", "old"]);
  assert.deepEqual(topics(store.all()), ["forever", "later"]);
  assert.equal(store.bytes, 5);
  assert.deepEqual(store.sweepExpired(Number.MAX_SAFE_INTEGER), ["later"]);
  assert.deepEqual(topics(store.all()), ["forever"]);
});

Deno.test("RetainedStore.retain() drops a new topic at maxCount, and still replaces and deletes", () => {
  const store = new RetainedStore({ maxCount: 2 });
  assert.equal(store.retain(message("a")), "stored");
  assert.equal(store.retain(message("b")), "stored");
  assert.equal(store.retain(message("c")), "count-limit");
  assert.equal(store.get("c"), undefined);
  assert.equal(store.retain(message("a", "new")), "stored", "replacing does not add a message");
  assert.equal(store.retain(message("b", "")), "deleted");
  assert.equal(store.retain(message("c")), "stored", "room again");
  assert.deepEqual(topics(store.all()), ["a", "c"]);
});

Deno.test("RetainedStore.retain() drops a message that would pass maxBytes; shrinking always fits", () => {
  const store = new RetainedStore({ maxBytes: 10 });
  assert.equal(store.retain(message("a", "12345678")), "stored");
  assert.equal(store.retain(message("b", "123")), "byte-limit");
  assert.equal(store.retain(message("b", "12")), "stored", "exactly at the limit");
  assert.equal(store.bytes, 10);
  assert.equal(store.retain(message("a", "123456789")), "byte-limit", "a replacement that grows past it");
  assert.equal(new TextDecoder().decode(store.get("a")?.payload), "12345678", "the old message stays");
  assert.equal(store.retain(message("a", "1")), "stored");
  assert.equal(store.bytes, 3);
  assert.equal(store.retain(message("c", "1234567")), "stored");
  assert.equal(store.size, 3);
});

Deno.test("RetainedStore.set() ignores the limits (restoring what storage holds)", () => {
  const store = new RetainedStore({ maxCount: 1, maxBytes: 1 });
  store.set(message("a", "123"));
  store.set(message("b", "456"));
  assert.equal(store.size, 2);
  assert.equal(store.bytes, 6);
});
