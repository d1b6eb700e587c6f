import assert from "node:assert/strict";
import { Inbox, type MqttMessage } from "../../lib/client/inbox.ts";
import type { QoS } from "../../lib/packet/packet_type.ts";

const message = (topic: string, qos: QoS = 0): MqttMessage => ({
  topic,
  payload: new Uint8Array(),
  qos,
  retain: false,
  dup: false,
});

Deno.test("Inbox calls onTaken when the reader takes the message, not when it arrives", async () => {
  const inbox = new Inbox();
  const taken: string[] = [];
  const iterator = inbox.messages();
  inbox.deliver(message("a", 1), () => taken.push("a"));
  inbox.deliver(message("b", 1), () => taken.push("b"));
  assert.deepEqual(taken, []);
  assert.equal((await iterator.next()).value?.topic, "a");
  assert.deepEqual(taken, ["a"]);
  assert.equal((await iterator.next()).value?.topic, "b");
  assert.deepEqual(taken, ["a", "b"]);
  inbox.close();
});

Deno.test("Inbox: a waiting reader takes a message at once", async () => {
  const inbox = new Inbox();
  const iterator = inbox.messages(["x/+"]);
  const next = iterator.next();
  let taken = false;
  inbox.deliver(message("x/1", 1), () => taken = true);
  assert.equal(taken, true);
  assert.equal((await next).value?.topic, "x/1");
  assert.equal(inbox.unclaimed, 0);
  inbox.close();
});

Deno.test("Inbox: a message for two readers is acknowledged when both took it", async () => {
  const inbox = new Inbox();
  const one = inbox.messages(["a/#"]);
  const two = inbox.messages(["+/b"]);
  let taken = 0;
  inbox.deliver(message("a/b", 1), () => taken++);
  await one.next();
  assert.equal(taken, 0);
  await two.next();
  assert.equal(taken, 1);
  inbox.close();
});

Deno.test("Inbox keeps unclaimed messages in order for a later reader; a closed reader gives its own back", async () => {
  const inbox = new Inbox();
  const early = inbox.messages(["a"]);
  inbox.deliver(message("a"));
  inbox.deliver(message("b"));
  inbox.deliver(message("a"));
  assert.equal(inbox.unclaimed, 1);
  await early.return!();
  assert.equal(inbox.unclaimed, 3);
  const late = inbox.messages();
  const topics = [];
  for (let i = 0; i < 3; i++) topics.push((await late.next()).value?.topic);
  assert.deepEqual(topics, ["a", "b", "a"]);
  inbox.close();
});

Deno.test("Inbox drops the oldest unclaimed QoS 0 message past the limit, never QoS 1/2", () => {
  const inbox = new Inbox({ maxUnclaimed: 2 });
  inbox.deliver(message("q1", 1));
  inbox.deliver(message("q0", 0));
  inbox.deliver(message("q2", 2));
  assert.equal(inbox.dropped, 1);
  inbox.deliver(message("q1b", 1));
  assert.equal(inbox.unclaimed, 3);
  inbox.close();
});

Deno.test("Inbox.close() ends readers after what they hold; with an error they throw it", async () => {
  const inbox = new Inbox();
  const iterator = inbox.messages();
  inbox.deliver(message("last"));
  inbox.close(new Error("gone"));
  assert.equal((await iterator.next()).value?.topic, "last");
  await assert.rejects(iterator.next(), /gone/);
  assert.equal((await iterator.next()).done, true);
  const after = inbox.messages();
  await assert.rejects(after.next(), /gone/);
});

Deno.test("Inbox: an aborted signal ends the reader with its reason", async () => {
  const inbox = new Inbox();
  const controller = new AbortController();
  const iterator = inbox.messages(undefined, { signal: controller.signal });
  const next = iterator.next();
  controller.abort(new Error("stop"));
  await assert.rejects(next, /stop/);
  inbox.close();
});

Deno.test("Inbox.messages() refuses an invalid filter", () => {
  assert.throws(() => new Inbox().messages(["a/#/b"]), /Topic Filter/);
});
