/**
 * The CONNACK of a takeover across nodes goes out before the old node has let go of the session, when the
 * session record stored then settles Session Present (`handlers/connect.ts` `answerEarly`). The connection reads
 * no packet until the session is restored here: what the client sends after the CONNACK is handled after the
 * queued messages went out, and nothing queued is lost. When the session ended on its old node meanwhile, the
 * client promised Session Present 1 is disconnected (v5 0x80, v3 close) rather than given an empty session.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Broker } from "../../lib/broker/broker.ts";
import type { PublishPacket } from "../../lib/packet/publish.ts";
import { persistent } from "../broker/_v5.ts";
import {
  connectPacket,
  type ConnectSpec,
  PINGREQ,
  puback,
  publishPacket,
  subscribe,
  waitFor,
  type WireClient,
} from "../broker/_wire.ts";
import { clusterTest, MEMORY, withCluster } from "./_cluster.ts";

const decoder = new TextDecoder();

/** Holds `broker`'s engine releases until `open()`; `before` runs first (at the moment of the release). */
function holdReleases(broker: Broker, before?: () => void): { open(): void; readonly released: boolean } {
  const engine = broker.cluster!.engine;
  const release = engine.release.bind(engine);
  const gate = Promise.withResolvers<void>();
  let released = false;
  engine.release = async (clientId, epoch) => {
    await gate.promise;
    before?.();
    await release(clientId, epoch);
    released = true;
  };
  return {
    open: () => gate.resolve(),
    get released() {
      return released;
    },
  };
}

/** A persistent session for `spec` on node 0 with `count` acknowledged QoS 1 messages queued for it. */
async function queueOnA(
  connect: (node: number, spec: ConnectSpec, present?: boolean) => Promise<WireClient>,
  spec: ConnectSpec,
  count: number,
): Promise<void> {
  const onA = await connect(0, spec);
  await subscribe(onA, 1, [["t/#", 1]]);
  await onA.disconnect();
  const version = spec.version;
  const pub = await connect(0, { version, clientId: "pub" });
  for (let i = 1; i <= count; i++) {
    await pub.send(publishPacket(version, { topic: "t/1", payload: `m${i}`, qos: 1, id: i }));
    await pub.expectPacket(4, `PUBACK ${i}`);
  }
}

for (const version of [4, 5] as const) {
  const spec: ConnectSpec = version === 5 ? persistent("x") : { version, clientId: "x", clean: false };

  clusterTest(
    `takeover (v${version}): CONNACK before the old node lets go; packets sent after it wait for the session`,
    (kind) =>
      withCluster(kind, 2, async ({ brokers, connect }) => {
        await queueOnA(connect, spec, 3);
        const hold = holdReleases(brokers[0]!);
        let onB: WireClient;
        try {
          // Before the early CONNACK, this waited for the release (held here), so it timed out.
          onB = await connect(1, spec, true);
          assert.equal(hold.released, false, "CONNACK sent while node 0 still holds the session");
          await onB.send(PINGREQ);
          await assert.rejects(onB.nextOrEnd(150), /timed out/, "nothing handled before the session is here");
        } finally {
          hold.open();
        }
        // The session's queue first, then the answer to what the client sent after CONNACK.
        for (let i = 1; i <= 3; i++) {
          const got = await onB.expectPacket(3, `queued m${i}`) as PublishPacket;
          assert.equal(decoder.decode(got.payload), `m${i}`);
          await onB.send(puback(version, got.packetId!));
        }
        await onB.expectPacket(13, "PINGRESP after the queue");
        await onB.barrier("each queued message once");
        assert.ok(brokers[1]!.session("x") !== undefined, "the session is on node 1");
      }),
  );

  Deno.test(
    `takeover (v${version}): Session Present 1 was sent and the session ended on its old node meanwhile: closed [memory]`,
    () =>
      withCluster(MEMORY, 2, async ({ brokers, engines, connect }) => {
        await queueOnA(connect, spec, 2);
        // The session ends on node 0 between the CONNACK and its release (as an expiry would end it).
        const hold = holdReleases(brokers[0]!, () => {
          const record = engines.memory!.client("x");
          record.session = undefined;
          record.outgoing.clear();
        });
        let onB: WireClient;
        try {
          onB = await connect(1, spec, true);
        } finally {
          hold.open();
        }
        // Not resumed as an empty session: told (v5 0x80 Unspecified error), then closed.
        await onB.expectDisconnect(0x80, "DISCONNECT: the promised session is gone");
        assert.equal(brokers[1]!.session("x"), undefined, "no empty session made in its place");
      }),
  );
}

clusterTest(
  "takeover with a will: CONNACK waits for the claim (its will is stored by the claim's last step)",
  (kind) =>
    withCluster(kind, 2, async ({ brokers, connect, open }) => {
      await queueOnA(connect, persistent("w"), 1);
      const hold = holdReleases(brokers[0]!);
      const onB = await open(1, 5);
      await onB.send(connectPacket({ ...persistent("w"), will: { topic: "w/gone", payload: "bye" } }));
      await assert.rejects(onB.nextOrEnd(150), /timed out/, "no CONNACK before the release");
      hold.open();
      const connack = await onB.expectPacket(2, "CONNACK");
      assert.equal(connack.sessionPresent, true);
      assert.equal(hold.released, true);
    }),
);

clusterTest(
  "back on the old node right after an early CONNACK: the newest connection wins and gets every queued message",
  (kind) =>
    withCluster(kind, 2, async ({ brokers, connect, open }) => {
      await queueOnA(connect, persistent("x"), 3);
      const hold = holdReleases(brokers[0]!);
      let onB: WireClient;
      let back: WireClient;
      try {
        onB = await connect(1, persistent("x"), true); // node 1's claim still waits for node 0
        // Node 0 is stepping down: it does not resume the session itself, it claims it after node 1's claim.
        back = await open(0, 5);
        await back.send(connectPacket(persistent("x")));
        await assert.rejects(back.nextOrEnd(150), /timed out/, "no CONNACK on node 0 while node 1 claims");
      } finally {
        hold.open();
      }
      // Node 1's connection, older, is taken over once its claim is done (it may get the queue first).
      for (;;) {
        const packet = await onB.nextPacket("DISCONNECT 0x8E on node 1");
        if (packet.type === 3) continue;
        assert.equal(packet.type, 14);
        assert.equal(packet.reasonCode, 0x8e, "Session taken over [MQTT-3.1.4-3 (5.0)]");
        break;
      }
      const connack = await back.expectPacket(2, "CONNACK on node 0");
      assert.equal(connack.sessionPresent, true);
      const got = new Set<string>();
      while (got.size < 3) {
        const publish = await back.expectPacket(3, `queued message ${got.size + 1}`) as PublishPacket;
        got.add(decoder.decode(publish.payload));
        await back.send(puback(5, publish.packetId!));
      }
      assert.deepEqual([...got].sort(), ["m1", "m2", "m3"]);
      await back.barrier();
      assert.ok(brokers[0]!.session("x") !== undefined, "the session is back on node 0");
    }),
);

clusterTest(
  "a second CONNECT on the same node while the first one's claim waits takes over from it once it is done",
  (kind) =>
    withCluster(kind, 2, async ({ brokers, connect, open }) => {
      await queueOnA(connect, persistent("x"), 2);
      const hold = holdReleases(brokers[0]!);
      let first: WireClient;
      let second: WireClient;
      try {
        first = await connect(1, persistent("x"), true);
        second = await open(1, 5);
        await second.send(connectPacket(persistent("x")));
        await assert.rejects(second.nextOrEnd(150), /timed out/, "waits for the first claim");
      } finally {
        hold.open();
      }
      for (;;) {
        const packet = await first.nextPacket("DISCONNECT 0x8E for the first");
        if (packet.type === 3) continue;
        assert.equal(packet.type, 14);
        assert.equal(packet.reasonCode, 0x8e);
        break;
      }
      const connack = await second.expectPacket(2, "CONNACK of the second");
      assert.equal(connack.sessionPresent, true);
      const got = new Set<string>();
      while (got.size < 2) {
        const publish = await second.expectPacket(3, `queued message ${got.size + 1}`) as PublishPacket;
        got.add(decoder.decode(publish.payload));
        await second.send(puback(5, publish.packetId!));
      }
      await second.barrier();
      assert.ok(brokers[1]!.session("x") !== undefined);
    }),
);

for (const version of [4, 5] as const) {
  Deno.test(
    `the engine lost after an early CONNACK (v${version}): the connection is closed (v5 DISCONNECT 0x89), not resumed [memory]`,
    () =>
      withCluster(MEMORY, 2, async ({ brokers, engines, connect }) => {
        const spec: ConnectSpec = version === 5 ? persistent("x") : { version, clientId: "x", clean: false };
        await queueOnA(connect, spec, 1);
        const hold = holdReleases(brokers[0]!);
        let onB: WireClient;
        try {
          onB = await connect(1, spec, true);
          engines.memory!.down(); // node 0's release cannot be made: node 1's claim cannot finish
        } finally {
          hold.open();
        }
        const frame = await onB.nextOrEnd(6000, "the end of the connection");
        if (version === 5) {
          // A DISCONNECT cannot say 0x88 (Server unavailable): 0x89 (Server busy).
          assert.deepEqual(frame?.subarray(0, 3), Uint8Array.of(0xe0, frame![1]!, 0x89));
          assert.equal(await onB.nextOrEnd(2000), undefined, "then closed");
        } else {
          assert.equal(frame, undefined, "v3: closed with nothing sent");
        }
        assert.equal(brokers[1]!.session("x")?.link, undefined, "no session resumed on node 1");
        engines.memory!.up();
      }, { leaseMs: 20_000 }),
  );
}

Deno.test(
  "a claim that failed after asking does not hold up the next one: the node it names declines at once [memory]",
  () =>
    withCluster(MEMORY, 3, async ({ brokers, engines, connect }) => {
      const spec: ConnectSpec = { version: 4, clientId: "x", clean: false };
      await queueOnA(connect, spec, 1);
      const hold = holdReleases(brokers[0]!);
      let onB: WireClient;
      try {
        onB = await connect(1, spec, true);
        engines.memory!.down(); // node 1's claim fails after it asked: the engine still names it as the claimer
      } finally {
        hold.open();
      }
      assert.equal(await onB.nextOrEnd(6000, "the end of the connection"), undefined, "node 1 closed it");
      engines.memory!.up();
      await waitFor(() => brokers.every((broker) => broker.cluster!.state === "up"), "every node back up");
      // Node 2 asks node 1 (the claim under way, as far as the engine knows); node 1 holds nothing and says so,
      // so the takeover does not wait for its timeout (3 s).
      const started = Date.now();
      const onC = await connect(2, spec, true);
      const waited = Date.now() - started;
      assert.ok(waited < 2000, `CONNACK after ${waited} ms, not after the takeover timeout`);
      const got = await onC.expectPacket(3, "the queued message") as PublishPacket;
      assert.equal(decoder.decode(got.payload), "m1");
      await onC.send(puback(4, got.packetId!));
      await onC.barrier("nothing more");
    }, { leaseMs: 20_000 }),
);
