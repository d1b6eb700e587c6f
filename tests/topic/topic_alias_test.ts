import assert from "node:assert/strict";
import { MqttError } from "../../lib/mqtt_error.ts";
import { IncomingTopicAliases, OutgoingTopicAliases } from "../../lib/topic/topic_alias.ts";

Deno.test("OutgoingTopicAliases sends the topic once, then the alias alone", () => {
  const aliases = new OutgoingTopicAliases(3);
  assert.deepEqual(aliases.resolve("a"), { topic: "a", alias: 1 });
  assert.deepEqual(aliases.resolve("b"), { topic: "b", alias: 2 });
  assert.deepEqual(aliases.resolve("a"), { topic: "", alias: 1 });
});

Deno.test("OutgoingTopicAliases rebinds the least recently used alias when full", () => {
  const aliases = new OutgoingTopicAliases(2);
  aliases.resolve("a");
  aliases.resolve("b");
  aliases.resolve("a"); // b is now the least recently used
  assert.deepEqual(aliases.resolve("c"), { topic: "c", alias: 2 });
  assert.deepEqual(aliases.resolve("b"), { topic: "b", alias: 1 });
});

Deno.test("OutgoingTopicAliases with maximum 0 never aliases; reset() forgets", () => {
  const off = new OutgoingTopicAliases(0);
  assert.deepEqual(off.resolve("a"), { topic: "a" });
  const aliases = new OutgoingTopicAliases(1);
  aliases.resolve("a");
  aliases.reset(1);
  assert.deepEqual(aliases.resolve("a"), { topic: "a", alias: 1 });
});

Deno.test("IncomingTopicAliases refuses aliases out of range [MQTT-3.3.2-9] and unknown ones", () => {
  const aliases = new IncomingTopicAliases(2);
  assert.equal(aliases.resolve("x/y", 2), "x/y");
  assert.equal(aliases.resolve("", 2), "x/y");
  assert.equal(aliases.resolve("plain", undefined), "plain");
  const code = (fn: () => unknown): number => {
    try {
      fn();
    } catch (error) {
      return (error as MqttError).reasonCode;
    }
    return -1;
  };
  assert.equal(code(() => aliases.resolve("", 1)), 0x94);
  assert.equal(code(() => aliases.resolve("a", 3)), 0x94);
  assert.equal(code(() => aliases.resolve("", undefined)), 0x82);
  aliases.reset();
  assert.equal(code(() => aliases.resolve("", 2)), 0x94);
});
