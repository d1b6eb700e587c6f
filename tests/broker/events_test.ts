/**
 * The lifecycle event hub (`lib/broker/events.ts`): each way a client goes or is refused is classified into one
 * reason, from what actually happened on the wire.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import type { ClientEvent } from "../../lib/broker/events.ts";
import { BrokerEvents, disconnectReason, refusalReason } from "../../lib/broker/events.ts";
import type { Authenticator } from "../../lib/broker/auth/auth.ts";
import { connectPacket, DISCONNECT, disconnectPacket, hex, waitFor, withBroker } from "./_wire.ts";

function recorder(events: BrokerEvents): ClientEvent[] {
  const seen: ClientEvent[] = [];
  events.on((e) => seen.push(e));
  return seen;
}

Deno.test("BrokerEvents.on() returns an unsubscribe; listening is false when nobody listens", () => {
  const events = new BrokerEvents();
  assert.equal(events.listening, false);
  const seen: string[] = [];
  const off = events.on((e) => seen.push(e.clientId));
  assert.equal(events.listening, true);
  events.emit({ event: "connected", clientId: "a", remote: "x", reason: "", at: 1 });
  off();
  events.emit({ event: "connected", clientId: "b", remote: "x", reason: "", at: 2 });
  assert.deepEqual(seen, ["a"]);
  assert.equal(events.listening, false);
});

Deno.test("BrokerEvents.emit() goes on to the next listener when one throws", () => {
  const events = new BrokerEvents();
  const seen: string[] = [];
  events.on(() => {
    throw new Error("listener bug");
  });
  events.on((e) => seen.push(e.clientId));
  events.emit({ event: "connected", clientId: "a", remote: "x", reason: "", at: 1 });
  assert.deepEqual(seen, ["a"]);
});

Deno.test("disconnectReason() and refusalReason() classify reason codes", () => {
  assert.equal(disconnectReason(undefined), "socket_error");
  assert.equal(disconnectReason(0x8d), "keepalive");
  assert.equal(disconnectReason(0x8e), "takeover");
  assert.equal(disconnectReason(0x98), "admin");
  assert.equal(disconnectReason(0x8b), "shutdown");
  assert.equal(disconnectReason(0x82), "protocol_error");
  assert.equal(disconnectReason(0x95), "protocol_error");
  assert.equal(refusalReason(0x9f), "rate");
  assert.equal(refusalReason(0x86), "auth");
  assert.equal(refusalReason(0x87), "auth");
  assert.equal(refusalReason(0x89), "server_busy");
  assert.equal(refusalReason(0x85), "protocol");
});

Deno.test("events: connect then DISCONNECT is connected + disconnected normal", async () => {
  await withBroker({}, async ({ broker, connect }) => {
    const seen = recorder(broker.events);
    const client = await connect({ version: 5, clientId: "ev-normal", username: "u" });
    await client.send(DISCONNECT);
    await client.expectClosed();
    await waitFor(() => seen.length === 2, "two events");
    assert.deepEqual(seen.map((e) => [e.event, e.clientId, e.reason, e.protocol]), [
      ["connected", "ev-normal", "", "5.0"],
      ["disconnected", "ev-normal", "normal", "5.0"],
    ]);
    assert.equal(seen[1]!.reasonCode, 0);
    assert.match(seen[0]!.remote, /^127\.0\.0\.1:\d+$/);
    assert.equal(seen[0]!.username, "u");
  });
});

Deno.test("events: a socket closed under a client is socket_error", async () => {
  await withBroker({}, async ({ broker, connect }) => {
    const seen = recorder(broker.events);
    const client = await connect({ version: 4, clientId: "ev-lost" });
    await client.close();
    await waitFor(() => seen.length === 2, "two events");
    assert.equal(seen[1]!.event, "disconnected");
    assert.equal(seen[1]!.reason, "socket_error");
    assert.equal(seen[1]!.protocol, "3.1.1");
  });
});

Deno.test("events: keep alive timeout is keepalive (0x8d)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ broker, connect }) => {
    const seen = recorder(broker.events);
    const client = await connect({ version: 5, clientId: "ev-ka", keepAlive: 10 });
    clock.advance(16_000);
    await client.expectDisconnect(0x8d);
    await waitFor(() => seen.length === 2, "two events");
    assert.equal(seen[1]!.reason, "keepalive");
    assert.equal(seen[1]!.reasonCode, 0x8d);
  });
});

Deno.test("events: a takeover is disconnected(takeover) + takeover for the old connection", async () => {
  await withBroker({}, async ({ broker, connect }) => {
    const seen = recorder(broker.events);
    const first = await connect({ version: 5, clientId: "ev-take" });
    await connect({ version: 5, clientId: "ev-take" });
    await first.expectDisconnect(0x8e);
    await waitFor(() => seen.length === 4, "four events");
    assert.deepEqual(seen.map((e) => `${e.event}:${e.reason}`), [
      "connected:",
      "disconnected:takeover",
      "takeover:takeover",
      "connected:",
    ]);
  });
});

Deno.test("events: a protocol error after CONNACK is protocol_error", async () => {
  await withBroker({}, async ({ broker, connect }) => {
    const seen = recorder(broker.events);
    const client = await connect({ version: 5, clientId: "ev-proto" });
    await client.send(connectPacket({ version: 5, clientId: "ev-proto" })); // a second CONNECT
    await client.expectDisconnect(0x82);
    await waitFor(() => seen.length === 2, "two events");
    assert.equal(seen[1]!.reason, "protocol_error");
  });
});

Deno.test("events: a client DISCONNECT with a reason code is still normal", async () => {
  await withBroker({}, async ({ broker, connect }) => {
    const seen = recorder(broker.events);
    const client = await connect({ version: 5, clientId: "ev-will" });
    await client.send(disconnectPacket(0x04));
    await client.expectClosed();
    await waitFor(() => seen.length === 2, "two events");
    assert.equal(seen[1]!.reason, "normal");
    assert.equal(seen[1]!.reasonCode, 0x04);
  });
});

Deno.test("events: broker.close() is shutdown", async () => {
  const seen: ClientEvent[] = [];
  await withBroker({}, async ({ broker, connect }) => {
    broker.events.on((e) => seen.push(e));
    await connect({ version: 5, clientId: "ev-shut" });
  });
  assert.deepEqual(seen.map((e) => `${e.event}:${e.reason}`), ["connected:", "disconnected:shutdown"]);
});

Deno.test("events: bad credentials are refused(auth) with the CONNACK code", async () => {
  const authenticator: Authenticator = { authenticate: () => ({ reasonCode: 0x86 }) };
  await withBroker({ authenticator }, async ({ broker, open }) => {
    const seen = recorder(broker.events);
    const client = await open(5);
    await client.send(connectPacket({ version: 5, clientId: "ev-auth", username: "u", password: "p" }));
    await client.expectPacket(2, "CONNACK");
    await waitFor(() => seen.length === 1, "one event");
    assert.equal(seen[0]!.event, "refused");
    assert.equal(seen[0]!.reason, "auth");
    assert.equal(seen[0]!.reasonCode, 0x86);
    assert.equal(seen[0]!.clientId, "ev-auth");
    assert.equal(seen[0]!.username, "u", "the user name CONNECT gave");
    assert.equal(seen[0]!.protocol, "5.0");
  });
});

Deno.test("events: the connection limit is refused(limit)", async () => {
  await withBroker({ maxConnections: 1 }, async ({ broker, connect, open }) => {
    const seen = recorder(broker.events);
    await connect({ version: 4, clientId: "ev-one" });
    const second = await open(4);
    await second.expectClosed();
    await waitFor(() => seen.length === 2, "two events");
    assert.equal(seen[1]!.event, "refused");
    assert.equal(seen[1]!.reason, "limit");
    assert.equal(seen[1]!.protocol, undefined);
  });
});

Deno.test("events: no CONNECT within the connect timeout is refused(timeout)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, connectTimeout: 1000 }, async ({ broker, open }) => {
    const seen = recorder(broker.events);
    const client = await open(4);
    await waitFor(() => broker.connectionCount === 1, "the connection");
    clock.advance(2000);
    await client.expectClosed();
    await waitFor(() => seen.length === 1, "one event");
    assert.equal(seen[0]!.reason, "timeout");
  });
});

Deno.test("events: a first packet that is not CONNECT is refused(protocol)", async () => {
  await withBroker({}, async ({ broker, open }) => {
    const seen = recorder(broker.events);
    const client = await open(4);
    await client.send(hex("c0 00")); // PINGREQ first
    await client.expectClosed();
    await waitFor(() => seen.length === 1, "one event");
    assert.equal(seen[0]!.event, "refused");
    assert.equal(seen[0]!.reason, "protocol");
  });
});

Deno.test("events: an offline session reaching its expiry is disconnected(session_expired)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ broker, connect }) => {
    const seen = recorder(broker.events);
    const client = await connect({ version: 5, clientId: "ev-exp", properties: [0x11, 0, 0, 0, 5] });
    await client.send(DISCONNECT);
    await client.expectClosed();
    await waitFor(() => seen.length === 2, "two events");
    clock.advance(6000);
    await waitFor(() => seen.length === 3, "three events");
    assert.equal(seen[2]!.event, "disconnected");
    assert.equal(seen[2]!.reason, "session_expired");
    assert.equal(seen[2]!.clientId, "ev-exp");
  });
});
