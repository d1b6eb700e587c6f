/**
 * The message trace (`lib/broker/trace.ts`): known traffic, and per subscriber what became of each PUBLISH.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import type { TraceEnd, TraceEvent } from "../../lib/broker/trace.ts";
import type { Authorizer } from "../../lib/broker/auth/auth.ts";
import { ALLOW_ALL } from "../../lib/broker/auth/auth.ts";
import { DISCONNECT, P, publishPacket, subOptions, subscribe, waitFor, withBroker } from "./_wire.ts";
import { persistent } from "./_v5.ts";

const text = (s: string) => new TextEncoder().encode(s);

function collect(
  broker: { traces: { subscribe(id: string, l: (e: TraceEvent) => void): () => void } },
  id: string,
) {
  const events: TraceEvent[] = [];
  broker.traces.subscribe(id, (e) => events.push(e));
  return events;
}

Deno.test("trace: a PUBLISH to a filter shows each subscriber sent at its QoS, with the payload preview", async () => {
  await withBroker({}, async ({ broker, connect }) => {
    const a = await connect({ version: 5, clientId: "sub-a" });
    await subscribe(a, 1, [["t/#", 1]]);
    const b = await connect({ version: 4, clientId: "sub-b" });
    await subscribe(b, 1, [["t/+", 0]]);
    const { id } = broker.traces.start({ filter: "t/#", payloadBytes: 3 });
    const events = collect(broker, id);
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "t/x", payload: "hello", qos: 1, id: 7 }));
    await pub.send(publishPacket(5, { topic: "other", payload: "not traced" }));
    await waitFor(() => events.length === 1, "one traced message");
    const [event] = events;
    assert.equal(event!.from, "pub");
    assert.equal(event!.topic, "t/x");
    assert.equal(event!.qos, 1);
    assert.equal(event!.retain, false);
    assert.equal(event!.bytes, 5);
    assert.equal(event!.preview, "hel");
    assert.deepEqual(
      [...event!.deliveries].sort((x, y) => x.clientId.localeCompare(y.clientId)),
      [
        { clientId: "sub-a", outcome: "sent", qos: 1 },
        { clientId: "sub-b", outcome: "sent", qos: 0 },
      ],
    );
  });
});

Deno.test("trace: offline sessions show queued, and dropped queue_full past maxQueued", async () => {
  await withBroker({ maxQueued: 1 }, async ({ broker, connect }) => {
    const away = await connect(persistent("away"));
    await subscribe(away, 1, [["q/#", 1]]);
    await away.send(DISCONNECT);
    await away.expectClosed();
    await waitFor(() => broker.connectionCount === 0, "gone");
    const { id } = broker.traces.start({ filter: "q/#" });
    const events = collect(broker, id);
    broker.publish({ topic: "q/1", payload: text("1"), qos: 1, retain: false });
    broker.publish({ topic: "q/2", payload: text("2"), qos: 1, retain: false });
    broker.publish({ topic: "q/3", payload: text("3"), qos: 0, retain: false });
    assert.deepEqual(events.map((e) => e.deliveries), [
      [{ clientId: "away", outcome: "queued", qos: 1 }],
      [{ clientId: "away", outcome: "dropped", qos: 1, reason: "queue_full" }],
      [{ clientId: "away", outcome: "dropped", qos: 0, reason: "offline" }],
    ]);
    assert.equal(events[0]!.from, undefined, "published by the broker itself");
  });
});

Deno.test("trace: expired and too large for the client are dropped with that reason", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ broker, connect }) => {
    const small = await connect({ version: 5, clientId: "small", properties: [P.maximumPacketSize(40)] });
    await subscribe(small, 1, [["d/#", 1]]);
    const { id } = broker.traces.start({ filter: "d/#" });
    const events = collect(broker, id);
    broker.publish({ topic: "d/big", payload: new Uint8Array(100), qos: 1, retain: false });
    broker.publish({ topic: "d/old", payload: text("x"), qos: 0, retain: false, expiresAt: clock.now() - 1 });
    assert.deepEqual(events.map((e) => e.deliveries[0]), [
      { clientId: "small", outcome: "dropped", qos: 1, reason: "too_large" },
      { clientId: "small", outcome: "dropped", qos: 0, reason: "expired" },
    ]);
  });
});

Deno.test("trace: No Local and read rules are skips with their reason", async () => {
  const authorizer: Authorizer = { ...ALLOW_ALL, canReceive: (identity) => identity.clientId !== "blind" };
  await withBroker({ authorizer }, async ({ broker, connect }) => {
    const self = await connect({ version: 5, clientId: "self" });
    await subscribe(self, 1, [["n/#", subOptions(0, { noLocal: true })]]);
    const blind = await connect({ version: 5, clientId: "blind" });
    await subscribe(blind, 1, [["n/#", 0]]);
    const { id } = broker.traces.start({ filter: "n/#" });
    const events = collect(broker, id);
    await self.send(publishPacket(5, { topic: "n/1", payload: "me" }));
    await waitFor(() => events.length === 1, "one traced message");
    assert.deepEqual(
      [...events[0]!.deliveries].sort((x, y) => x.clientId.localeCompare(y.clientId)),
      [
        { clientId: "blind", outcome: "skipped", reason: "acl" },
        { clientId: "self", outcome: "skipped", reason: "no_local" },
      ],
    );
  });
});

Deno.test("trace: a client trace shows what it sent and what it was given, nothing else", async () => {
  await withBroker({}, async ({ broker, connect }) => {
    const watched = await connect({ version: 5, clientId: "watched" });
    await subscribe(watched, 1, [["to/watched", 0]]);
    const { id } = broker.traces.start({ clientId: "watched" });
    const events = collect(broker, id);
    broker.publish({ topic: "to/watched", payload: text("in"), qos: 0, retain: false });
    broker.publish({ topic: "to/nobody", payload: text("x"), qos: 0, retain: false });
    await watched.send(publishPacket(5, { topic: "from/watched", payload: "out" }));
    await waitFor(() => events.length === 2, "two traced messages");
    assert.deepEqual(events.map((e) => e.topic), ["to/watched", "from/watched"]);
    assert.deepEqual(events[1]!.deliveries, []);
  });
});

Deno.test("trace: ends after maxMessages, after its time, or when stopped; a late subscriber gets what it kept", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, ({ broker }) => {
    const publish = (topic: string) => broker.publish({ topic, payload: text(""), qos: 0, retain: false });
    const counted = broker.traces.start({ filter: "#", maxMessages: 2 });
    publish("a");
    publish("b");
    publish("c");
    assert.equal(broker.traces.events(counted.id)?.length, 2);
    const ends: TraceEnd[] = [];
    const replayed: string[] = [];
    broker.traces.subscribe(counted.id, (e) => replayed.push(e.topic), (why) => ends.push(why));
    assert.deepEqual(replayed, ["a", "b"]);
    assert.deepEqual(ends, ["max_messages"]);

    const timed = broker.traces.start({ filter: "#", seconds: 10 });
    assert.equal(timed.expiresAt, clock.now() + 10_000);
    broker.traces.subscribe(timed.id, () => {}, (why) => ends.push(why));
    clock.advance(10_000);
    assert.deepEqual(ends, ["max_messages", "expired"]);

    const stopped = broker.traces.start({ filter: "#" });
    broker.traces.subscribe(stopped.id, () => {}, (why) => ends.push(why));
    assert.equal(broker.traces.stop(stopped.id), true);
    assert.equal(broker.traces.stop(stopped.id), false);
    assert.equal(broker.traces.active, false);
    assert.deepEqual(ends, ["max_messages", "expired", "stopped"]);
    return Promise.resolve();
  });
});

Deno.test("trace: start() refuses bad options", async () => {
  await withBroker({}, ({ broker }) => {
    assert.throws(() => broker.traces.start({}), RangeError);
    assert.throws(() => broker.traces.start({ filter: "a", clientId: "b" }), RangeError);
    assert.throws(() => broker.traces.start({ filter: "a/#/b" }), RangeError);
    assert.throws(() => broker.traces.start({ filter: "a", seconds: 601 }), RangeError);
    assert.throws(() => broker.traces.start({ filter: "a", maxMessages: 0 }), RangeError);
    assert.throws(() => broker.traces.subscribe("nope", () => {}), RangeError);
    return Promise.resolve();
  });
});

Deno.test("trace: broker.close() ends running traces (no timer left behind)", async () => {
  const ends: TraceEnd[] = [];
  await withBroker({}, ({ broker }) => {
    const { id } = broker.traces.start({ filter: "#", seconds: 600 });
    broker.traces.subscribe(id, () => {}, (why) => ends.push(why));
    return Promise.resolve();
  });
  assert.deepEqual(ends, ["closed"]);
});

Deno.test("trace: a PUBLISH the broker refuses (not authorized) shows as rejected, with no deliveries", async () => {
  const authorizer: Authorizer = { ...ALLOW_ALL, canPublish: (_identity, topic) => topic !== "r/secret" };
  await withBroker({ authorizer }, async ({ broker, connect }) => {
    const sub = await connect({ version: 5, clientId: "r-sub" });
    await subscribe(sub, 1, [["r/#", 0]]);
    const { id } = broker.traces.start({ filter: "r/#" });
    const events = collect(broker, id);
    const pub = await connect({ version: 5, clientId: "r-pub" });
    await pub.send(publishPacket(5, { topic: "r/secret", payload: "no", qos: 1, id: 3 }));
    await pub.expectPacket(4, "PUBACK");
    assert.equal(events.length, 1);
    assert.equal(events[0]!.from, "r-pub");
    assert.deepEqual(events[0]!.deliveries, []);
    assert.equal(events[0]!.rejected?.reasonCode, 0x87);
    assert.equal(events[0]!.preview, "no");
  });
});
