/**
 * The `node:net` TCP listener (`acceptTcp`, `transport/net.ts`, issue 19): a connection on it has no read pending
 * while idle, and its read loop starts again when the socket has data. These check that nothing is lost across
 * those restarts: the CONNECT, packets split over reads, a packet larger than the read buffer, back-to-back
 * packets, keep alive, the peer going away and the broker closing.
 */

import assert from "node:assert/strict";
import { Broker } from "../../../lib/broker/broker.ts";
import { acceptTcp } from "../../../lib/broker/server/accept_loop.ts";
import type { AcceptLoop } from "../../../lib/broker/server/accept_loop.ts";
import {
  CONNACK_OK_V4,
  connectPacket,
  PINGREQ,
  PINGRESP,
  publishPacket,
  subackPacket,
  subscribePacket,
  WireClient,
} from "../_wire.ts";

type Opened = WireClient & { readonly port: number };

async function withNetBroker(
  fn: (open: (clientId: string) => Promise<Opened>, broker: Broker) => Promise<void>,
  options: ConstructorParameters<typeof Broker>[0] = {},
): Promise<void> {
  const broker = new Broker({ sysInterval: 0, ...options });
  await broker.start();
  const loop: AcceptLoop = await acceptTcp(broker, { hostname: "127.0.0.1", port: 0 }, {
    name: "tcp (node:net)",
    allowAnonymous: true,
  });
  const clients: WireClient[] = [];
  const open = async (clientId: string) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: loop.addr.port });
    conn.setNoDelay(true);
    const client = new WireClient(conn, 4);
    clients.push(client);
    await client.send(connectPacket({ version: 4, clientId }));
    await client.expect(CONNACK_OK_V4, "CONNACK");
    return Object.assign(client, { port: loop.addr.port });
  };
  try {
    await fn(open, broker);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await loop.close();
    await broker.close();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("node:net listener: an idle connection is served again when packets arrive, split or whole", async () => {
  await withNetBroker(async (open) => {
    const sub = await open("sub");
    const pub = await open("pub");
    await sub.send(subscribePacket(4, 1, [["t/#", 0]]));
    await sub.expect(subackPacket(4, 1, [0]), "SUBACK");
    await sleep(50); // both idle: no read pending
    const message = publishPacket(4, { topic: "t/1", payload: "hello" });
    // One PUBLISH in three writes: the read loop stops between them and starts again on each.
    for (const part of [message.subarray(0, 1), message.subarray(1, 5), message.subarray(5)]) {
      await pub.send(part);
      await sleep(20);
    }
    await sub.expect(message, "the PUBLISH split over three reads");
    // Two packets in one write, then a PINGREQ after a pause.
    const second = publishPacket(4, { topic: "t/2", payload: "x" });
    await pub.send(second, PINGREQ);
    await pub.expect(PINGRESP, "PINGRESP after the PUBLISH in the same write");
    await sub.expect(second, "the second PUBLISH");
    await sleep(50);
    await sub.send(PINGREQ);
    await sub.expect(PINGRESP, "PINGRESP after idling");
  });
});

Deno.test("node:net listener: a PUBLISH larger than any read buffer arrives whole", async () => {
  await withNetBroker(async (open) => {
    const sub = await open("big-sub");
    const pub = await open("big-pub");
    await sub.send(subscribePacket(4, 1, [["big", 0]]));
    await sub.expect(subackPacket(4, 1, [0]), "SUBACK");
    const payload = new Uint8Array(300 * 1024).map((_, i) => i % 251);
    const message = publishPacket(4, { topic: "big", payload });
    await pub.send(message);
    await sub.expect(message, "300 KiB PUBLISH");
    await pub.send(PINGREQ);
    await pub.expect(PINGRESP, "the publisher is still served");
  });
});

Deno.test("node:net listener: keep alive closes a silent client; a peer going away ends its connection", async () => {
  await withNetBroker(async (open, broker) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: (await open("first")).port });
    const silent = new WireClient(conn, 4);
    try {
      await silent.send(connectPacket({ version: 4, clientId: "silent", keepAlive: 1 }));
      await silent.expect(CONNACK_OK_V4, "CONNACK");
      // Idle, no read pending: the deadline queue still closes it after 1.5 s [MQTT-3.1.2-24 (3.1.1)].
      const started = performance.now();
      await silent.expectClosed("closed for keep alive");
      assert.ok(performance.now() - started < 2500, "closed within 1.5 s and a bit");
    } finally {
      await silent.close();
    }
    const gone = await open("gone");
    const before = broker.connectionCount;
    await gone.close();
    for (let i = 0; i < 100 && broker.connectionCount >= before; i++) await sleep(10);
    assert.equal(broker.connectionCount, before - 1, "the connection of a peer that went away is gone");
  });
});

Deno.test("node:net listener: broker.close() disconnects its clients", async () => {
  const broker = new Broker({ sysInterval: 0 });
  await broker.start();
  const loop = await acceptTcp(broker, { hostname: "127.0.0.1", port: 0 }, {
    name: "tcp",
    allowAnonymous: true,
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: loop.addr.port });
  const client = new WireClient(conn, 4);
  try {
    await client.send(connectPacket({ version: 4, clientId: "c" }));
    await client.expect(CONNACK_OK_V4, "CONNACK");
    await loop.close();
    await broker.close();
    await client.expectClosed("closed by the broker");
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.1", port: loop.addr.port }).then((c) => c.close()),
      "the listener no longer accepts",
    );
  } finally {
    await client.close();
  }
});

Deno.test("node:net listener: packets sent while a slow authenticator decides are served after CONNACK", async () => {
  const authenticator = {
    authenticate: () =>
      new Promise<{ reasonCode: number }>((resolve) => setTimeout(() => resolve({ reasonCode: 0 }), 100)),
  };
  await withNetBroker(async (open) => {
    const first = await open("first");
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: first.port });
    const client = new WireClient(conn, 4);
    try {
      // CONNECT and a PINGREQ in one write, then another PINGREQ while the authenticator still waits.
      await client.send(connectPacket({ version: 4, clientId: "slow" }), PINGREQ);
      await sleep(30);
      await client.send(PINGREQ);
      await client.expect(CONNACK_OK_V4, "CONNACK after 100 ms");
      await client.expect(PINGRESP, "the first PINGRESP");
      await client.expect(PINGRESP, "the second PINGRESP");
    } finally {
      await client.close();
    }
  }, { authenticator });
});

Deno.test("node:net listener: a peer still sending when the broker closes on it gets its answer, then the close", async () => {
  await withNetBroker(async (open, broker) => {
    const client = await open("bad");
    const before = broker.connectionCount;
    // A second CONNECT is a protocol error [MQTT-3.1.0-2 (3.1.1)], followed at once by more bytes.
    await client.trySend(connectPacket({ version: 4, clientId: "bad" }), new Uint8Array(64 * 1024));
    await client.expectClosed("closed after the protocol error");
    for (let i = 0; i < 100 && broker.connectionCount >= before; i++) await sleep(10);
    assert.equal(broker.connectionCount, before - 1);
  });
});
