/**
 * Will messages (5.0 sections 3.1.2.5 - 3.1.2.7, 3.1.3.2, 3.14.4): sent when the connection is lost, not after a
 * normal DISCONNECT; v5 DISCONNECT 0x04 and Will Delay Interval; will QoS and retain honoured.
 */

import assert from "node:assert/strict";
import { filesUnavailable, testIf } from "../_permissions.ts";
import { Broker } from "../../lib/broker/broker.ts";
import type { PersistedState, Persistence, PersistenceOp } from "../../lib/broker/storage/persistence.ts";
import { SqlitePersistence } from "../../lib/broker/storage/sqlite_persistence.ts";
import { ManualClock } from "../../lib/clock.ts";
import { as, authenticatorFor, authorizerFor } from "../security/_secured.ts";
import {
  connectPacket,
  type ConnectSpec,
  disconnectPacket,
  hex,
  P,
  puback,
  publishPacket,
  subscribe,
  v,
  VERSIONS,
  waitFor,
  WireClient,
  withBroker,
} from "./_wire.ts";

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: the will is published when the connection is lost [MQTT-3.1.2-8 (3.1.1)] [MQTT-3.1.2-8 (5.0)]`, async () => {
    await withBroker({}, async ({ connect }) => {
      const watcher = await connect({ version, clientId: "watcher" });
      await subscribe(watcher, 1, [["wills/#", 0]]);
      const client = await connect({
        version,
        clientId: "dying",
        will: { topic: "wills/dying", payload: "gone" },
      });
      await client.close(); // no DISCONNECT
      await watcher.expect(publishPacket(version, { topic: "wills/dying", payload: "gone" }), "will");
      await watcher.barrier("one will only");
      await watcher.disconnect();
    });
  });

  Deno.test(`${v(version)}: a normal DISCONNECT discards the will [MQTT-3.1.2-10 (3.1.1)] [MQTT-3.14.4-3 (3.1.1)] [MQTT-3.1.2-10 (5.0)] [MQTT-3.14.4-3 (5.0)]`, async () => {
    await withBroker({}, async ({ connect, broker }) => {
      const watcher = await connect({ version, clientId: "watcher" });
      await subscribe(watcher, 1, [["wills/#", 0]]);
      const client = await connect({
        version,
        clientId: "polite",
        will: { topic: "wills/polite", payload: "x" },
      });
      await client.disconnect();
      await waitFor(() => broker.connectionCount === 1, "the connection to close");
      await watcher.barrier("no will after DISCONNECT");
      await watcher.disconnect();
    });
  });

  Deno.test(`${v(version)}: the will is published when the broker closes for a protocol error`, async () => {
    await withBroker({}, async ({ connect }) => {
      const watcher = await connect({ version, clientId: "watcher" });
      await subscribe(watcher, 1, [["wills/#", 0]]);
      const client = await connect({
        version,
        clientId: "rude",
        will: { topic: "wills/rude", payload: "r" },
      });
      await client.send(connectPacket({ version, clientId: "rude" })); // second CONNECT [MQTT-3.1.0-2 (3.1.1)] [MQTT-3.1.0-2 (5.0)]
      await client.expectDisconnect(0x82);
      await watcher.expect(publishPacket(version, { topic: "wills/rude", payload: "r" }), "will");
      await watcher.disconnect();
    });
  });

  Deno.test(`${v(version)}: will QoS is honoured, capped by the subscription [MQTT-3.8.4-6 (3.1.1)] [MQTT-3.8.4-8 (5.0)]`, async () => {
    await withBroker({}, async ({ connect }) => {
      const high = await connect({ version, clientId: "high" });
      await subscribe(high, 1, [["w", 2]]);
      const low = await connect({ version, clientId: "low" });
      await subscribe(low, 1, [["w", 0]]);
      const client = await connect({ version, clientId: "q1", will: { topic: "w", payload: "q", qos: 1 } });
      await client.close();
      await high.expect(publishPacket(version, { topic: "w", payload: "q", qos: 1, id: 1 }), "will at QoS 1");
      await high.send(puback(version, 1));
      await low.expect(publishPacket(version, { topic: "w", payload: "q" }), "will at QoS 0");
      await high.disconnect();
      await low.disconnect();
    });
  });

  Deno.test(`${v(version)}: a retained will is stored as the retained message [MQTT-3.1.2-17 (3.1.1)] [MQTT-3.1.2-15 (5.0)]`, async () => {
    await withBroker({}, async ({ connect }) => {
      const live = await connect({ version, clientId: "live" });
      await subscribe(live, 1, [["status/dev", 0]]);
      const client = await connect({
        version,
        clientId: "dev",
        will: { topic: "status/dev", payload: "offline", retain: true },
      });
      await client.close();
      await live.expect(
        publishPacket(version, { topic: "status/dev", payload: "offline" }),
        "live: RETAIN 0",
      );
      const late = await connect({ version, clientId: "late" });
      await subscribe(late, 1, [["status/+", 0]]);
      await late.expect(
        publishPacket(version, { topic: "status/dev", payload: "offline", retain: true }),
        "retained will",
      );
      await live.disconnect();
      await late.disconnect();
    });
  });

  Deno.test(`${v(version)}: a will is published after a session take-over closes the old connection`, async () => {
    await withBroker({}, async ({ connect }) => {
      const watcher = await connect({ version, clientId: "watcher" });
      await subscribe(watcher, 1, [["tw", 0]]);
      const old = await connect({ version, clientId: "twin", will: { topic: "tw", payload: "old" } });
      const fresh = await connect({ version, clientId: "twin" });
      await old.expectDisconnect(0x8e);
      await watcher.expect(
        publishPacket(version, { topic: "tw", payload: "old" }),
        "the old connection's will",
      );
      await fresh.disconnect();
      await watcher.disconnect();
    });
  });
}

Deno.test("v5: DISCONNECT 0x04 (Disconnect with Will Message) publishes the will [MQTT-3.14.4-3 (5.0)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const watcher = await connect({ version: 5, clientId: "watcher" });
    await subscribe(watcher, 1, [["w", 0]]);
    const client = await connect({ version: 5, clientId: "asks", will: { topic: "w", payload: "please" } });
    await client.send(hex("e0 01 04"));
    await client.expectClosed();
    await watcher.expect(publishPacket(5, { topic: "w", payload: "please" }), "will");
    await watcher.disconnect();
  });
});

Deno.test("v5: will properties are forwarded, the Will Delay Interval is not (5.0 section 3.1.3.2)", async () => {
  await withBroker({}, async ({ connect }) => {
    const watcher = await connect({ version: 5, clientId: "watcher" });
    await subscribe(watcher, 1, [["w", 0]]);
    const client = await connect({
      version: 5,
      clientId: "props",
      will: { topic: "w", payload: "p", properties: [P.willDelay(0), P.userProperty("why", "lost")] },
    });
    await client.close();
    await watcher.expect(
      publishPacket(5, { topic: "w", payload: "p", properties: [P.userProperty("why", "lost")] }),
    );
    await watcher.disconnect();
  });
});

/** A v5 client with a will and a Will Delay, keeping its session for `expiry` seconds. */
function delayed(clientId: string, delay: number, expiry: number): ConnectSpec {
  return {
    version: 5,
    clientId,
    clean: false,
    properties: [P.sessionExpiry(expiry)],
    will: { topic: "w", payload: clientId, properties: [P.willDelay(delay)] },
  };
}

Deno.test("v5: the will waits for its Will Delay Interval (ManualClock) (5.0 section 3.1.3.2.2)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect, broker }) => {
    const watcher = await connect({ version: 5, clientId: "watcher" });
    await subscribe(watcher, 1, [["w", 0]]);
    const client = await connect(delayed("late", 30, 3600));
    await client.close();
    await waitFor(() => broker.session("late")?.link === undefined, "the broker to see the loss");
    clock.advance(29_999);
    await watcher.barrier("not before the delay");
    clock.advance(1);
    await watcher.expect(publishPacket(5, { topic: "w", payload: "late" }), "will after 30 s");
    await watcher.disconnect();
  });
});

Deno.test("v5: a client back within the Will Delay cancels its will (ManualClock) [MQTT-3.1.3-9 (5.0)]", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect, broker }) => {
    const watcher = await connect({ version: 5, clientId: "watcher" });
    await subscribe(watcher, 1, [["w", 0]]);
    const client = await connect(delayed("back", 30, 3600));
    await client.close();
    await waitFor(() => broker.session("back")?.link === undefined, "the broker to see the loss");
    clock.advance(10_000);
    const again = await connect({
      version: 5,
      clientId: "back",
      clean: false,
      properties: [P.sessionExpiry(3600)],
    }, true);
    clock.advance(60_000);
    await watcher.barrier("no will: the client came back");
    await again.disconnect();
    await watcher.disconnect();
  });
});

Deno.test("v5: the will goes out when the session ends before the Will Delay (ManualClock) (5.0 section 3.1.3.2.2)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect, broker }) => {
    const watcher = await connect({ version: 5, clientId: "watcher" });
    await subscribe(watcher, 1, [["w", 0]]);
    const client = await connect(delayed("ending", 30, 10));
    await client.close();
    await waitFor(() => broker.session("ending")?.link === undefined, "the broker to see the loss");
    clock.advance(9_999);
    await watcher.barrier("not yet");
    clock.advance(1);
    await watcher.expect(publishPacket(5, { topic: "w", payload: "ending" }), "will at session end (10 s)");
    assert.equal(broker.session("ending"), undefined);
    await watcher.disconnect();
  });
});

Deno.test("v5: a client back with Clean Start 1 within its Will Delay does not fire its will [MQTT-3.1.2-8 (5.0)]", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect, broker }) => {
    const watcher = await connect({ version: 5, clientId: "watcher" });
    await subscribe(watcher, 1, [["w", 0]]);
    const client = await connect(delayed("flaky", 60, 300));
    await client.close(); // lost: the will waits 60 s
    await waitFor(() => broker.session("flaky")?.link === undefined, "the broker to see the loss");
    clock.advance(10_000);
    // Back within the delay, with a new session: the old one ends, but the will is not sent (what the delay is for).
    const back = await connect({ version: 5, clientId: "flaky", clean: true });
    await watcher.barrier("no will on the clean reconnect");
    clock.advance(60_000);
    await watcher.barrier("no will after the delay either");
    await back.disconnect();
    await watcher.disconnect();
  });
});

Deno.test("v5: with no session kept, a delayed will is sent when the connection is lost", async () => {
  await withBroker({}, async ({ connect }) => {
    const watcher = await connect({ version: 5, clientId: "watcher" });
    await subscribe(watcher, 1, [["w", 0]]);
    const client = await connect({
      version: 5,
      clientId: "nosession",
      will: { topic: "w", payload: "now", properties: [P.willDelay(300)] },
    });
    await client.close();
    await watcher.expect(publishPacket(5, { topic: "w", payload: "now" }), "will at once: the session ended");
    await watcher.disconnect();
  });
});

Deno.test("v5: a will topic with a wildcard is refused with CONNACK 0x90, then close", async () => {
  await withBroker({}, async ({ open, broker }) => {
    const client = await open(5);
    await client.send(connectPacket({ version: 5, clientId: "bad", will: { topic: "a/#", payload: "x" } }));
    const connack = await client.expectPacket(2);
    assert.equal(connack.reasonCode, 0x90);
    await client.expectClosed();
    assert.equal(broker.sessionCount, 0);
  });
});

Deno.test("v4: a will topic with a wildcard closes without CONNACK, no return code fits [MQTT-3.2.2-6 (3.1.1)]", async () => {
  await withBroker({}, async ({ open, broker }) => {
    const client = await open(4);
    await client.send(connectPacket({ version: 4, clientId: "bad", will: { topic: "a/+", payload: "x" } }));
    await client.expectClosed("close without CONNACK");
    assert.equal(broker.sessionCount, 0);
  });
});

Deno.test("v5: DISCONNECT 0x04 with a Will Delay still waits for the delay (ManualClock)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock }, async ({ connect }) => {
    const watcher = await connect({ version: 5, clientId: "watcher" });
    await subscribe(watcher, 1, [["w", 0]]);
    const client = await connect(delayed("asked", 5, 3600));
    await client.send(disconnectPacket(0x04));
    await client.expectClosed();
    await watcher.barrier("waits for the delay");
    clock.advance(5000);
    await watcher.expect(publishPacket(5, { topic: "w", payload: "asked" }));
    await watcher.disconnect();
  });
});

Deno.test("v5: a Will Delay longer than a timer can wait (3,000,000 s) does not send the will at once (real clock)", async () => {
  // Timers over 2^31-1 ms (about 24.8 days) fired at once in Deno (issue #14); 30 days is a common delay.
  await withBroker({}, async ({ connect, broker }) => {
    const watcher = await connect({ version: 5, clientId: "watcher" });
    await subscribe(watcher, 1, [["w", 0]]);
    const client = await connect(delayed("month", 3_000_000, 4_000_000));
    await client.close();
    await waitFor(() => broker.session("month")?.link === undefined, "the broker to see the loss");
    await new Promise((resolve) => setTimeout(resolve, 50));
    await watcher.barrier("no will within the first 50 ms");
    // Coming back cancels the will; DISCONNECT with Session Expiry 0 then ends the session and its timers.
    const again = await connect({
      version: 5,
      clientId: "month",
      clean: false,
      properties: [P.sessionExpiry(4_000_000)],
    }, true);
    await again.send(disconnectPacket(0, [P.sessionExpiry(0)]));
    await again.expectClosed();
    await watcher.barrier("no will after the client came back");
    await watcher.disconnect();
  });
});

/** Forwards to a store until `crash()`: later commits are lost, as if the process had been killed. */
class CrashingStore implements Persistence {
  readonly #inner: Persistence;
  #crashed = false;
  constructor(inner: Persistence) {
    this.#inner = inner;
  }
  get name(): string {
    return this.#inner.name;
  }
  crash(): void {
    this.#crashed = true;
  }
  load(): Promise<PersistedState> {
    return this.#inner.load();
  }
  commit(ops: readonly PersistenceOp[]): Promise<void> {
    return this.#crashed ? Promise.resolve() : this.#inner.commit(ops);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

for (const version of VERSIONS) {
  testIf(`${v(version)}: a will restored after a crash is published as its owner (the ACL lets it through)`, [
    filesUnavailable(),
  ], async () => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/broker.db`;
    const clock = new ManualClock(1_000_000);
    const security = async () => ({
      authenticator: await authenticatorFor(),
      authorizer: authorizerFor(),
      clock,
    });
    const delay = version === 5 ? 60 : 0; // v5: a delayed will; v3.1.1: the will armed while connected
    try {
      const store = new CrashingStore(new SqlitePersistence(path));
      const first = new Broker({ sysInterval: 0, persistence: store, ...await security() });
      const { port } = await first.listen({ hostname: "127.0.0.1", port: 0 });
      const watcher = new WireClient(await Deno.connect({ hostname: "127.0.0.1", port }), version);
      await watcher.send(connectPacket(as("alice", version, "alice-watch")));
      await watcher.nextPacket("CONNACK");
      await subscribe(watcher, 1, [["alice/#", 1]]);
      await watcher.disconnect();
      const device = new WireClient(await Deno.connect({ hostname: "127.0.0.1", port }), version);
      const will = { topic: "alice/status", payload: "offline", qos: 1 as const };
      await device.send(connectPacket({
        ...as("alice", version, "alice-device"),
        will: version === 5 ? { ...will, properties: [P.willDelay(delay)] } : will,
      }));
      await device.nextPacket("CONNACK");
      if (version === 5) {
        await device.close(); // lost: the will waits out its delay, stored
        await waitFor(() => first.session("alice-device")?.link === undefined, "the broker to see the loss");
      }
      await new Promise((resolve) => setTimeout(resolve, 50)); // let the will's commit land
      store.crash();
      await first.close();
      await device.close();

      const second = new Broker({
        sysInterval: 0,
        persistence: new SqlitePersistence(path),
        ...await security(),
      });
      const { port: port2 } = await second.listen({ hostname: "127.0.0.1", port: 0 });
      try {
        clock.advance(delay * 1000);
        const back = new WireClient(await Deno.connect({ hostname: "127.0.0.1", port: port2 }), version);
        await back.send(connectPacket(as("alice", version, "alice-watch")));
        await back.nextPacket("CONNACK");
        const publish = await back.expectPacket(3, "the restored will");
        assert.equal(publish.topic, "alice/status");
        await back.send(puback(version, publish.packetId!));
        await back.disconnect();
      } finally {
        await second.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
