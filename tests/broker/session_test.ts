/**
 * The session on its own (`lib/broker/session.ts`), against a fake connection: the inflight window (Receive
 * Maximum), the queue behind it and its limits, resend with DUP on resume, and the QoS 1/2 states.
 */

import assert from "node:assert/strict";
import { createCounters, DROP } from "../../lib/broker/counters.ts";
import { EncodeCache, Session, type SessionOptions } from "../../lib/broker/session.ts";
import type { SessionLink } from "../../lib/broker/session_link.ts";
import type { Message } from "../../lib/broker/storage/persistence.ts";
import { decode } from "../../lib/packet/decode.ts";
import type { QoS } from "../../lib/packet/packet_type.ts";
import { patchPublish } from "../../lib/packet/publish.ts";

/** What the fake connection was given, decoded. */
interface Sent {
  readonly kind: "publish" | "pubrel";
  readonly packetId: number;
  readonly dup?: boolean;
  readonly topic?: string;
  readonly qos?: number;
}

/** A connection that records what the session sends. */
class FakeLink implements SessionLink {
  readonly sent: Sent[] = [];
  congested = false;
  readonly maxPacketSize = Infinity;
  readonly topicAliasMaximum = 0;
  constructor(readonly protocolVersion: 4 | 5 = 5, readonly sendWindow = 2) {}

  sendPublish(bytes: Uint8Array, idOffset: number, packetId: number, dup: boolean): void {
    const copy = bytes.slice();
    if (idOffset > 0) patchPublish(copy, 0, idOffset, packetId, dup);
    this.send(copy);
  }

  send(bytes: Uint8Array): void {
    const packet = decode(bytes, this.protocolVersion);
    assert.equal(packet.type, 3, "a PUBLISH");
    const publish = packet as Extract<typeof packet, { type: 3 }>;
    this.sent.push({
      kind: "publish",
      packetId: publish.packetId ?? 0,
      dup: publish.dup,
      topic: publish.topic,
      qos: publish.qos,
    });
  }

  sendPubrel(packetId: number): void {
    this.sent.push({ kind: "pubrel", packetId });
  }

  /** The packets sent since the last call. */
  take(): Sent[] {
    return this.sent.splice(0);
  }
}

function session(options: Partial<SessionOptions> = {}): Session {
  return new Session({
    clientId: "c",
    protocolVersion: 5,
    expiryInterval: 3600,
    maxQueued: 100,
    maxQueuedBytes: Infinity,
    queueQoS0: false,
    store: undefined,
    ...options,
  });
}

function message(topic: string, qos: QoS, payload = "x"): Message {
  return { topic, payload: new TextEncoder().encode(payload), qos, retain: false };
}

/** Delivers at the message's QoS. */
function deliver(target: Session, m: Message): void {
  target.deliver(m, m.qos, false, undefined, new EncodeCache(0));
}

Deno.test("Session sends QoS 1/2 up to the link's window and queues the rest in order", () => {
  const s = session();
  const link = new FakeLink(5, 2);
  s.link = link;
  for (const topic of ["a", "b", "c", "d"]) deliver(s, message(topic, 1));
  assert.deepEqual(link.take().map((p) => [p.topic, p.packetId]), [["a", 1], ["b", 2]]);
  assert.equal(s.inflight.size, 2);
  assert.equal(s.queued, 2);
  assert.equal(s.available, false, "a full window takes no shared-subscription message");
  assert.ok(s.acknowledge(1, 0));
  assert.deepEqual(link.take().map((p) => [p.topic, p.packetId]), [["c", 3]], "one slot freed, one sent");
  assert.ok(s.acknowledge(2, 0));
  assert.ok(s.acknowledge(3, 0));
  assert.deepEqual(link.take().map((p) => p.topic), ["d"]);
  assert.equal(s.queued, 0);
});

Deno.test("Session sends QoS 0 straight out, drops it when congested or away (no queueQoS0)", () => {
  const s = session();
  const link = new FakeLink();
  s.link = link;
  deliver(s, message("q0", 0));
  assert.deepEqual(link.take().map((p) => [p.topic, p.packetId, p.qos]), [["q0", 0, 0]]);
  link.congested = true;
  deliver(s, message("q0", 0));
  assert.deepEqual(link.take(), []);
  assert.equal(s.dropped, 1);
  s.link = undefined;
  deliver(s, message("q0", 0));
  assert.equal(s.queued, 0, "QoS 0 is not queued for an absent client by default");
});

Deno.test("Session queues offline QoS 0 with queueQoS0 and sends it on resume", () => {
  const s = session({ queueQoS0: true, maxQueued: 2 });
  deliver(s, message("a", 0));
  deliver(s, message("b", 0));
  deliver(s, message("c", 0)); // over maxQueued
  assert.equal(s.dropped, 1);
  const link = new FakeLink();
  s.link = link;
  s.resume(0);
  assert.deepEqual(link.take().map((p) => p.topic), ["a", "b"]);
});

Deno.test("Session drops new QoS 1/2 messages once maxQueued is reached, and calls onDrop", () => {
  const drops: number[] = [];
  const s = session({ maxQueued: 2, onDrop: (it) => drops.push(it.dropped) });
  for (const topic of ["a", "b", "c", "d"]) deliver(s, message(topic, 1));
  assert.equal(s.queued, 2);
  assert.equal(s.dropped, 2);
  assert.deepEqual(drops, [1, 2]);
  const link = new FakeLink(5, 10);
  s.link = link;
  s.resume(0);
  assert.deepEqual(link.take().map((p) => p.topic), ["a", "b"], "the oldest are kept");
});

Deno.test("Session drops new QoS 1/2 messages over maxQueuedBytes", () => {
  const s = session({ maxQueuedBytes: 10 });
  deliver(s, message("a", 1, "12345"));
  deliver(s, message("b", 1, "12345"));
  deliver(s, message("c", 1, "1")); // 11 bytes
  assert.equal(s.queued, 2);
  assert.equal(s.dropped, 1);
});

Deno.test("Session resends unacknowledged PUBLISH with DUP and PUBREL on resume, in order [MQTT-4.4.0-1 (5.0)]", () => {
  const s = session();
  const first = new FakeLink(5, 10);
  s.link = first;
  deliver(s, message("one", 1));
  deliver(s, message("two", 2));
  deliver(s, message("three", 2));
  assert.ok(s.received(3, 0, 0), "PUBREC for three");
  assert.deepEqual(first.take().map((p) => [p.kind, p.packetId, p.dup ?? false]), [
    ["publish", 1, false],
    ["publish", 2, false],
    ["publish", 3, false],
    ["pubrel", 3, false],
  ]);
  s.link = undefined; // the connection is lost
  deliver(s, message("four", 1)); // queued while away
  const second = new FakeLink(5, 10);
  s.link = second;
  s.resume(0);
  assert.deepEqual(second.take().map((p) => [p.kind, p.packetId, p.dup ?? false, p.topic]), [
    ["publish", 1, true, "one"],
    ["publish", 2, true, "two"],
    ["pubrel", 3, false, undefined],
    ["publish", 4, false, "four"],
  ]);
});

Deno.test("Session QoS 2 outgoing: sent -> PUBREC -> released -> PUBCOMP completes; wrong steps are refused", () => {
  const s = session();
  const link = new FakeLink(5, 10);
  s.link = link;
  deliver(s, message("q2", 2));
  assert.equal(s.inflight.get(1)?.state, "sent");
  assert.equal(s.completed(1, 0), false, "PUBCOMP before PUBREC is not the next step");
  assert.equal(s.acknowledge(1, 0), false, "PUBACK is not an answer to QoS 2");
  assert.ok(s.received(1, 0, 0));
  assert.equal(s.inflight.get(1)?.state, "released");
  assert.ok(s.received(1, 0, 0), "a repeated PUBREC is answered with PUBREL again");
  assert.deepEqual(link.take().map((p) => p.kind), ["publish", "pubrel", "pubrel"]);
  assert.ok(s.completed(1, 0));
  assert.equal(s.inflight.size, 0);
  assert.equal(s.completed(1, 0), false, "unknown id");
});

Deno.test("Session QoS 2: a PUBREC with an error code ends the flow without PUBREL (5.0 section 4.3.3)", () => {
  const s = session();
  const link = new FakeLink(5, 1);
  s.link = link;
  deliver(s, message("refused", 2));
  deliver(s, message("next", 2));
  assert.ok(s.received(1, 0x80, 0));
  assert.equal(s.inflight.has(1), false);
  assert.deepEqual(link.take().map((p) => [p.kind, p.topic]), [["publish", "refused"], ["publish", "next"]]);
});

Deno.test("Session tracks incoming QoS 2 packet ids until PUBREL", () => {
  const s = session();
  s.addIncoming(7);
  assert.ok(s.incoming.has(7));
  assert.ok(s.deleteIncoming(7));
  assert.equal(s.deleteIncoming(7), false, "already released");
});

Deno.test("Session packet ids skip ids still in flight and wrap after 65535", () => {
  const s = session();
  const link = new FakeLink(5, 65535);
  s.link = link;
  for (let i = 0; i < 65535; i++) deliver(s, message("t", 1));
  assert.equal(s.inflight.size, 65535);
  assert.ok(s.acknowledge(2, 0));
  link.take();
  deliver(s, message("t", 1));
  assert.deepEqual(link.take().map((p) => p.packetId), [2], "the only free id");
});

Deno.test("Session.drain() hands back every undelivered QoS 1/2 message, inflight first", () => {
  const s = session();
  const link = new FakeLink(5, 1);
  s.link = link;
  deliver(s, message("a", 1));
  deliver(s, message("b", 1));
  assert.deepEqual(s.drain().map((e) => [e.message.topic, e.state]), [["a", "sent"], ["b", "queued"]]);
  assert.equal(s.inflight.size, 0);
  assert.equal(s.queued, 0);
});

Deno.test("Session adds every drop (QoS 0 congested or over the offline queue, QoS 1/2 over the queue) to the broker's counter", () => {
  const counters = createCounters();
  const s = session({ maxQueued: 1, queueQoS0: true, counters });
  deliver(s, message("a", 1));
  deliver(s, message("b", 1)); // queue full
  deliver(s, message("c", 0));
  deliver(s, message("d", 0)); // offline QoS 0 over maxQueued
  const link = new FakeLink();
  s.link = link;
  link.congested = true;
  deliver(s, message("e", 0)); // congested
  assert.equal(s.dropped, 3);
  assert.equal(counters.messagesDropped, 3);
  assert.equal(counters.messagesDroppedByReason[DROP.queueFull], 2);
  assert.equal(counters.messagesDroppedByReason[DROP.outputFull], 1);
});
