/**
 * `$SYS/broker/...` statistics, published retained every `sysInterval` seconds (Mosquitto's topics), driven by a
 * ManualClock.
 */

import assert from "node:assert/strict";
import { BROKER_VERSION } from "../../lib/broker/broker.ts";
import { ManualClock } from "../../lib/clock.ts";
import type { Packet } from "../../lib/packet/packet.ts";
import { P, puback, publishPacket, subscribe, v, VERSIONS, type WireClient, withBroker } from "./_wire.ts";

const decoder = new TextDecoder();

/** `$SYS` updates received before a PINGRESP, as topic → [payload, retain]. */
async function sysValues(client: WireClient): Promise<Map<string, { value: string; retain: boolean }>> {
  const values = new Map<string, { value: string; retain: boolean }>();
  for (const packet of await client.collect()) {
    assert.equal(packet.type, 3, "only PUBLISH");
    const publish = packet as Extract<Packet, { type: 3 }>;
    assert.ok(publish.topic.startsWith("$SYS/broker/"), publish.topic);
    values.set(publish.topic.slice("$SYS/broker/".length), {
      value: decoder.decode(publish.payload),
      retain: publish.retain,
    });
  }
  return values;
}

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: $SYS/broker/... values are retained and sent on subscribe`, async () => {
    const clock = new ManualClock(1_000_000);
    await withBroker({ clock, sysInterval: 10 }, async ({ connect }) => {
      clock.advance(30_000);
      const client = await connect({ version, clientId: "monitor" });
      await subscribe(client, 1, [["$SYS/broker/#", 0]]);
      const values = await sysValues(client);
      assert.deepEqual(values.get("version"), { value: BROKER_VERSION, retain: true });
      assert.deepEqual(values.get("uptime"), { value: "30 seconds", retain: true });
      for (
        const name of [
          "clients/connected",
          "clients/total",
          "messages/received",
          "messages/sent",
          "publish/messages/received",
          "publish/messages/sent",
          "bytes/received",
          "bytes/sent",
          "subscriptions/count",
          "retained messages/count",
          "load/messages/received/1min",
        ]
      ) {
        assert.ok(values.has(name), `$SYS/broker/${name} published`);
        assert.ok(values.get(name)!.retain, `${name} retained`);
        assert.ok(!Number.isNaN(Number(values.get(name)!.value)), `${name} is a number`);
      }
      await client.disconnect();
    });
  });
}

Deno.test("$SYS values are updated every sysInterval: uptime, clients/connected, publish counts", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, sysInterval: 10 }, async ({ connect }) => {
    const monitor = await connect({ version: 5, clientId: "monitor" });
    await subscribe(monitor, 1, [["$SYS/broker/#", 0]]);
    await sysValues(monitor); // the retained snapshot taken at start
    const other = await connect({ version: 4, clientId: "other" });
    for (let i = 0; i < 3; i++) await other.send(publishPacket(4, { topic: "count/me", payload: `${i}` }));
    await other.barrier();
    clock.advance(9_999);
    assert.equal((await sysValues(monitor)).size, 0, "nothing before the interval");
    clock.advance(1);
    const values = await sysValues(monitor);
    // A live subscriber gets updates as normal messages (RETAIN 0) [MQTT-3.3.1-12 (5.0)].
    assert.deepEqual(values.get("uptime"), { value: "10 seconds", retain: false });
    assert.equal(values.get("clients/connected")?.value, "2");
    assert.equal(values.get("publish/messages/received")?.value, "3");
    assert.equal(values.get("subscriptions/count")?.value, "1");
    await other.disconnect();
    clock.advance(10_000);
    const later = await sysValues(monitor);
    assert.equal(later.get("uptime")?.value, "20 seconds");
    assert.equal(later.get("clients/connected")?.value, "1");
    await monitor.disconnect();
  });
});

Deno.test("$SYS retained messages/count follows retained messages stored and deleted", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, sysInterval: 5 }, async ({ connect }) => {
    const client = await connect({ version: 4, clientId: "keeper" });
    await subscribe(client, 1, [["$SYS/broker/retained messages/count", 0]]);
    const count = async (): Promise<number> => {
      const [update] = await client.collect();
      assert.equal(update?.type, 3, "one update");
      return Number(decoder.decode((update as Extract<Packet, { type: 3 }>).payload));
    };
    await count(); // the retained value from start
    clock.advance(10_000); // two ticks: every $SYS topic (load averages too) is stored by now
    await client.collect();
    clock.advance(5_000);
    const before = await count();
    await client.send(
      publishPacket(4, { topic: "r/1", payload: "a", retain: true }),
      publishPacket(4, { topic: "r/2", payload: "b", retain: true }),
    );
    await client.barrier();
    clock.advance(5_000);
    assert.equal(await count(), before + 2);
    await client.send(publishPacket(4, { topic: "r/1", payload: "", retain: true }));
    await client.barrier();
    clock.advance(5_000);
    assert.equal(await count(), before + 1);
    await client.disconnect();
  });
});

Deno.test("sysInterval 0 publishes nothing under $SYS", async () => {
  await withBroker({ sysInterval: 0 }, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "quiet" });
    await subscribe(client, 1, [["$SYS/#", 0]]);
    assert.equal((await client.collect()).length, 0);
    await client.disconnect();
  });
});

Deno.test("a '#' subscription does not receive $SYS updates [MQTT-4.7.2-1 (3.1.1)]", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, sysInterval: 10 }, async ({ connect }) => {
    const client = await connect({ version: 4, clientId: "everything" });
    await subscribe(client, 1, [["#", 0], ["+/broker/#", 0]]);
    clock.advance(20_000);
    assert.equal((await client.collect()).length, 0);
    await client.disconnect();
  });
});

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: a client cannot publish or retain under $SYS/ (3.1.1 and 5.0 section 4.7.2); other $ topics are not reserved`, async () => {
    await withBroker({ sysInterval: 0 }, async ({ connect }) => {
      const watcher = await connect({ version, clientId: "watcher" });
      await subscribe(watcher, 1, [["$SYS/#", 0], ["$SYSTEM/#", 0]]);
      const spoofer = await connect({ version, clientId: "spoofer" });
      await spoofer.send(
        publishPacket(version, {
          topic: "$SYS/broker/uptime",
          payload: "1 second",
          qos: 1,
          id: 1,
          retain: true,
        }),
      );
      const ack = await spoofer.expectPacket(4, "PUBACK");
      assert.equal(ack.reasonCode ?? 0, version === 5 ? 0x87 : 0, "v5: 0x87 Not authorized; v3: dropped");
      await spoofer.send(publishPacket(version, { topic: "$SYS", payload: "x" }));
      await spoofer.send(publishPacket(version, { topic: "$SYSTEM/ok", payload: "y" }));
      await watcher.expect(publishPacket(version, { topic: "$SYSTEM/ok", payload: "y" }), "not $SYS/");
      await watcher.barrier("nothing from $SYS");
      const late = await connect({ version, clientId: "late" });
      await subscribe(late, 1, [["$SYS/#", 0]]);
      await late.barrier("nothing was retained");
      for (const c of [watcher, spoofer, late]) await c.disconnect();
    });
  });
}

Deno.test("$SYS publish/messages/dropped only grows: it keeps the drops of a session that has ended", async () => {
  // It summed the live sessions' drops, so it went down when such a session ended (issue #14 bug 13).
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, sysInterval: 10, maxQueued: 1 }, async ({ connect }) => {
    const monitor = await connect({ version: 5, clientId: "monitor" });
    await subscribe(monitor, 1, [["$SYS/broker/publish/messages/dropped", 0]]);
    const dropped = async (): Promise<string> => {
      const values = await sysValues(monitor);
      return values.get("publish/messages/dropped")!.value;
    };
    assert.equal(await dropped(), "0", "the retained value from start");
    const away = { version: 5 as const, clientId: "away", clean: false, properties: [P.sessionExpiry(3600)] };
    const first = await connect(away);
    await subscribe(first, 1, [["d", 1]]);
    await first.disconnect();
    const publisher = await connect({ version: 4, clientId: "publisher" });
    for (let id = 1; id <= 3; id++) {
      await publisher.send(publishPacket(4, { topic: "d", payload: `${id}`, qos: 1, id }));
      await publisher.expect(puback(4, id));
    }
    clock.advance(10_000);
    assert.equal(await dropped(), "2", "1 queued, 2 dropped");
    const back = await connect({ ...away, clean: true }); // Clean Start ends the old session
    await back.disconnect();
    clock.advance(10_000);
    assert.equal(await dropped(), "2", "still counted after the session ended");
    await publisher.disconnect();
    await monitor.disconnect();
  });
});

Deno.test("$SYS uptime and load averages are not skewed when the wall clock steps back 120 s", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, sysInterval: 10 }, async ({ connect }) => {
    const monitor = await connect({ version: 5, clientId: "monitor" });
    await subscribe(monitor, 1, [["$SYS/broker/#", 0]]);
    await sysValues(monitor);
    clock.stepWallClock(-120_000);
    clock.advance(10_000);
    const values = await sysValues(monitor);
    assert.equal(values.get("uptime")?.value, "10 seconds");
    const load = Number(values.get("load/connections/1min")?.value);
    assert.ok(load >= 0, `load/connections/1min is ${load}`);
    await monitor.disconnect();
  });
});
