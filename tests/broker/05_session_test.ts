/**
 * Sessions (5.0 sections 3.1.2.4, 3.1.2.11.2, 4.1, 4.4): Clean Session / Clean Start, Session Expiry (also set by
 * DISCONNECT), Session Present, subscriptions and queued messages kept while the client is away, the bounded
 * offline queue, and redelivery of unacknowledged messages on resume.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import type { ProtocolVersion } from "../../lib/packet/packet_type.ts";
import { MemoryPersistence } from "../../lib/broker/storage/memory_persistence.ts";
import type { PersistenceOp } from "../../lib/broker/storage/persistence.ts";
import {
  connectPacket,
  type ConnectSpec,
  disconnectPacket,
  P,
  puback,
  pubcomp,
  publishPacket,
  pubrec,
  pubrel,
  subackPacket,
  subscribe,
  subscribePacket,
  v,
  VERSIONS,
  waitFor,
  withBroker,
} from "./_wire.ts";

/** A CONNECT that keeps its session: v3 Clean Session 0, v5 Clean Start 0 with a long Session Expiry. */
function persistent(version: ProtocolVersion, clientId: string): ConnectSpec {
  return version === 5
    ? { version, clientId, clean: false, properties: [P.sessionExpiry(3600)] }
    : { version, clientId, clean: false };
}

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: a clean session is not kept: Session Present 0 next time [MQTT-3.2.2-3 (3.1.1)] [MQTT-3.2.2-3 (5.0)]`, async () => {
    await withBroker({}, async ({ connect, broker }) => {
      const first = await connect({ version, clientId: "cleaner", clean: true });
      await subscribe(first, 1, [["c", 1]]);
      await first.disconnect();
      assert.equal(broker.session("cleaner"), undefined, "session ended with the connection");
      const again = await connect(persistent(version, "cleaner"), false);
      const pub = await connect({ version, clientId: "pub" });
      await pub.send(publishPacket(version, { topic: "c", payload: "x" }));
      await pub.barrier();
      await again.barrier("the old subscription is gone");
      await pub.disconnect();
      await again.disconnect();
    });
  });

  Deno.test(
    `${
      v(version)
    }: a persistent session keeps subscriptions and queues QoS 1 while away [MQTT-3.1.2-5 (3.1.1)] [MQTT-3.1.2-23 (5.0)]`,
    async () => {
      await withBroker({}, async ({ connect, broker }) => {
        const sub = await connect(persistent(version, "keeper"));
        await subscribe(sub, 1, [["k/#", 1]]);
        await sub.disconnect();
        const pub = await connect({ version, clientId: "pub" });
        for (let i = 1; i <= 3; i++) {
          await pub.send(publishPacket(version, { topic: "k/q1", payload: `m${i}`, qos: 1, id: i }));
          await pub.expect(puback(version, i));
        }
        // QoS 0 is not queued for an absent client (queueQoS0 is off by default).
        await pub.send(publishPacket(version, { topic: "k/q0", payload: "lost" }));
        await pub.barrier();
        assert.equal(broker.session("keeper")?.queued, 3);
        const back = await connect(persistent(version, "keeper"), true);
        for (let i = 1; i <= 3; i++) {
          await back.expect(
            publishPacket(version, { topic: "k/q1", payload: `m${i}`, qos: 1, id: i }),
            `queued message ${i}, in order`,
          );
          await back.send(puback(version, i));
        }
        await back.barrier("no QoS 0 message");
        // The subscription is still there.
        await pub.send(publishPacket(version, { topic: "k/live", payload: "now" }));
        await back.expect(publishPacket(version, { topic: "k/live", payload: "now" }));
        await pub.disconnect();
        await back.disconnect();
      });
    },
  );

  Deno.test(`${v(version)}: Clean Session / Clean Start 1 discards a stored session [MQTT-3.1.2-6 (3.1.1)] [MQTT-3.1.2-4 (5.0)]`, async () => {
    await withBroker({}, async ({ connect }) => {
      const sub = await connect(persistent(version, "reset"));
      await subscribe(sub, 1, [["r", 1]]);
      await sub.disconnect();
      const pub = await connect({ version, clientId: "pub" });
      await pub.send(publishPacket(version, { topic: "r", payload: "old", qos: 1, id: 1 }));
      await pub.expect(puback(version, 1));
      const fresh = await connect({ ...persistent(version, "reset"), clean: true }, false);
      await fresh.barrier("no queued message, no subscription");
      await pub.send(publishPacket(version, { topic: "r", payload: "new" }));
      await pub.barrier();
      await fresh.barrier("the old subscription is gone");
      await pub.disconnect();
      await fresh.disconnect();
    });
  });

  Deno.test(
    `${
      v(version)
    }: an unacknowledged QoS 1 message is resent with DUP on resume [MQTT-4.4.0-1 (3.1.1)] [MQTT-4.4.0-1 (5.0)]`,
    async () => {
      await withBroker({}, async ({ connect, broker }) => {
        const sub = await connect(persistent(version, "dup"));
        await subscribe(sub, 1, [["d", 1]]);
        const pub = await connect({ version, clientId: "pub" });
        await pub.send(publishPacket(version, { topic: "d", payload: "m", qos: 1, id: 1 }));
        await pub.expect(puback(version, 1));
        await sub.expect(publishPacket(version, { topic: "d", payload: "m", qos: 1, id: 1 }));
        await sub.close(); // no PUBACK, connection lost
        await waitFor(() => broker.session("dup")?.link === undefined, "the broker to see the loss");
        const back = await connect(persistent(version, "dup"), true);
        await back.expect(
          publishPacket(version, { topic: "d", payload: "m", qos: 1, id: 1, dup: true }),
          "same id, DUP 1",
        );
        await back.send(puback(version, 1));
        await back.barrier();
        assert.equal(broker.session("dup")?.inflight.size, 0);
        await pub.disconnect();
        await back.disconnect();
      });
    },
  );

  Deno.test(
    `${
      v(version)
    }: a QoS 2 message past PUBREC gets its PUBREL resent on resume [MQTT-4.4.0-1 (3.1.1)] [MQTT-4.4.0-1 (5.0)]`,
    async () => {
      await withBroker({}, async ({ connect, broker }) => {
        const sub = await connect(persistent(version, "rel"));
        await subscribe(sub, 1, [["q2", 2]]);
        const pub = await connect({ version, clientId: "pub" });
        await pub.send(publishPacket(version, { topic: "q2", payload: "m", qos: 2, id: 9 }));
        await pub.expect(pubrec(version, 9));
        await pub.send(pubrel(version, 9));
        await pub.expect(pubcomp(version, 9));
        await sub.expect(publishPacket(version, { topic: "q2", payload: "m", qos: 2, id: 1 }));
        await sub.send(pubrec(version, 1));
        await sub.expect(pubrel(version, 1));
        await sub.close(); // no PUBCOMP
        await waitFor(() => broker.session("rel")?.link === undefined, "the broker to see the loss");
        const back = await connect(persistent(version, "rel"), true);
        await back.expect(pubrel(version, 1), "PUBREL again, not the PUBLISH");
        await back.send(pubcomp(version, 1));
        await back.barrier("nothing else");
        assert.equal(broker.session("rel")?.inflight.size, 0);
        await pub.disconnect();
        await back.disconnect();
      });
    },
  );

  Deno.test(
    `${
      v(version)
    }: unacknowledged messages are resent before queued ones, in order [MQTT-4.6.0-1 (3.1.1)] [MQTT-4.6.0-1 (5.0)]`,
    async () => {
      await withBroker({ maxInflight: 2 }, async ({ connect, broker }) => {
        const sub = await connect(persistent(version, "order"));
        await subscribe(sub, 1, [["o", 1]]);
        const pub = await connect({ version, clientId: "pub" });
        for (let i = 0; i < 4; i++) {
          await pub.send(publishPacket(version, { topic: "o", payload: `${i}`, qos: 1, id: i + 1 }));
          await pub.expect(puback(version, i + 1));
        }
        await sub.expect(publishPacket(version, { topic: "o", payload: "0", qos: 1, id: 1 }));
        await sub.expect(publishPacket(version, { topic: "o", payload: "1", qos: 1, id: 2 }));
        await sub.close();
        await waitFor(() => broker.session("order")?.link === undefined, "the broker to see the loss");
        const back = await connect(persistent(version, "order"), true);
        await back.expect(publishPacket(version, { topic: "o", payload: "0", qos: 1, id: 1, dup: true }));
        await back.expect(publishPacket(version, { topic: "o", payload: "1", qos: 1, id: 2, dup: true }));
        await back.barrier("window full");
        await back.send(puback(version, 1), puback(version, 2));
        await back.expect(publishPacket(version, { topic: "o", payload: "2", qos: 1, id: 3 }));
        await back.expect(publishPacket(version, { topic: "o", payload: "3", qos: 1, id: 4 }));
        await back.send(puback(version, 3), puback(version, 4));
        await back.barrier();
        await pub.disconnect();
        await back.disconnect();
      });
    },
  );

  Deno.test(`${v(version)}: incoming QoS 2 state survives a reconnect (no second delivery)`, async () => {
    await withBroker({}, async ({ connect, broker }) => {
      const sub = await connect({ version, clientId: "sub" });
      await subscribe(sub, 1, [["in", 0]]);
      const pub = await connect(persistent(version, "publisher"));
      await pub.send(publishPacket(version, { topic: "in", payload: "m", qos: 2, id: 5 }));
      await pub.expect(pubrec(version, 5));
      await sub.expect(publishPacket(version, { topic: "in", payload: "m" }));
      await pub.close(); // before PUBREL
      await waitFor(() => broker.session("publisher")?.link === undefined, "the broker to see the loss");
      const back = await connect(persistent(version, "publisher"), true);
      await back.send(publishPacket(version, { topic: "in", payload: "m", qos: 2, id: 5, dup: true }));
      await back.expect(pubrec(version, 5), "PUBREC for the resent PUBLISH");
      await back.send(pubrel(version, 5));
      await back.expect(pubcomp(version, 5), "PUBCOMP (the id was known)");
      await sub.barrier("delivered once");
      await back.disconnect();
      await sub.disconnect();
    });
  });

  Deno.test(`${v(version)}: the offline queue is bounded by maxQueued; extra messages are dropped`, async () => {
    await withBroker({ maxQueued: 3 }, async ({ connect, broker }) => {
      const sub = await connect(persistent(version, "bounded"));
      await subscribe(sub, 1, [["b", 1]]);
      await sub.disconnect();
      const pub = await connect({ version, clientId: "pub" });
      for (let i = 1; i <= 5; i++) {
        await pub.send(publishPacket(version, { topic: "b", payload: `${i}`, qos: 1, id: i }));
        await pub.expect(puback(version, i));
      }
      assert.equal(broker.session("bounded")?.queued, 3);
      assert.equal(broker.session("bounded")?.dropped, 2);
      const back = await connect(persistent(version, "bounded"), true);
      for (let i = 1; i <= 3; i++) {
        await back.expect(publishPacket(version, { topic: "b", payload: `${i}`, qos: 1, id: i }));
        await back.send(puback(version, i));
      }
      await back.barrier("the newest two were dropped");
      await pub.disconnect();
      await back.disconnect();
    });
  });
}

Deno.test("v4: a client that was away gets Session Present 1 with 20 02 01 00 [MQTT-3.2.2-2 (3.1.1)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const first = await connect({ version: 4, clientId: "sp", clean: false });
    await first.disconnect();
    const again = await connect({ version: 4, clientId: "sp", clean: false }, true);
    await again.disconnect();
  });
});

Deno.test("v5: without Session Expiry Interval the session ends with the connection (5.0 section 3.1.2.11.2)", async () => {
  await withBroker({}, async ({ connect, broker }) => {
    const first = await connect({ version: 5, clientId: "short", clean: false });
    await subscribe(first, 1, [["s", 1]]);
    await first.disconnect();
    assert.equal(broker.session("short"), undefined);
    const again = await connect({ version: 5, clientId: "short", clean: false }, false);
    await again.disconnect();
  });
});

Deno.test("v5: a session expires after its Session Expiry Interval and is removed (ManualClock)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect, broker }) => {
    const spec: ConnectSpec = {
      version: 5,
      clientId: "exp",
      clean: false,
      properties: [P.sessionExpiry(10)],
    };
    const first = await connect(spec);
    await subscribe(first, 1, [["e", 1]]);
    await first.disconnect();
    clock.advance(9999);
    const again = await connect(spec, true);
    await again.disconnect();
    clock.advance(9999);
    assert.ok(broker.session("exp") !== undefined, "kept before the interval ends");
    clock.advance(1);
    assert.equal(broker.session("exp"), undefined, "removed at the interval");
    // Its subscription went with it.
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "e", payload: "x", qos: 1, id: 1 }));
    await pub.expect(puback(5, 1, 0x10), "PUBACK 0x10 No matching subscribers");
    const last = await connect(spec, false);
    await last.disconnect();
    await pub.disconnect();
  });
});

for (const version of [4] as const) {
  Deno.test(`${v(version)}: persistentClientExpiration ends a Clean Session 0 session the client left that long ago (ManualClock)`, async () => {
    const clock = new ManualClock(1_000_000);
    await withBroker({ clock, persistentClientExpiration: 3600 }, async ({ connect, broker }) => {
      const spec: ConnectSpec = { version, clientId: "random-id", clean: false };
      const first = await connect(spec);
      await subscribe(first, 1, [["e", 1]]);
      await first.disconnect();
      clock.advance(3_599_000);
      const again = await connect(spec, true);
      await again.disconnect(); // the hour starts again
      clock.advance(3_599_999);
      assert.ok(broker.session("random-id") !== undefined, "kept before the hour is up");
      clock.advance(1);
      assert.equal(broker.session("random-id"), undefined, "removed an hour after the client left");
    });
  });
}

Deno.test("v4: without persistentClientExpiration (default 0) a Clean Session 0 session never expires (ManualClock)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect, broker }) => {
    const first = await connect({ version: 4, clientId: "forever", clean: false });
    await first.disconnect();
    clock.advance(10 * 365 * 86_400_000);
    assert.ok(broker.session("forever") !== undefined, "kept after ten years");
  });
});

Deno.test("v5: persistentClientExpiration applies to a session that asked never to expire, not to a shorter one", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, persistentClientExpiration: 60 }, async ({ connect, broker }) => {
    for (const [clientId, expiry] of [["never", 0xffffffff], ["day", 86_400]] as const) {
      const client = await connect({
        version: 5,
        clientId,
        clean: false,
        properties: [P.sessionExpiry(expiry)],
      });
      await client.disconnect();
    }
    clock.advance(60_000);
    assert.equal(broker.session("never"), undefined, "0xFFFFFFFF: ended after persistentClientExpiration");
    assert.ok(broker.session("day") !== undefined, "its own interval applies");
  });
});

Deno.test("v5: DISCONNECT can set a new Session Expiry Interval (ManualClock) (5.0 section 3.14.2.2.2)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect, broker }) => {
    const spec: ConnectSpec = {
      version: 5,
      clientId: "longer",
      clean: false,
      properties: [P.sessionExpiry(10)],
    };
    const client = await connect(spec);
    await client.send(disconnectPacket(0, [P.sessionExpiry(100)]));
    await client.expectClosed();
    clock.advance(50_000);
    assert.ok(broker.session("longer") !== undefined, "kept past the CONNECT interval");
    clock.advance(50_000);
    assert.equal(broker.session("longer"), undefined, "removed at the DISCONNECT interval");
  });
});

Deno.test("v5: DISCONNECT with Session Expiry 0 ends a persistent session at once", async () => {
  await withBroker({}, async ({ connect, broker }) => {
    const client = await connect({
      version: 5,
      clientId: "now",
      clean: false,
      properties: [P.sessionExpiry(60)],
    });
    await client.send(disconnectPacket(0, [P.sessionExpiry(0)]));
    await client.expectClosed();
    assert.equal(broker.session("now"), undefined);
  });
});

Deno.test("v5: DISCONNECT setting a Session Expiry after CONNECT said 0 is a protocol error (5.0 section 3.14.2.2.2)", async () => {
  await withBroker({}, async ({ connect, broker }) => {
    const client = await connect({ version: 5, clientId: "zero", clean: false });
    await client.send(disconnectPacket(0, [P.sessionExpiry(30)]));
    await client.expectDisconnect(0x82, "DISCONNECT Protocol Error");
    assert.equal(broker.session("zero"), undefined, "the session still ends with the connection");
  });
});

Deno.test("v5: Clean Start 1 gives Session Present 0 even when a session existed [MQTT-3.2.2-2 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const spec: ConnectSpec = { version: 5, clientId: "cs", clean: false, properties: [P.sessionExpiry(60)] };
    const first = await connect(spec);
    await first.disconnect();
    const fresh = await connect({ ...spec, clean: true }, false);
    await fresh.disconnect();
  });
});

Deno.test("v5: maxSessionExpiry caps the interval and CONNACK says so (5.0 section 3.2.2.3.2)", async () => {
  await withBroker({ maxSessionExpiry: 60 }, async (context) => {
    const client = await context.open(5);
    await client.send(
      connectPacket({ version: 5, clientId: "cap", clean: false, properties: [P.sessionExpiry(3600)] }),
    );
    const connack = await client.expectPacket(2);
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties?.sessionExpiryInterval, 60);
    await client.disconnect();
    assert.equal(context.broker.session("cap")?.expiryInterval, 60);
  });
});

Deno.test("v5: a queued message expires while the client is away [MQTT-3.3.2-5 (5.0)]; one still valid carries the rest [MQTT-3.3.2-6 (5.0)]", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect }) => {
    const spec: ConnectSpec = {
      version: 5,
      clientId: "away",
      clean: false,
      properties: [P.sessionExpiry(3600)],
    };
    const sub = await connect(spec);
    await subscribe(sub, 1, [["x", 1]]);
    await sub.disconnect();
    const pub = await connect({ version: 5, clientId: "pub" });
    await pub.send(
      publishPacket(5, { topic: "x", payload: "short", qos: 1, id: 1, properties: [P.messageExpiry(5)] }),
    );
    await pub.expect(puback(5, 1));
    await pub.send(
      publishPacket(5, { topic: "x", payload: "long", qos: 1, id: 2, properties: [P.messageExpiry(60)] }),
    );
    await pub.expect(puback(5, 2));
    clock.advance(10_000);
    const back = await connect(spec, true);
    const message = await back.expectPacket(3, "only the unexpired message");
    assert.equal(new TextDecoder().decode(message.payload), "long");
    assert.equal(message.properties?.messageExpiryInterval, 50, "50 s left");
    await back.send(puback(5, message.packetId!));
    await back.barrier();
    await pub.disconnect();
    await back.disconnect();
  });
});

Deno.test("v4: a session kept by a 3.1.1 client is resumed by a 5.0 connection with the same id", async () => {
  await withBroker({}, async ({ connect }) => {
    const old = await connect({ version: 4, clientId: "upgrade", clean: false });
    await subscribe(old, 1, [["u", 1]]);
    await old.disconnect();
    const pub = await connect({ version: 4, clientId: "pub" });
    await pub.send(publishPacket(4, { topic: "u", payload: "m", qos: 1, id: 1 }));
    await pub.expect(puback(4, 1));
    const next = await connect({
      version: 5,
      clientId: "upgrade",
      clean: false,
      properties: [P.sessionExpiry(60)],
    }, true);
    await next.expect(
      publishPacket(5, { topic: "u", payload: "m", qos: 1, id: 1 }),
      "queued message in v5 form",
    );
    await next.send(puback(5, 1));
    await pub.disconnect();
    await next.disconnect();
  });
});

for (const version of VERSIONS) {
  Deno.test(
    `${v(version)}: with queueQoS0, QoS 0 messages wait for an absent client, in order and with RETAIN 0`,
    async () => {
      await withBroker({ queueQoS0: true }, async ({ connect }) => {
        const sub = await connect(persistent(version, "q0"));
        await subscribe(sub, 1, [["z/#", 0]]);
        await sub.disconnect();
        const pub = await connect({ version, clientId: "pub" });
        await pub.send(
          publishPacket(version, { topic: "z/1", payload: "first", retain: true }),
          publishPacket(version, { topic: "z/2", payload: "second" }),
        );
        await pub.barrier();
        const back = await connect(persistent(version, "q0"), true);
        // Sent because of an established subscription: RETAIN 0 [MQTT-3.3.1-9 (3.1.1)] [MQTT-3.3.1-12 (5.0)].
        await back.expect(publishPacket(version, { topic: "z/1", payload: "first" }));
        await back.expect(publishPacket(version, { topic: "z/2", payload: "second" }));
        await back.barrier();
        await pub.disconnect();
        await back.disconnect();
      });
    },
  );
}

/** A MemoryPersistence that counts the putSession ops it commits. */
class CountingStore extends MemoryPersistence {
  putSessions = 0;

  override commit(ops: readonly PersistenceOp[]): Promise<void> {
    for (const op of ops) if (op.kind === "putSession") this.putSessions++;
    return super.commit(ops);
  }
}

Deno.test("a persistent session making 3,000 subscriptions one SUBSCRIBE each writes itself once per commit, not once per SUBSCRIBE, and keeps them all across a restart", async () => {
  const store = new CountingStore();
  const count = 3000;
  await withBroker({ persistence: store }, async ({ connect }) => {
    const client = await connect(persistent(4, "gateway"));
    const packets = Array.from(
      { length: count },
      (_, i) => subscribePacket(4, 1 + i, [[`dev/${i}/+/state`, 1]]),
    );
    await client.send(...packets); // one write: the broker handles them in a few turns
    for (let i = 0; i < count; i++) await client.expect(subackPacket(4, 1 + i, [1]), `SUBACK ${i + 1}`);
    await client.disconnect();
  });
  assert.ok(
    store.putSessions < 50,
    `${store.putSessions} putSession ops for ${count} SUBSCRIBEs: one per commit, not one per SUBSCRIBE`,
  );
  await withBroker({ persistence: store }, async ({ connect }) => {
    const client = await connect(persistent(4, "gateway"), true);
    const pub = await connect({ version: 4, clientId: "pub" });
    for (const i of [0, 1500, count - 1]) {
      await pub.send(publishPacket(4, { topic: `dev/${i}/temp/state`, payload: `${i}` }));
      await client.expect(
        publishPacket(4, { topic: `dev/${i}/temp/state`, payload: `${i}` }),
        `subscription ${i}`,
      );
    }
    await pub.disconnect();
    await client.disconnect();
  });
});

Deno.test("v5: a Session Expiry Interval longer than a timer can wait (999,999,999 s) keeps the session (real clock)", async () => {
  // Timers over 2^31-1 ms fired at once in Deno, so such a session ended 1 ms after the disconnect (issue #14).
  await withBroker({}, async ({ connect, broker }) => {
    const spec: ConnectSpec = {
      version: 5,
      clientId: "forever",
      clean: false,
      properties: [P.sessionExpiry(999_999_999)],
    };
    const first = await connect(spec);
    await subscribe(first, 1, [["f", 1]]);
    await first.disconnect();
    await waitFor(() => broker.session("forever")?.link === undefined, "the broker to see the disconnect");
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(broker.session("forever") !== undefined, "the session is still there");
    const again = await connect(spec, true);
    await again.send(disconnectPacket(0, [P.sessionExpiry(0)]));
    await again.expectClosed();
  });
});

/** A MemoryPersistence whose commits wait while it is held (a slow disk the test controls). */
class GatedStore extends MemoryPersistence {
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;

  hold(): void {
    this.#gate = new Promise((resolve) => this.#open = resolve);
  }

  release(): void {
    this.#open?.();
    this.#gate = undefined;
  }

  override async commit(ops: readonly PersistenceOp[]): Promise<void> {
    await this.#gate;
    return super.commit(ops);
  }
}

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: QoS 2 to a persistent session: PUBLISH and PUBREL wait for their state's commit (3.1.1 and 5.0 section 4.3.3)`, async () => {
    const store = new GatedStore();
    await withBroker({ persistence: store }, async ({ broker, connect }) => {
      const client = await connect(persistent(version, "q2"));
      await subscribe(client, 1, [["t", 2]]);
      store.hold();
      broker.publish({ topic: "t", payload: new TextEncoder().encode("x"), qos: 2, retain: false });
      await client.barrier("no PUBLISH before 'sent' is committed");
      store.release();
      await client.expect(publishPacket(version, { topic: "t", payload: "x", qos: 2, id: 1 }), "PUBLISH");
      store.hold();
      await client.send(pubrec(version, 1));
      await client.barrier("no PUBREL before 'released' is committed");
      store.release();
      await client.expect(pubrel(version, 1), "PUBREL");
      await client.send(pubcomp(version, 1));
      await client.disconnect();
    });
  });

  Deno.test(`${v(version)}: a QoS 2 PUBLISH still waiting for its commit when the client left goes out without DUP on resume`, async () => {
    const store = new GatedStore();
    await withBroker({ persistence: store }, async ({ broker, connect }) => {
      const client = await connect(persistent(version, "q2"));
      await subscribe(client, 1, [["t", 2]]);
      store.hold();
      broker.publish({ topic: "t", payload: new TextEncoder().encode("x"), qos: 2, retain: false });
      await client.close();
      await waitFor(() => broker.session("q2")?.link === undefined, "the broker to see the loss");
      const back = await connect(persistent(version, "q2"), true);
      await back.expect(
        publishPacket(version, { topic: "t", payload: "x", qos: 2, id: 1 }),
        "first attempt: DUP 0",
      );
      store.release();
      await back.barrier("sent once");
      await back.disconnect();
    });
  });
}
