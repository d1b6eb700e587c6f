import assert from "node:assert/strict";
import { MqttError } from "../../lib/mqtt_error.ts";
import { IncomingTopicAliases, OutgoingTopicAliases } from "../../lib/topic/topic_alias.ts";

/** The reason code `fn` throws with, or -1 when it does not throw. */
function refusal(fn: () => unknown): number {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof MqttError);
    return error.reasonCode;
  }
  return -1;
}

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

Deno.test("IncomingTopicAliases sets an alias with a topic, uses it with an empty one, and rebinds it", () => {
  const aliases = new IncomingTopicAliases(2);
  assert.equal(aliases.resolve("x/y", 2), "x/y");
  assert.equal(aliases.resolve("", 2), "x/y");
  assert.equal(aliases.resolve("plain", undefined), "plain");
  assert.equal(aliases.resolve("x/z", 2), "x/z");
  assert.equal(aliases.resolve("", 2), "x/z");
});

Deno.test("IncomingTopicAliases refuses Topic Alias 0 with 0x94 (5.0 section 3.3.4) [MQTT-3.3.2-8 (5.0)]", () => {
  const aliases = new IncomingTopicAliases(2);
  assert.equal(refusal(() => aliases.resolve("a", 0)), 0x94);
  assert.equal(refusal(() => aliases.resolve("", 0)), 0x94);
});

Deno.test("IncomingTopicAliases refuses an alias above the maximum with 0x94 (5.0 section 3.3.4)", () => {
  const aliases = new IncomingTopicAliases(2);
  assert.equal(refusal(() => aliases.resolve("a", 3)), 0x94);
  assert.equal(refusal(() => aliases.resolve("", 3)), 0x94);
  const none = new IncomingTopicAliases(0); // announced no aliases: every alias is above the maximum
  assert.equal(refusal(() => none.resolve("a", 1)), 0x94);
});

Deno.test("IncomingTopicAliases: an unmapped alias with an empty topic is a Protocol Error 0x82 (5.0 section 3.3.4)", () => {
  const aliases = new IncomingTopicAliases(2);
  assert.equal(refusal(() => aliases.resolve("", 1)), 0x82);
  aliases.resolve("x/y", 2);
  aliases.reset(); // aliases do not outlive the connection [MQTT-3.3.2-7 (5.0)]
  assert.equal(refusal(() => aliases.resolve("", 2)), 0x82);
});

Deno.test("IncomingTopicAliases: an empty topic without an alias is a Protocol Error 0x82 (5.0 section 3.3.2.1)", () => {
  const aliases = new IncomingTopicAliases(2);
  assert.equal(refusal(() => aliases.resolve("", undefined)), 0x82);
});
