/**
 * Keep alive (5.0 sections 3.1.2.10, 3.12, 3.13): PINGREQ/PINGRESP, the 1.5x rule with the will sent, any packet
 * counting as activity, and the broker's maximum (v5 Server Keep Alive, v3 refusal). All timing runs on a
 * ManualClock.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import {
  connectPacket,
  connectV5,
  hex,
  PINGREQ,
  PINGRESP,
  publishPacket,
  subscribe,
  v,
  VERSIONS,
  waitFor,
  withBroker,
} from "./_wire.ts";

/**
 * How late past 1.5x the keep alive a disconnect may come: the broker may check on a periodic sweep rather than
 * a timer per connection (Mosquitto does the same), so "within 1.5x" is checked as "not before, and by 1.5x + 1 s".
 */
const SLACK_MS = 1000;

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: PINGREQ is answered with PINGRESP d0 00 [MQTT-3.12.4-1 (3.1.1)] [MQTT-3.12.4-1 (5.0)]`, async () => {
    await withBroker({}, async ({ connect }) => {
      const client = await connect({ version, clientId: "pinger", keepAlive: 30 });
      await client.send(PINGREQ, PINGREQ);
      await client.expect(PINGRESP);
      await client.expect(PINGRESP);
      await client.disconnect();
    });
  });

  Deno.test(
    `${
      v(version)
    }: silent for 1.5x the keep alive: disconnected and the will sent [MQTT-3.1.2-24 (3.1.1)] [MQTT-3.1.2-22 (5.0)]`,
    async () => {
      const clock = new ManualClock(1_000_000);
      await withBroker({ clock }, async ({ connect, broker }) => {
        const watcher = await connect({ version, clientId: "watcher" });
        await subscribe(watcher, 1, [["ka/#", 0]]);
        const client = await connect({
          version,
          clientId: "silent",
          keepAlive: 10,
          will: { topic: "ka/silent", payload: "timeout" },
        });
        clock.advance(14_999);
        assert.equal(broker.connectionCount, 2, "still connected just before 15 s");
        assert.equal(client.buffered, 0);
        clock.advance(1 + SLACK_MS);
        await client.expectDisconnect(0x8d, "DISCONNECT Keep alive timeout");
        await watcher.expect(publishPacket(version, { topic: "ka/silent", payload: "timeout" }), "will");
        await watcher.disconnect();
      });
    },
  );

  Deno.test(`${v(version)}: any packet from the client counts as activity [MQTT-3.1.2-23 (3.1.1)] [MQTT-3.1.2-20 (5.0)]`, async () => {
    const clock = new ManualClock(1_000_000);
    await withBroker({ clock }, async ({ connect }) => {
      const client = await connect({ version, clientId: "busy", keepAlive: 10 });
      clock.advance(10_000);
      await client.barrier(); // PINGREQ at 10 s
      clock.advance(10_000);
      await client.send(publishPacket(version, { topic: "x", payload: "y" })); // PUBLISH at 20 s
      await client.barrier(); // and PINGREQ at 20 s: handled before time moves on
      clock.advance(14_999);
      await client.barrier("alive at 34.999 s (last activity at 20 s)");
      clock.advance(14_999);
      await client.barrier("alive");
      clock.advance(15_000 + SLACK_MS);
      await client.expectDisconnect(0x8d);
    });
  });

  Deno.test(`${v(version)}: keep alive 0 turns the mechanism off [MQTT-3.1.2-24 (3.1.1)] [MQTT-3.1.2-22 (5.0)]`, async () => {
    const clock = new ManualClock(1_000_000);
    await withBroker({ clock }, async ({ connect }) => {
      const client = await connect({ version, clientId: "forever", keepAlive: 0 });
      clock.advance(24 * 3600 * 1000);
      await client.barrier("still connected after a day");
      await client.disconnect();
    });
  });
}

Deno.test("v5: a keep alive above maxKeepAlive gets Server Keep Alive and is enforced [MQTT-3.2.2-21 (5.0)]", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, maxKeepAlive: 60 }, async (context) => {
    const { client, connack } = await connectV5(context, { clientId: "long", keepAlive: 600 });
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties?.serverKeepAlive, 60);
    clock.advance(89_999);
    assert.equal(client.buffered, 0);
    clock.advance(1 + SLACK_MS);
    await client.expectDisconnect(0x8d, "disconnected at 1.5 x 60 s");
  });
});

Deno.test("v5: keep alive 0 with a maxKeepAlive gets Server Keep Alive (Mosquitto max_keepalive)", async () => {
  await withBroker({ maxKeepAlive: 60 }, async (context) => {
    const { client, connack } = await connectV5(context, { clientId: "zero", keepAlive: 0 });
    assert.equal(connack.properties?.serverKeepAlive, 60);
    await client.disconnect();
  });
});

Deno.test("v5: a keep alive within maxKeepAlive gets no Server Keep Alive", async () => {
  await withBroker({ maxKeepAlive: 60 }, async (context) => {
    const { client, connack } = await connectV5(context, { clientId: "ok", keepAlive: 60 });
    assert.equal(connack.properties?.serverKeepAlive, undefined);
    await client.disconnect();
  });
});

for (const [name, keepAlive] of [["above the maximum", 61], ["0 (infinite)", 0]] as const) {
  Deno.test(`v4: a keep alive ${name} with maxKeepAlive 60 is refused: CONNACK 0x02, then close`, async () => {
    await withBroker({ maxKeepAlive: 60 }, async ({ open, broker }) => {
      const client = await open(4);
      await client.send(connectPacket({ version: 4, clientId: "old", keepAlive }));
      await client.expect(hex("20 02 00 02"), "CONNACK identifier rejected (as Mosquitto)");
      await client.expectClosed();
      assert.equal(broker.sessionCount, 0);
    });
  });
}

Deno.test("v4: a keep alive equal to maxKeepAlive is accepted", async () => {
  await withBroker({ maxKeepAlive: 60 }, async ({ connect }) => {
    const client = await connect({ version: 4, clientId: "edge", keepAlive: 60 });
    await client.disconnect();
  });
});

// ---- PINGREQ floods from a peer that does not read (issue #15 item 10) ----------------------------------------

Deno.test("a PINGREQ flood from a peer that never reads is not answered past maxOutputBytes: reading waits for the peer", async () => {
  await withBroker({ maxOutputBytes: 100 }, async ({ broker }) => {
    const connect = connectPacket({ version: 4, clientId: "pinger" });
    const input = new Uint8Array(connect.length + 2 * 2000);
    input.set(connect);
    for (let at = connect.length; at < input.length; at += 2) input.set(PINGREQ, at);
    let offset = 0;
    const writes: number[] = [];
    let release: (() => void) | undefined;
    let end: ((n: null) => void) | undefined;
    const stream = {
      read(buffer: Uint8Array): Promise<number | null> {
        if (offset >= input.length) return new Promise<number | null>((resolve) => end = resolve); // nothing more
        const n = Math.min(buffer.length, input.length - offset);
        buffer.set(input.subarray(offset, offset + n));
        offset += n;
        return Promise.resolve(n);
      },
      write(data: Uint8Array): Promise<number> {
        writes.push(data.length);
        // The CONNACK is taken; then the peer stops reading until the test lets it.
        if (writes.length === 1) return Promise.resolve(data.length);
        return new Promise((resolve) => release = () => resolve(data.length));
      },
      close(): void {
        release?.();
        end?.(null);
      },
    };
    const served = broker.handle(stream, { remoteAddress: "127.0.0.1:7", allowAnonymous: true });
    await waitFor(() => writes.length >= 2, "the first PINGRESPs");
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Without the per-packet check, every PINGREQ of a read was answered before the limit was looked at.
    assert.ok(writes[1]! <= 100 + 2, `answers pending while the peer does not read: ${writes[1]} bytes`);
    assert.equal(writes.length, 2, "nothing more is produced while the peer does not read");
    // When the peer reads again, the rest is answered.
    for (let turn = 0; turn < 200 && writes.reduce((a, b) => a + b, 0) < 4 + 2 * 2000; turn++) {
      release?.();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    assert.equal(writes.reduce((a, b) => a + b, 0), 4 + 2 * 2000, "every PINGREQ answered in the end");
    stream.close();
    await served;
  });
});
