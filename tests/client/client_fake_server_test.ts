/**
 * MqttClient against a scripted server on loopback: the cases a real broker will not produce on demand (a dead
 * broker, refusals, limits, resends), with a ManualClock for keep-alive, timeouts and backoff. Needs only
 * --allow-net.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { MqttError } from "../../lib/mqtt_error.ts";
import { MqttClient } from "../../lib/client/client.ts";
import type { MqttClientOptions } from "../../lib/client/options.ts";
import type { Packet } from "../../lib/packet/packet.ts";
import { FakeServer, tick, waitFor } from "./_fake_server.ts";

async function withServer(fn: (server: FakeServer) => Promise<void>): Promise<void> {
  const server = new FakeServer();
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

function fakeClient(server: FakeServer, options: MqttClientOptions = {}): MqttClient {
  return new MqttClient({ connect: server.connector, reconnect: false, ...options });
}

Deno.test("keep-alive sends PINGREQ after the interval and detects a broker that never answers", async () => {
  await withServer(async (server) => {
    const clock = new ManualClock(0);
    const c = fakeClient(server, { clock, keepAlive: 10, pingTimeoutMs: 5000 });
    const connected = c.connect();
    const conn = await server.accept();
    await conn.accept();
    await connected;
    clock.advance(9_999);
    clock.advance(1);
    await conn.expect(12); // PINGREQ at exactly 10 s of silence
    clock.advance(4_999);
    assert.equal(c.state.kind, "connected");
    clock.advance(1);
    const disconnect = await conn.expect(14);
    assert.equal(disconnect.reasonCode, 0x8d); // Keep Alive timeout
    const error = await c.closed;
    assert.ok(error instanceof MqttError);
    assert.equal(error.reasonCode, 0x8d);
    assert.equal(clock.pending, 0);
  });
});

Deno.test("keep-alive: a PINGRESP keeps the connection, the next PINGREQ comes one interval later", async () => {
  await withServer(async (server) => {
    const clock = new ManualClock(0);
    const received: Packet[] = [];
    const c = fakeClient(server, {
      clock,
      keepAlive: 10,
      onPacket: (direction, packet) => direction === "in" && received.push(packet),
    });
    const connected = c.connect();
    const conn = await server.accept();
    await conn.accept({ serverKeepAlive: 20 }); // Server Keep Alive wins [MQTT-3.2.2-21 (5.0)]
    assert.equal((await connected).keepAlive, 20);
    clock.advance(20_000);
    await conn.expect(12);
    await conn.send({ type: 13 });
    await waitFor(() => received.some((p) => p.type === 13), 3000, "the PINGRESP");
    clock.advance(19_999);
    await tick(20);
    assert.equal(c.state.kind, "connected");
    clock.advance(1);
    await conn.expect(12);
    await c.close();
    assert.equal(clock.pending, 0);
  });
});

Deno.test("reconnect waits the backoff delays (exponential, capped, with jitter) on a ManualClock", async () => {
  await withServer(async (server) => {
    const clock = new ManualClock(0);
    const delays: number[] = [];
    const c = fakeClient(server, {
      clock,
      keepAlive: 0,
      random: () => 0.5,
      reconnect: { initialDelayMs: 1000, maxDelayMs: 4000, multiplier: 2, jitter: 0.5 },
      onStateChange: (state) => state.kind === "reconnecting" && delays.push(state.delayMs),
    });
    const connected = c.connect();
    const first = await server.accept();
    await first.accept();
    await connected;
    first.close();
    for (const expected of [750, 1500, 3000, 3000]) {
      await waitFor(
        () => delays.length > 0 && c.state.kind === "reconnecting",
        3000,
        "the reconnecting state",
      );
      assert.equal(delays.shift(), expected);
      const accepted = server.acceptedCount;
      clock.advance(expected - 1);
      await tick(20);
      assert.equal(server.acceptedCount, accepted, `no attempt before ${expected} ms`);
      clock.advance(1);
      const attempt = await server.accept();
      if (expected === 3000 && delays.length === 0 && server.acceptedCount === 5) {
        const connect = await attempt.accept();
        assert.equal(connect.cleanStart, false); // a v5 reconnect asks for the session back
        break;
      }
      await attempt.expect(1);
      attempt.close(); // refuse by hanging up
    }
    await waitFor(() => c.state.kind === "connected", 3000, "the last attempt to connect");
    await c.close();
    assert.equal(clock.pending, 0);
  });
});

Deno.test("close() while waiting to reconnect clears the timer", async () => {
  await withServer(async (server) => {
    const clock = new ManualClock(0);
    const c = fakeClient(server, { clock, keepAlive: 0, reconnect: { initialDelayMs: 60_000 } });
    const connected = c.connect();
    const conn = await server.accept();
    await conn.accept();
    await connected;
    conn.close();
    await waitFor(() => c.state.kind === "reconnecting", 3000, "the reconnecting state");
    await c.close();
    assert.equal(c.state.kind, "closed");
    assert.equal(clock.pending, 0);
  });
});

Deno.test("connect() times out on the injected clock when no CONNACK comes", async () => {
  await withServer(async (server) => {
    const clock = new ManualClock(0);
    const c = fakeClient(server, { clock, connectTimeoutMs: 5000 });
    const connecting = c.connect();
    const conn = await server.accept();
    await conn.expect(1);
    clock.advance(5000);
    await assert.rejects(connecting, Deno.errors.TimedOut);
    assert.equal(c.state.kind, "closed");
  });
});

Deno.test("connect() rejects with the reason code of a refused CONNACK (v5 and v3.1.1)", async () => {
  await withServer(async (server) => {
    const v5 = fakeClient(server);
    const refused5 = v5.connect();
    const conn5 = await server.accept();
    await conn5.expect(1);
    await conn5.send({
      type: 2,
      sessionPresent: false,
      reasonCode: 0x87,
      properties: { reasonString: "no" },
    });
    await assert.rejects(refused5, (error: unknown) => {
      assert.ok(error instanceof MqttError);
      assert.equal(error.reasonCode, 0x87);
      assert.match(error.message, /NotAuthorized \(0x87\): no/);
      return true;
    });
    const v4 = fakeClient(server, { protocolVersion: 4 });
    const refused4 = v4.connect();
    const conn4 = await server.accept();
    await conn4.expect(1);
    await conn4.send({ type: 2, sessionPresent: false, reasonCode: 5 });
    await assert.rejects(refused4, (error: unknown) => {
      assert.ok(error instanceof MqttError);
      assert.equal(error.reasonCode, 0x87);
      assert.match(error.message, /not authorized \(return code 5\)/);
      return true;
    });
  });
});

Deno.test("publish() respects the server's Receive Maximum", async () => {
  await withServer(async (server) => {
    const c = fakeClient(server);
    const connected = c.connect();
    const conn = await server.accept();
    await conn.accept({ receiveMaximum: 2 });
    await connected;
    const results = [1, 2, 3, 4].map((i) => c.publish("rm", `${i}`, { qos: 1 }));
    const a = await conn.expect(3);
    const b = await conn.expect(3);
    await tick(20);
    assert.equal(c.status().inflightOut, 2);
    assert.equal(c.status().queuedOut, 2);
    await conn.send({ type: 4, packetId: a.packetId!, reasonCode: 0 });
    const third = await conn.expect(3);
    await conn.send({ type: 4, packetId: b.packetId!, reasonCode: 0x10 });
    const fourth = await conn.expect(3);
    await conn.send({ type: 4, packetId: third.packetId!, reasonCode: 0 });
    await conn.send({ type: 4, packetId: fourth.packetId!, reasonCode: 0x87 });
    const settled = await Promise.allSettled(results);
    assert.deepEqual(settled.slice(0, 3).map((r) => r.status === "fulfilled" && r.value.reasonCode), [
      0,
      0x10,
      0,
    ]);
    assert.ok(settled[3]!.status === "rejected" && settled[3]!.reason instanceof MqttError);
    assert.equal((settled[3] as PromiseRejectedResult).reason.reasonCode, 0x87);
    await c.close();
  });
});

Deno.test("publish() refuses a packet over the server's Maximum Packet Size without sending it", async () => {
  await withServer(async (server) => {
    const sent: Packet[] = [];
    const c = fakeClient(server, { onPacket: (d, p) => d === "out" && sent.push(p) });
    const connected = c.connect();
    const conn = await server.accept();
    await conn.accept({ maximumPacketSize: 64, maximumQoS: 1, retainAvailable: 0 });
    await connected;
    await assert.rejects(
      c.publish("big", new Uint8Array(100)),
      (e: unknown) => (e as MqttError).reasonCode === 0x95,
    );
    await assert.rejects(
      c.publish("q", "x", { qos: 2 }),
      (e: unknown) => (e as MqttError).reasonCode === 0x9b,
    );
    await assert.rejects(
      c.publish("r", "x", { retain: true }),
      (e: unknown) => (e as MqttError).reasonCode === 0x9a,
    );
    assert.deepEqual(sent.map((p) => p.type), [1]);
    await c.close();
  });
});

Deno.test("outgoing topic aliases: assigned up to the server's maximum, least recently used rebound", async () => {
  await withServer(async (server) => {
    const c = fakeClient(server);
    const connected = c.connect();
    const conn = await server.accept();
    await conn.accept({ topicAliasMaximum: 2 });
    await connected;
    for (const topic of ["t/1", "t/1", "t/2", "t/3", "t/1"]) await c.publish(topic, "x");
    const wire: [string, number | undefined][] = [];
    for (let i = 0; i < 5; i++) {
      const p = await conn.expect(3);
      wire.push([p.topic, p.properties?.topicAlias]);
    }
    assert.deepEqual(wire, [["t/1", 1], ["", 1], ["t/2", 2], ["t/3", 1], ["t/1", 2]]);
    await c.close();
  });
});

Deno.test("incoming topic aliases are resolved; an unmapped alias with an empty topic ends the connection with 0x82 (5.0 section 3.3.4)", async () => {
  await withServer(async (server) => {
    const c = fakeClient(server, { properties: { topicAliasMaximum: 5 } });
    const connected = c.connect();
    const conn = await server.accept();
    await conn.accept();
    await connected;
    const base = { type: 3, payload: new Uint8Array(), qos: 0, retain: false, dup: false } as const;
    await conn.send({ ...base, topic: "long/topic/name", properties: { topicAlias: 3 } });
    await conn.send({ ...base, topic: "", properties: { topicAlias: 3 } });
    const iterator = c.messages();
    assert.equal((await iterator.next()).value?.topic, "long/topic/name");
    const second = (await iterator.next()).value;
    assert.equal(second?.topic, "long/topic/name");
    assert.equal(second?.properties, undefined);
    await conn.send({ ...base, topic: "", properties: { topicAlias: 4 } });
    assert.equal((await conn.expect(14)).reasonCode, 0x82);
    await assert.rejects(iterator.next(), (e: unknown) => (e as MqttError).reasonCode === 0x82);
  });
});

Deno.test("an incoming topic alias above the client's Topic Alias Maximum ends the connection with 0x94 (5.0 section 3.3.4)", async () => {
  await withServer(async (server) => {
    const c = fakeClient(server, { properties: { topicAliasMaximum: 5 } });
    const connected = c.connect();
    const conn = await server.accept();
    await conn.accept();
    await connected;
    const iterator = c.messages();
    const base = { type: 3, payload: new Uint8Array(), qos: 0, retain: false, dup: false } as const;
    await conn.send({ ...base, topic: "a/b", properties: { topicAlias: 6 } });
    assert.equal((await conn.expect(14)).reasonCode, 0x94);
    await assert.rejects(iterator.next(), (e: unknown) => (e as MqttError).reasonCode === 0x94);
  });
});

Deno.test("an incoming QoS 2 message resent after a reconnect is handed out once (exactly once)", async () => {
  await withServer(async (server) => {
    const clock = new ManualClock(0);
    const c = fakeClient(server, {
      clock,
      clientId: "eo",
      keepAlive: 0,
      reconnect: { initialDelayMs: 100, jitter: 0 },
      properties: { sessionExpiryInterval: 60 },
    });
    const connected = c.connect();
    const first = await server.accept();
    await first.accept();
    await connected;
    const publish = {
      type: 3,
      topic: "eo",
      payload: new TextEncoder().encode("once"),
      qos: 2,
      retain: false,
      dup: false,
      packetId: 7,
    } as const;
    await first.send(publish);
    await waitFor(() => c.status().unclaimed === 1, 3000, "the message");
    first.close();
    await waitFor(() => c.state.kind === "reconnecting", 3000, "the reconnecting state");
    clock.advance(100);
    const second = await server.accept();
    await second.accept(undefined, true);
    await second.send({ ...publish, dup: true });
    await waitFor(() => c.status().inflightIn === 1 && c.state.kind === "connected", 3000, "the resend");
    const iterator = c.messages();
    const message = await iterator.next();
    assert.equal(new TextDecoder().decode(message.value!.payload), "once");
    assert.equal((await second.expect(5)).packetId, 7); // PUBREC on the new connection
    await second.send({ type: 6, packetId: 7, reasonCode: 0 });
    assert.equal((await second.expect(7)).packetId, 7);
    assert.equal(c.status().unclaimed, 0);
    await c.close();
    assert.equal((await iterator.next()).done, true);
  });
});

Deno.test("an outgoing QoS 2 flow resumes with PUBREL after a reconnect with a session", async () => {
  await withServer(async (server) => {
    const clock = new ManualClock(0);
    const sent: Packet[] = [];
    const c = fakeClient(server, {
      clock,
      keepAlive: 0,
      reconnect: { initialDelayMs: 100, jitter: 0 },
      onPacket: (d, p) => d === "out" && sent.push(p),
    });
    const connected = c.connect();
    const first = await server.accept();
    await first.accept();
    await connected;
    const result = c.publish("q2", "x", { qos: 2 });
    const publish = await first.expect(3);
    await first.send({ type: 5, packetId: publish.packetId!, reasonCode: 0 });
    await first.expect(6);
    first.close();
    await waitFor(() => c.state.kind === "reconnecting", 3000, "the reconnecting state");
    clock.advance(100);
    const second = await server.accept();
    await second.accept(undefined, true);
    assert.equal((await second.expect(6)).packetId, publish.packetId);
    await second.send({ type: 7, packetId: publish.packetId!, reasonCode: 0 });
    assert.equal((await result).reasonCode, 0);
    assert.equal(sent.filter((p) => p.type === 3).length, 1); // the PUBLISH itself is not sent again
    await c.close();
  });
});

Deno.test("a server-assigned Client Identifier is used, and kept for reconnects", async () => {
  await withServer(async (server) => {
    const clock = new ManualClock(0);
    const c = fakeClient(server, {
      clock,
      clientId: "",
      keepAlive: 0,
      reconnect: { initialDelayMs: 10, jitter: 0 },
    });
    const connected = c.connect();
    const first = await server.accept();
    assert.equal((await first.accept({ assignedClientIdentifier: "srv-42" })).clientId, "");
    assert.equal((await connected).clientId, "srv-42");
    first.close();
    await waitFor(() => c.state.kind === "reconnecting", 3000, "the reconnecting state");
    clock.advance(10);
    const second = await server.accept();
    assert.equal((await second.accept()).clientId, "srv-42");
    await c.close();
  });
});

Deno.test("a server DISCONNECT with Session taken over ends the client instead of reconnecting", async () => {
  await withServer(async (server) => {
    const c = fakeClient(server, { reconnect: true });
    const connected = c.connect();
    const conn = await server.accept();
    await conn.accept();
    await connected;
    await conn.send({ type: 14, reasonCode: 0x8e });
    const error = await c.closed;
    assert.ok(error instanceof MqttError);
    assert.equal(error.reasonCode, 0x8e);
    assert.match(error.message, /SessionTakenOver/);
    assert.equal(await conn.next(), undefined); // no DISCONNECT back: the server's was the last packet (5.0 section 3.14.4)
  });
});

Deno.test("ping() resolves with the round-trip time", async () => {
  await withServer(async (server) => {
    const clock = new ManualClock(1000);
    const c = fakeClient(server, { clock });
    const connected = c.connect();
    const conn = await server.accept();
    await conn.accept();
    await connected;
    const rtt = c.ping();
    await conn.expect(12);
    clock.advance(7);
    await conn.send({ type: 13 });
    assert.equal(await rtt, 7);
    await c.close();
  });
});

Deno.test("AbortSignal closes the client: DISCONNECT sent, iterators and pending calls end, nothing leaks", async () => {
  await withServer(async (server) => {
    const controller = new AbortController();
    const c = fakeClient(server, { signal: controller.signal });
    const connected = c.connect();
    const conn = await server.accept();
    await conn.accept();
    await connected;
    const iterator = c.messages("x/#");
    const messageEnds = assert.rejects(iterator.next(), /shutting down/);
    const publishFails = assert.rejects(c.publish("x", "never acknowledged", { qos: 1 }), /shutting down/);
    await conn.expect(3);
    controller.abort(new Error("shutting down"));
    await conn.expect(14);
    await messageEnds;
    await publishFails;
    assert.equal((await c.closed)?.message, "shutting down");
    assert.equal(c.state.kind, "closed");
    await assert.rejects(c.publish("x", "y"), /closed/);
  });
});

Deno.test("close() during connect aborts the attempt; connect() rejects", async () => {
  await withServer(async (server) => {
    const c = fakeClient(server);
    const connecting = c.connect();
    const conn = await server.accept();
    await conn.expect(1);
    await c.close();
    await assert.rejects(connecting, /closed/);
    assert.equal(await c.closed, undefined);
  });
});

Deno.test("publish() while reconnecting waits and goes out after the reconnect", async () => {
  await withServer(async (server) => {
    const clock = new ManualClock(0);
    const c = fakeClient(server, { clock, keepAlive: 0, reconnect: { initialDelayMs: 50, jitter: 0 } });
    const connected = c.connect();
    const first = await server.accept();
    await first.accept();
    await connected;
    first.close();
    await waitFor(() => c.state.kind === "reconnecting", 3000, "the reconnecting state");
    const result = c.publish("later", "queued", { qos: 1 });
    const sub = c.subscribe("s");
    assert.equal(c.status().queuedOut, 1);
    clock.advance(50);
    const second = await server.accept();
    await second.accept();
    const subscribe = await second.expect(8);
    const publish = await second.expect(3);
    assert.equal(publish.dup, false);
    await second.send({ type: 9, packetId: subscribe.packetId, reasonCodes: [0] });
    await second.send({ type: 4, packetId: publish.packetId!, reasonCode: 0 });
    assert.deepEqual((await sub).reasonCodes, [0]);
    assert.equal((await result).reasonCode, 0);
    await c.close();
  });
});

Deno.test("close() gives up on a server that stopped reading after 5 s on the injected clock", async () => {
  await withServer(async (server) => {
    const clock = new ManualClock(0);
    const c = fakeClient(server, { clock, keepAlive: 0 });
    const connected = c.connect();
    const conn = await server.accept();
    await conn.accept();
    await connected;
    conn.pauseReading();
    const big = new Uint8Array(1 << 20);
    const writes = Array.from({ length: 64 }, () => c.publish("big", big).catch(() => "failed"));
    await tick(100); // the socket buffers fill up
    const closing = c.close();
    await tick(20);
    assert.equal(c.state.kind, "closing");
    clock.advance(5000);
    await closing;
    assert.equal(c.state.kind, "closed");
    assert.ok((await Promise.all(writes)).includes("failed"));
    assert.equal(clock.pending, 0);
  });
});

Deno.test("ping() measures the round trip on monotonic time: a wall-clock step does not change it", async () => {
  await withServer(async (server) => {
    const clock = new ManualClock(0);
    const c = fakeClient(server, { clock, keepAlive: 0 });
    const connected = c.connect();
    const conn = await server.accept();
    await conn.accept();
    await connected;
    const rtt = c.ping();
    await conn.expect(12);
    clock.stepWallClock(-60_000);
    clock.advance(25);
    await conn.send({ type: 13 });
    assert.equal(await rtt, 25);
    await c.close();
  });
});
