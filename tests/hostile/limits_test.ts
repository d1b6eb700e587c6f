/**
 * Every limit a peer can run into, on the wire, for 3.1.1 and 5.0 where the limit applies: what the client gets
 * when it is hit (the exact reason code, or a closed socket for 3.1.1), that nothing past the limit is kept, and
 * that the connection (or the broker, for the connection limits) keeps serving what is within it.
 */

import assert from "node:assert/strict";
import type { Broker } from "../../lib/broker/broker.ts";
import type { Connection } from "../../lib/broker/connection.ts";
import { ManualClock } from "../../lib/clock.ts";
import type { ProtocolVersion } from "../../lib/packet/packet_type.ts";
import { memoryPair } from "../../lib/transport/memory.ts";
import type { ByteStream } from "../../lib/transport/transport.ts";
import {
  CONNACK_OK_V4,
  connectPacket,
  hex,
  P,
  packet,
  puback,
  publishPacket,
  pubrec,
  str,
  subackPacket,
  subscribe,
  subscribePacket,
  u16,
  unsubscribePacket,
  v,
  VERSIONS,
  waitFor,
  WireClient,
  withBroker,
} from "../broker/_wire.ts";

// ---- helpers -----------------------------------------------------------------------------------------------

/**
 * Clients served through {@linkcode Broker.handle} over in-memory streams, with a remote address of our choice
 * (TCP from this test always comes from 127.0.0.1). Closes them all and waits for the broker's side.
 */
class MemoryClients {
  readonly #broker: Broker;
  readonly #clients: WireClient[] = [];
  readonly #served: Promise<void>[] = [];

  constructor(broker: Broker) {
    this.#broker = broker;
  }

  /** A raw client that the broker sees coming from `remoteAddress` ("host:port"). */
  open(
    remoteAddress: string,
    version: ProtocolVersion,
    brokerSide?: (s: ByteStream) => ByteStream,
  ): WireClient {
    const [ours, theirs] = memoryPair();
    this.#served.push(
      this.#broker.handle(brokerSide?.(theirs) ?? theirs, { remoteAddress, allowAnonymous: true }),
    );
    const client = new WireClient(ours, version);
    this.#clients.push(client);
    return client;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.#clients.map((c) => c.close()));
    await Promise.all(this.#served);
  }
}

/** Runs `fn` with a {@linkcode MemoryClients} on `broker`; always closes them. */
async function withMemoryClients(
  broker: Broker,
  fn: (clients: MemoryClients) => Promise<void>,
): Promise<void> {
  const clients = new MemoryClients(broker);
  try {
    await fn(clients);
  } finally {
    await clients.closeAll();
  }
}

/** A stream whose writes hang while {@linkcode StalledStream.stall} is on: a peer that stopped reading. */
class StalledStream implements ByteStream {
  readonly #inner: ByteStream;
  #gate: Promise<void> = Promise.resolve();
  #release: (() => void) | undefined;

  constructor(inner: ByteStream) {
    this.#inner = inner;
  }

  /** Writes from now on wait until {@linkcode StalledStream.resume}. */
  stall(): void {
    if (this.#release !== undefined) return;
    this.#gate = new Promise((resolve) => this.#release = resolve);
  }

  resume(): void {
    this.#release?.();
    this.#release = undefined;
  }

  read(buffer: Uint8Array): Promise<number | null> {
    return this.#inner.read(buffer);
  }

  async write(data: Uint8Array): Promise<number> {
    await this.#gate;
    return this.#inner.write(data);
  }

  close(): void {
    this.resume();
    this.#inner.close();
  }
}

/** Sends CONNECT and expects a successful CONNACK. */
async function handshake(client: WireClient, clientId: string): Promise<void> {
  await client.send(connectPacket({ version: client.version, clientId }));
  if (client.version === 5) {
    const connack = await client.expectPacket(2, "CONNACK");
    assert.equal(connack.reasonCode, 0, `CONNACK: ${connack.properties?.reasonString}`);
  } else {
    await client.expect(CONNACK_OK_V4, "CONNACK");
  }
}

/** A v5 PUBACK/PUBREC (`type` 4/5) with `reasonCode`, a Reason String allowed. */
async function expectAck(client: WireClient, type: 4 | 5, id: number, reasonCode: number): Promise<void> {
  const ack = await client.expectPacket(type, `${type === 4 ? "PUBACK" : "PUBREC"} ${id}`);
  assert.equal(ack.packetId, id);
  assert.equal(ack.reasonCode, reasonCode, `reason 0x${ack.reasonCode.toString(16)}`);
}

/** The connection serving `clientId` (to read how much output it holds). */
function connectionOf(broker: Broker, clientId: string): Connection {
  const link = broker.session(clientId)?.link;
  assert.ok(link !== undefined, `${clientId} is connected`);
  return link as Connection;
}

// ---- connections -------------------------------------------------------------------------------------------

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: a connection past maxConnections is closed at once; the others keep being served`, async () => {
    await withBroker({ maxConnections: 2 }, async ({ broker, connect, open }) => {
      const a = await connect({ version, clientId: "a" });
      const b = await connect({ version, clientId: "b" });
      const c = await open(version);
      await c.trySend(connectPacket({ version, clientId: "c" }));
      await c.expectClosed("close without CONNACK");
      assert.equal(broker.session("c"), undefined, "no session for the refused one");
      await subscribe(a, 1, [["t", 0]]);
      await b.send(publishPacket(version, { topic: "t", payload: "still here" }));
      await a.expect(publishPacket(version, { topic: "t", payload: "still here" }), "delivery after refusal");
      await b.disconnect();
      await waitFor(() => broker.connectionCount === 1, "b's slot to be freed");
      const d = await connect({ version, clientId: "d" });
      await d.disconnect();
      await a.disconnect();
    });
  });
}

Deno.test("maxConnectionsPerAddress counts per IP address (v4 and v6), not per port", async () => {
  await withBroker({ maxConnectionsPerAddress: 2 }, async ({ broker }) => {
    await withMemoryClients(broker, async (clients) => {
      const first = clients.open("10.0.0.1:1001", 4);
      const second = clients.open("10.0.0.1:1002", 5);
      await handshake(first, "first");
      await handshake(second, "second");
      const third = clients.open("10.0.0.1:1003", 4);
      await third.trySend(connectPacket({ version: 4, clientId: "third" }));
      await third.expectClosed("third from 10.0.0.1 closed without CONNACK");
      const other = clients.open("10.0.0.2:1001", 4);
      await handshake(other, "other-host");
      const six = [clients.open("[fe80::1]:1", 5), clients.open("[fe80::1]:2", 5)];
      await handshake(six[0]!, "six-a");
      await handshake(six[1]!, "six-b");
      const sixMore = clients.open("[fe80::1]:3", 5);
      await sixMore.expectClosed("third from fe80::1 closed");
      await first.barrier("first still served");
      await first.disconnect();
      await waitFor(() => broker.connectionCount === 4, "first's slot to be freed");
      const again = clients.open("10.0.0.1:1004", 4);
      await handshake(again, "again");
      await again.disconnect();
    });
  });
});

Deno.test("maxConnectionsPerAddress defaults to 1,024: one address cannot hold every socket (issue #15 item 9)", async () => {
  await withBroker({}, async ({ broker }) => {
    await withMemoryClients(broker, async (clients) => {
      for (let i = 0; i < 1024; i++) clients.open(`10.0.0.9:${i + 1}`, 4);
      await waitFor(() => broker.connectionCount === 1024, "1,024 connections from 10.0.0.9");
      const extra = clients.open("10.0.0.9:2000", 4);
      await extra.expectClosed("the 1,025th from 10.0.0.9 is closed before anything is read");
      const other = clients.open("10.0.0.10:1", 4);
      await handshake(other, "another address");
      await other.disconnect();
    });
  });
});

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: maxConnectionsPerAddress over TCP closes the extra socket; the others keep being served`, async () => {
    await withBroker({ maxConnectionsPerAddress: 1, maxConnections: 100 }, async ({ connect, open }) => {
      const a = await connect({ version, clientId: "only" });
      const b = await open(version);
      await b.trySend(connectPacket({ version, clientId: "second" }));
      await b.expectClosed("second socket from 127.0.0.1 closed");
      await a.barrier("the first still served");
      await a.disconnect();
    });
  });
}

// ---- connect rate ------------------------------------------------------------------------------------------

for (const version of VERSIONS) {
  const code = version === 5 ? "CONNACK 0x9F" : "CONNACK 0x03 Server unavailable";
  Deno.test(`${v(version)}: CONNECTs over connectRatePerAddress get ${code}; the rate refills (ManualClock)`, async () => {
    const clock = new ManualClock(1_000_000);
    await withBroker({ clock, connectRatePerAddress: 2 }, async ({ connect, open }) => {
      const a = await connect({ version, clientId: "a" });
      const b = await connect({ version, clientId: "b" });
      const c = await open(version);
      await c.send(connectPacket({ version, clientId: "c" }));
      if (version === 5) {
        const connack = await c.expectPacket(2, "CONNACK");
        assert.equal(connack.reasonCode, 0x9f, "0x9F Connection rate exceeded");
      } else {
        await c.expect(hex("20 02 00 03"), "CONNACK 0x03");
      }
      await c.expectClosed("close after the refusal");
      await a.barrier("a still served");
      clock.advance(500);
      const d = await connect({ version, clientId: "d" });
      await d.disconnect();
      await a.disconnect();
      await b.disconnect();
    });
  });
}

// ---- message rate and byte quota ---------------------------------------------------------------------------

for (const version of VERSIONS) {
  const answer = version === 5 ? "DISCONNECT 0x96" : "a closed socket";
  Deno.test(`${v(version)}: PUBLISH over messageRatePerClient gets ${answer}; other clients are not affected (ManualClock)`, async () => {
    const clock = new ManualClock(1_000_000);
    await withBroker({ clock, messageRatePerClient: 3 }, async ({ connect }) => {
      const fast = await connect({ version, clientId: "fast" });
      const calm = await connect({ version, clientId: "calm" });
      await subscribe(calm, 1, [["r", 0]]);
      for (let i = 0; i < 3; i++) await fast.send(publishPacket(version, { topic: "r", payload: `${i}` }));
      await fast.barrier("three per second are fine");
      for (let i = 0; i < 3; i++) await calm.expect(publishPacket(version, { topic: "r", payload: `${i}` }));
      await fast.trySend(publishPacket(version, { topic: "r", payload: "too many" }));
      await fast.expectDisconnect(0x96, "DISCONNECT 0x96 Message rate too high");
      await calm.barrier("the fourth was not delivered");
      for (let i = 0; i < 3; i++) {
        await calm.send(publishPacket(version, { topic: "r", payload: `calm ${i}` }));
      }
      for (let i = 0; i < 3; i++) {
        await calm.expect(publishPacket(version, { topic: "r", payload: `calm ${i}` }));
      }
      await calm.disconnect();
    });
  });
}

Deno.test("v5: publishBytesPerSecond: PUBACK and PUBREC 0x97, QoS 0 dropped, nothing delivered past the quota (ManualClock)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, publishBytesPerSecond: 16 }, async ({ connect }) => {
    const publisher = await connect({ version: 5, clientId: "pub" });
    const subscriber = await connect({ version: 5, clientId: "sub" });
    await subscribe(subscriber, 1, [["q", 0]]);
    await publisher.send(publishPacket(5, { topic: "q", payload: "0123456789", qos: 1, id: 1 }));
    await publisher.expect(puback(5, 1), "within the quota");
    await publisher.send(publishPacket(5, { topic: "q", payload: "0123456789", qos: 1, id: 2 }));
    await expectAck(publisher, 4, 2, 0x97);
    await publisher.send(publishPacket(5, { topic: "q", payload: "0123456789", qos: 2, id: 3 }));
    await expectAck(publisher, 5, 3, 0x97);
    await publisher.send(publishPacket(5, { topic: "q", payload: "0123456789" }));
    await publisher.barrier("QoS 0 over the quota gets nothing");
    await subscriber.expect(publishPacket(5, { topic: "q", payload: "0123456789" }), "only the first");
    await subscriber.barrier("nothing past the quota delivered");
    clock.advance(1_000);
    await publisher.send(publishPacket(5, { topic: "q", payload: "refilled", qos: 1, id: 4 }));
    await publisher.expect(puback(5, 4), "the quota refilled");
    await subscriber.expect(publishPacket(5, { topic: "q", payload: "refilled" }));
    await publisher.disconnect();
    await subscriber.disconnect();
  });
});

Deno.test("v4: publishBytesPerSecond: the PUBACK cannot say why, but nothing past the quota is delivered (ManualClock)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, publishBytesPerSecond: 16 }, async ({ connect }) => {
    const publisher = await connect({ version: 4, clientId: "pub" });
    const subscriber = await connect({ version: 4, clientId: "sub" });
    await subscribe(subscriber, 1, [["q", 0]]);
    await publisher.send(publishPacket(4, { topic: "q", payload: "0123456789", qos: 1, id: 1 }));
    await publisher.expect(puback(4, 1));
    await publisher.send(publishPacket(4, { topic: "q", payload: "0123456789", qos: 1, id: 2 }));
    await publisher.expect(puback(4, 2), "3.1.1 PUBACK has no reason code");
    await publisher.send(publishPacket(4, { topic: "q", payload: "0123456789", qos: 2, id: 3 }));
    await publisher.expect(pubrec(4, 3), "3.1.1 PUBREC has no reason code");
    await subscriber.expect(publishPacket(4, { topic: "q", payload: "0123456789" }), "only the first");
    await subscriber.barrier("nothing past the quota delivered");
    await publisher.disconnect();
    await subscriber.disconnect();
  });
});

// ---- inflight, queue, output -------------------------------------------------------------------------------

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: maxInflight: at most that many QoS 1 unacknowledged; each PUBACK lets the next one out`, async () => {
    await withBroker({ maxInflight: 2 }, async ({ connect }) => {
      const sub = await connect({ version, clientId: "sub" });
      const pub = await connect({ version, clientId: "pub" });
      await subscribe(sub, 1, [["w", 1]]);
      for (let i = 1; i <= 4; i++) {
        await pub.send(publishPacket(version, { topic: "w", payload: `${i}`, qos: 1, id: i }));
      }
      for (let i = 1; i <= 4; i++) await pub.expect(puback(version, i));
      await sub.expect(publishPacket(version, { topic: "w", payload: "1", qos: 1, id: 1 }));
      await sub.expect(publishPacket(version, { topic: "w", payload: "2", qos: 1, id: 2 }));
      await sub.barrier("no third before a PUBACK");
      await sub.send(puback(version, 1));
      await sub.expect(publishPacket(version, { topic: "w", payload: "3", qos: 1, id: 3 }));
      await sub.barrier("still two in flight");
      await sub.send(puback(version, 2), puback(version, 3));
      await sub.expect(publishPacket(version, { topic: "w", payload: "4", qos: 1, id: 4 }));
      await sub.send(puback(version, 4));
      await sub.disconnect();
      await pub.disconnect();
    });
  });
}

Deno.test("v5: a client's Receive Maximum below maxInflight narrows its window", async () => {
  await withBroker({ maxInflight: 10 }, async ({ open, connect }) => {
    const sub = await open(5);
    await sub.send(connectPacket({ version: 5, clientId: "narrow", properties: [P.receiveMaximum(1)] }));
    assert.equal((await sub.expectPacket(2)).reasonCode, 0);
    const pub = await connect({ version: 5, clientId: "pub" });
    await subscribe(sub, 1, [["w", 1]]);
    await pub.send(publishPacket(5, { topic: "w", payload: "1", qos: 1, id: 1 }));
    await pub.send(publishPacket(5, { topic: "w", payload: "2", qos: 1, id: 2 }));
    await pub.expect(puback(5, 1));
    await pub.expect(puback(5, 2));
    await sub.expect(publishPacket(5, { topic: "w", payload: "1", qos: 1, id: 1 }));
    await sub.barrier("Receive Maximum 1");
    await sub.send(puback(5, 1));
    await sub.expect(publishPacket(5, { topic: "w", payload: "2", qos: 1, id: 2 }));
    await sub.send(puback(5, 2));
    await sub.disconnect();
    await pub.disconnect();
  });
});

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: maxQueued: messages past the queue are dropped and counted in session.dropped`, async () => {
    await withBroker({ maxInflight: 1, maxQueued: 2 }, async ({ broker, connect }) => {
      const sub = await connect({ version, clientId: "sub" });
      const pub = await connect({ version, clientId: "pub" });
      await subscribe(sub, 1, [["q", 1]]);
      for (let i = 1; i <= 5; i++) {
        await pub.send(publishPacket(version, { topic: "q", payload: `${i}`, qos: 1, id: i }));
      }
      for (let i = 1; i <= 5; i++) await pub.expect(puback(version, i), "the publisher is not told");
      assert.equal(broker.session("sub")!.dropped, 2, "1 in flight, 2 queued, 2 dropped");
      assert.equal(broker.session("sub")!.queued, 2);
      for (let i = 1; i <= 3; i++) {
        await sub.expect(publishPacket(version, { topic: "q", payload: `${i}`, qos: 1, id: i }));
        await sub.send(puback(version, i));
      }
      await sub.barrier("4 and 5 were dropped");
      await sub.disconnect();
      await pub.disconnect();
    });
  });

  Deno.test(`${v(version)}: maxQueued 0 and maxQueuedBytes 0 mean no limit, as Mosquitto's max_queued_messages 0`, async () => {
    await withBroker({ maxInflight: 1, maxQueued: 0, maxQueuedBytes: 0 }, async ({ broker, connect }) => {
      const sub = await connect({ version, clientId: "sub" });
      const pub = await connect({ version, clientId: "pub" });
      await subscribe(sub, 1, [["q", 1]]);
      const count = 1500; // past the default limit of 1,000
      for (let i = 1; i <= count; i++) {
        await pub.send(publishPacket(version, { topic: "q", payload: `${i}`, qos: 1, id: i }));
      }
      for (let i = 1; i <= count; i++) await pub.expect(puback(version, i));
      assert.equal(broker.session("sub")!.dropped, 0, "nothing dropped");
      assert.equal(broker.session("sub")!.queued, count - 1, "1 in flight, the rest queued");
      for (let i = 1; i <= count; i++) {
        await sub.expect(publishPacket(version, { topic: "q", payload: `${i}`, qos: 1, id: i }));
        await sub.send(puback(version, i));
      }
      await sub.disconnect();
      await pub.disconnect();
    });
  });

  Deno.test(`${v(version)}: maxQueuedBytes: payload bytes past it are dropped and counted in session.dropped`, async () => {
    await withBroker({ maxInflight: 1, maxQueuedBytes: 25 }, async ({ broker, connect }) => {
      const sub = await connect({ version, clientId: "sub" });
      const pub = await connect({ version, clientId: "pub" });
      await subscribe(sub, 1, [["q", 1]]);
      const payload = (i: number) => `${i}`.repeat(10); // 10 bytes
      for (let i = 1; i <= 6; i++) {
        await pub.send(publishPacket(version, { topic: "q", payload: payload(i), qos: 1, id: i }));
      }
      for (let i = 1; i <= 6; i++) await pub.expect(puback(version, i));
      assert.equal(broker.session("sub")!.dropped, 3, "1 in flight, 20 bytes queued, 3 dropped");
      for (let i = 1; i <= 3; i++) {
        await sub.expect(publishPacket(version, { topic: "q", payload: payload(i), qos: 1, id: i }));
        await sub.send(puback(version, i));
      }
      await sub.barrier("4, 5 and 6 were dropped");
      await sub.disconnect();
      await pub.disconnect();
    });
  });
}

Deno.test("maxOutputBytes: QoS 0 to a subscriber that stopped reading is dropped past it, counted, and the output stays bounded", async () => {
  const limit = 64 * 1024;
  await withBroker({ maxOutputBytes: limit }, async ({ broker, connect }) => {
    await withMemoryClients(broker, async (clients) => {
      let stalled: StalledStream | undefined;
      const slow = clients.open("10.0.0.9:1", 4, (s) => stalled = new StalledStream(s));
      await handshake(slow, "slow");
      await subscribe(slow, 1, [["busy", 0]]);
      stalled!.stall();
      const pub = await connect({ version: 4, clientId: "pub" });
      const payload = new Uint8Array(4096);
      const sent = 100;
      for (let i = 0; i < sent; i++) await pub.send(publishPacket(4, { topic: "busy", payload }));
      await pub.barrier("all handled");
      const session = broker.session("slow")!;
      const pending = connectionOf(broker, "slow").pendingOutput;
      console.log(
        `  ${sent} x 4 KiB to a stalled subscriber: ${session.dropped} dropped, ${pending} bytes held`,
      );
      assert.ok(pending <= limit + 4096 + 16, `output held ${pending} bytes, limit ${limit}`);
      assert.ok(session.dropped >= sent - limit / 4096 - 1, `dropped ${session.dropped}`);
      stalled!.resume();
      const delivered = sent - session.dropped;
      for (let i = 0; i < delivered; i++) await slow.expect(publishPacket(4, { topic: "busy", payload }));
      await slow.barrier("the dropped ones do not come later");
      await pub.disconnect();
      await slow.disconnect();
    });
  });
});

// ---- subscriptions per client ------------------------------------------------------------------------------
// The one test of the limit's rules for v3 and v5; the 100,000-filter SUBSCRIBE is in hostile_test.ts.

for (const version of VERSIONS) {
  const failure = version === 5 ? 0x97 : 0x80;
  Deno.test(`${v(version)}: maxSubscriptionsPerClient: SUBACK 0x${failure.toString(16)} per filter past it; the connection stays usable`, async () => {
    await withBroker({ maxSubscriptionsPerClient: 2 }, async ({ connect }) => {
      const client = await connect({ version, clientId: "many" });
      await client.send(subscribePacket(version, 1, [["a", 0], ["b", 1], ["c", 1], ["d", 0], ["a", 1]]));
      await client.expect(
        subackPacket(version, 1, [0, 1, failure, failure, 1]),
        "SUBACK with per-filter failures; re-subscribing a kept filter in the same packet is fine",
      );
      await client.send(subscribePacket(version, 2, [["a", 1], ["e", 0]]));
      await client.expect(
        subackPacket(version, 2, [1, failure]),
        "replacing an existing one is not a new one",
      );
      await client.send(publishPacket(version, { topic: "a", payload: "x" }));
      await client.expect(publishPacket(version, { topic: "a", payload: "x" }), "the granted ones work");
      await client.send(publishPacket(version, { topic: "c", payload: "y" }));
      await client.barrier("the refused ones do not deliver");
      await client.send(unsubscribePacket(version, 3, ["b"]));
      await client.next("UNSUBACK");
      await client.send(subscribePacket(version, 4, [["c", 0]]));
      await client.expect(subackPacket(version, 4, [0]), "room again after UNSUBSCRIBE");
      await client.disconnect();
    });
  });
}

// ---- topic length and depth --------------------------------------------------------------------------------

const TOPIC_LIMITS = { maxLength: 16, maxDepth: 3 } as const;
const OVER_LIMITS = [
  ["17 bytes", "abcdefghijklmnopq"],
  ["9 two-byte characters (18 bytes)", "ééééééééé"],
  ["4 levels", "a/b/c/d"],
] as const;

for (const version of VERSIONS) {
  for (const [what, topic] of OVER_LIMITS) {
    const answer = version === 5 ? "DISCONNECT 0x90" : "a closed socket";
    Deno.test(`${v(version)}: PUBLISH to a topic over topicLimits (${what}) gets ${answer}`, async () => {
      await withBroker({ topicLimits: TOPIC_LIMITS }, async ({ connect }) => {
        const client = await connect({ version, clientId: "long" });
        await client.send(publishPacket(version, { topic: "abcdefghijklmnop" })); // 16 bytes: fine
        await client.send(publishPacket(version, { topic: "a/b/c" })); // 3 levels: fine
        await client.barrier("at the limits");
        await client.trySend(publishPacket(version, { topic, payload: "x" }));
        await client.expectDisconnect(0x90, "DISCONNECT 0x90 Topic Name invalid");
      });
    });
  }

  const failure = version === 5 ? 0x8f : 0x80;
  Deno.test(`${v(version)}: SUBSCRIBE filters over topicLimits get 0x${failure.toString(16)} each; the others are granted`, async () => {
    await withBroker({ topicLimits: TOPIC_LIMITS }, async ({ connect }) => {
      const client = await connect({ version, clientId: "filters" });
      await client.send(
        subscribePacket(version, 1, [
          ["abcdefghijklmnopq", 0],
          ["a/+/c", 1],
          ["a/b/c/#", 0],
          ["ééééééééé", 0],
          ["$share/g/a/b/c", 0],
        ]),
      );
      await client.expect(subackPacket(version, 1, [failure, 1, failure, failure, 0]));
      await client.send(publishPacket(version, { topic: "a/x/c", payload: "ok" }));
      await client.expect(publishPacket(version, { topic: "a/x/c", payload: "ok" }), "still usable");
      await client.disconnect();
    });
  });

  Deno.test(`${v(version)}: a will topic over topicLimits refuses the CONNECT (${version === 5 ? "CONNACK 0x90" : "closed"})`, async () => {
    await withBroker({ topicLimits: TOPIC_LIMITS }, async ({ open }) => {
      const client = await open(version);
      await client.send(connectPacket({ version, clientId: "w", will: { topic: "a/b/c/d", payload: "x" } }));
      if (version === 5) assert.equal((await client.expectPacket(2)).reasonCode, 0x90);
      await client.expectClosed();
    });
  });
}

// ---- packet size -------------------------------------------------------------------------------------------

for (const version of VERSIONS) {
  const answer = version === 5 ? "DISCONNECT 0x95" : "a closed socket";
  Deno.test(`${v(version)}: a packet over maxPacketSize gets ${answer}; one at the limit passes`, async () => {
    await withBroker({ maxPacketSize: 64 }, async ({ connect, open }) => {
      const client = await connect({ version, clientId: "big" });
      await subscribe(client, 1, [["s", 0]]);
      const overhead = publishPacket(version, { topic: "s" }).length;
      const fits = publishPacket(version, { topic: "s", payload: "x".repeat(64 - overhead) });
      assert.equal(fits.length, 64);
      await client.send(fits);
      await client.expect(fits, "a 64-byte packet is delivered");
      await client.trySend(publishPacket(version, { topic: "s", payload: "x".repeat(65 - overhead) }));
      await client.expectDisconnect(0x95, "DISCONNECT 0x95 Packet too large");
      const early = await open(version);
      await early.trySend(connectPacket({ version, clientId: "x".repeat(80) }));
      await early.expectClosed("an oversize CONNECT is closed without CONNACK");
    });
  });
}

Deno.test("v5: CONNACK announces maxPacketSize as Maximum Packet Size", async () => {
  await withBroker({ maxPacketSize: 4096 }, async ({ open }) => {
    const client = await open(5);
    await client.send(connectPacket({ version: 5, clientId: "announce" }));
    const connack = await client.expectPacket(2);
    assert.equal(connack.properties?.maximumPacketSize, 4096);
    await client.disconnect();
  });
});

Deno.test("v5: a Remaining Length over maxPacketSize is refused from the fixed header alone (0x95, no body sent)", async () => {
  await withBroker({ maxPacketSize: 1024 }, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "header" });
    await client.trySend(0x30, 0x81, 0x08); // Remaining Length 1025: the body never comes
    await client.expectDisconnect(0x95, "DISCONNECT 0x95 before the body");
  });
});

Deno.test("v4: a SUBSCRIBE over maxPacketSize closes the connection", async () => {
  await withBroker({ maxPacketSize: 32 }, async ({ connect }) => {
    const client = await connect({ version: 4, clientId: "sub" });
    await client.trySend(packet(0x82, u16(1), str("f".repeat(40)), 0));
    await client.expectClosed();
  });
});
