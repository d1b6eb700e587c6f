/**
 * The direct node-to-node links for QoS 0 forwards (`lib/cluster/peer_link.ts`): delivery over the link on
 * both engines, the fall back to the engine while a link is down and its recovery, and what the peer port
 * refuses (a wrong secret, garbage, an oversize frame, frames from a node declared dead).
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertPublish, payloads } from "../broker/_v5.ts";
import { publishPacket, subscribe, waitFor, type WireClient } from "../broker/_wire.ts";
import type { ForwardedMessage } from "../../lib/cluster/engine.ts";
import type { Logger } from "../../lib/broker/logger.ts";
import type { Packet } from "../../lib/packet/packet.ts";
import { decode } from "../../lib/packet/decode.ts";
import { encodeForwardBatch } from "../../lib/cluster/_redis_forward_codec.ts";
import {
  answerChallenge,
  encodeFrame,
  FRAME,
  FrameReader,
  helloBody,
} from "../../lib/cluster/peer_link_frames.ts";
import { parseAddress, readFrame, writeAll } from "../../lib/cluster/peer_link_out.ts";
import { HANDSHAKES_MAX } from "../../lib/cluster/peer_link.ts";
import { type ClusterContext, clusterTest, MEMORY, spyForwards, withCluster } from "./_cluster.ts";
import { handshake } from "./_peer_wire.ts";

/** A logger that keeps the warnings. */
function warnings(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  const nothing = (): void => {};
  return { lines, error: (m) => lines.push(m), warn: (m) => lines.push(m), info: nothing, debug: nothing };
}

/** Node 1 subscribed to `t/#` at QoS 0 and routed from node 0; the link 0 → 1 up. */
async function linked(ctx: ClusterContext): Promise<{ sub: WireClient; pub: WireClient }> {
  const sub = await ctx.connect(1, { version: 5, clientId: "sub" });
  await subscribe(sub, 1, [["t/#", 0]]);
  await ctx.routed(0, 1);
  const pub = await ctx.connect(0, { version: 5, clientId: "pub" });
  // The first forward goes through the engine and opens the link.
  await pub.send(publishPacket(5, { topic: "t/first", payload: "first" }));
  assertPublish(await sub.nextPacket(), { topic: "t/first", payload: "first" });
  await waitFor(() => link(ctx, 0, 1)?.up ?? false, "the link from node 0 to node 1");
  return { sub, pub };
}

function link(ctx: ClusterContext, from: number, to: number) {
  return ctx.brokers[from]!.cluster!.peers!.link(ctx.brokers[to]!.cluster!.incarnation);
}

clusterTest(
  "QoS 0 across nodes goes over the peer link once it is up, not through the engine",
  (kind) =>
    withCluster(kind, 2, async (ctx) => {
      const { sub, pub } = await linked(ctx);
      const sent = spyForwards(ctx.brokers[0]!.cluster!.engine);
      const frames = link(ctx, 0, 1)!.frames;
      for (let i = 0; i < 20; i++) await pub.send(publishPacket(5, { topic: `t/${i}`, payload: `m${i}` }));
      for (let i = 0; i < 20; i++) {
        assertPublish(await sub.nextPacket(), { topic: `t/${i}`, payload: `m${i}` });
      }
      await sub.barrier("one copy each");
      assert.equal(sent.length, 0, "nothing through the engine");
      assert.ok(link(ctx, 0, 1)!.frames > frames, "frames on the link");
    }),
);

clusterTest(
  "a peer link killed mid-stream falls back to the engine, delivers nothing twice, and recovers",
  (kind) =>
    withCluster(kind, 2, async (ctx) => {
      const { sub, pub } = await linked(ctx);
      const sent = spyForwards(ctx.brokers[0]!.cluster!.engine);
      const received: Packet[] = [];
      let reading = true;
      const reader = (async () => {
        while (reading) {
          const frame = await sub.nextOrEnd(300, "a PUBLISH").catch(() => undefined);
          if (frame !== undefined) received.push(decode(frame, sub.version));
        }
      })();
      let n = 0;
      for (; n < 40; n++) await pub.send(publishPacket(5, { topic: "t/s", payload: `${n}` }));
      ctx.brokers[1]!.cluster!.peers!.reset(); // node 1 drops every link: node 0's link ends under it
      for (; n < 80; n++) {
        await pub.send(publishPacket(5, { topic: "t/s", payload: `${n}` }));
        if (n % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await waitFor(() => sent.length > 0, "a forward through the engine while the link is down");
      // Later sends reconnect after the back-off.
      await waitFor(() => {
        void pub.send(publishPacket(5, { topic: "t/s", payload: `${n++}` }));
        return link(ctx, 0, 1)?.up ?? false;
      }, "the link up again");
      const viaEngine = sent.length;
      const last = n + 10;
      for (; n < last; n++) await pub.send(publishPacket(5, { topic: "t/s", payload: `${n}` }));
      await waitFor(() => payloads(received).includes(String(last - 1)), "the messages after recovery");
      reading = false;
      await reader;
      const got = payloads(received).map(Number);
      assert.equal(new Set(got).size, got.length, `no duplicates: ${got}`);
      for (let i = last - 10; i < last; i++) assert.ok(got.includes(i), `${i} delivered after recovery`);
      assert.equal(sent.length, viaEngine, "after recovery nothing through the engine");
    }),
);

// ---- the peer port refuses ---------------------------------------------------------------------------------

/** A raw TCP connection to node `to`'s peer port. */
async function rawPeer(ctx: ClusterContext, to: number): Promise<Deno.TcpConn> {
  return await Deno.connect(parseAddress(ctx.brokers[to]!.cluster!.peers!.address));
}

/** Whether the peer closes `conn` (reads to the end) within three seconds; closes it either way. */
async function closedByPeer(conn: Deno.TcpConn): Promise<boolean> {
  const buffer = new Uint8Array(1024);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, 3000);
  try {
    while (true) if (await conn.read(buffer) === null) break;
  } catch {
    // reset by the peer, or closed here on time-out
  } finally {
    clearTimeout(timer);
    if (!timedOut) conn.close();
  }
  return !timedOut;
}

function dataFrame(topic: string, text: string, id: string): Uint8Array {
  const forwarded: ForwardedMessage = {
    id,
    message: { topic, payload: new TextEncoder().encode(text), qos: 0, retain: false },
    direct: true,
  };
  return encodeFrame(FRAME.data, encodeForwardBatch([forwarded]));
}

for (
  const [what, bytes] of [
    ["garbage", new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n")],
    ["an oversize frame", new Uint8Array([0, 0, 0x10, 0, 1, 0, 0, 0])],
    ["an empty frame", new Uint8Array([0, 0, 0, 0])],
    ["a DATA frame before the handshake", dataFrame("t/x", "early", "x:1")],
  ] as const
) {
  Deno.test(`the peer port closes a socket that sends ${what}, logs it, and goes on [memory]`, async () => {
    const log = warnings();
    await withCluster(MEMORY, 2, async (ctx) => {
      const conn = await rawPeer(ctx, 1);
      await writeAll(conn, bytes);
      assert.ok(await closedByPeer(conn));
      await waitFor(() => log.lines.some((l) => l.includes("peer link from")), "a log line");
      const { sub, pub } = await linked(ctx); // the node still serves, links included
      await pub.send(publishPacket(5, { topic: "t/after", payload: "after" }));
      assertPublish(await sub.nextPacket(), { topic: "t/after", payload: "after" });
    }, { broker: { logger: log } });
  });
}

clusterTest(
  "the peer port refuses a wrong secret and a HELLO for another incarnation",
  (kind) =>
    withCluster(kind, 2, async (ctx) => {
      const a = ctx.brokers[0]!.cluster!;
      const b = ctx.brokers[1]!.cluster!;
      const sub = await ctx.connect(1, { version: 5, clientId: "sub" });
      await subscribe(sub, 1, [["t/#", 0]]);
      // Wrong secret: the node's CHALLENGE does not verify, and a made-up AUTH is refused.
      const wrong = await rawPeer(ctx, 1);
      const reader = new FrameReader();
      const hello = helloBody(a.incarnation, b.incarnation);
      await writeAll(wrong, encodeFrame(FRAME.hello, hello));
      const challenge = await readFrame(wrong, reader, FRAME.challenge);
      assert.equal(answerChallenge("not the secret", hello, challenge), undefined);
      await writeAll(wrong, encodeFrame(FRAME.auth, new Uint8Array(32)));
      await writeAll(wrong, dataFrame("t/x", "forged", "forged:1"));
      assert.ok(await closedByPeer(wrong), "closed");
      // The right secret, but meant for an incarnation this node is not.
      const misdirected = await rawPeer(ctx, 1);
      await writeAll(misdirected, encodeFrame(FRAME.hello, helloBody(a.incarnation, `${b.incarnation}-old`)));
      assert.ok(await closedByPeer(misdirected), "closed");
      // The right secret, as the live node 0: accepted and delivered.
      const good = await rawPeer(ctx, 1);
      await handshake(good, a.incarnation, b.incarnation, b.secret);
      await writeAll(good, dataFrame("t/x", "genuine", `${a.incarnation}:999`));
      assertPublish(await sub.nextPacket(), { topic: "t/x", payload: "genuine" });
      await sub.barrier("nothing forged");
      good.close();
    }),
);

Deno.test("frames from a node declared dead are ignored, and it cannot link again [memory]", async () => {
  await withCluster(MEMORY, 3, async (ctx) => {
    const dead = ctx.brokers[0]!.cluster!;
    const b = ctx.brokers[1]!.cluster!;
    const sub = await ctx.connect(1, { version: 5, clientId: "sub" });
    await subscribe(sub, 1, [["t/#", 0]]);
    const conn = await rawPeer(ctx, 1);
    await handshake(conn, dead.incarnation, b.incarnation, b.secret);
    const incarnation = dead.incarnation;
    // Cut node 0 off the engine until its lease lapses: the sweeper declares it dead, node 1 hears it.
    ctx.engines.memory!.partition(incarnation, true);
    await waitFor(() => b.peers!.isDead(incarnation), "node 1 to hear node 0 is dead", 8000);
    await writeAll(conn, dataFrame("t/x", "stale", `${incarnation}:1`)).catch(() => {});
    assert.ok(await closedByPeer(conn), "its link closed");
    const again = await rawPeer(ctx, 1);
    await assert.rejects(handshake(again, incarnation, b.incarnation, b.secret), /closed/, "no new link");
    again.close();
    await sub.barrier("nothing from the dead node");
    ctx.engines.memory!.partition(incarnation, false);
  }, { leaseMs: 500 });
});

clusterTest(
  "over the peer links, one frame per interested node, however many subscribers match there",
  (kind) =>
    withCluster(kind, 3, async (ctx) => {
      const subs: WireClient[] = [];
      for (let i = 0; i < 4; i++) {
        const sub = await ctx.connect(1 + (i % 2), { version: 5, clientId: `s${i}` });
        await subscribe(sub, 1, [["f/#", 0], ["f/+/x", 0]]);
        subs.push(sub);
      }
      await ctx.routed(0, 1);
      await ctx.routed(0, 2);
      const pub = await ctx.connect(0, { version: 5, clientId: "pub" });
      await pub.send(publishPacket(5, { topic: "f/open", payload: "open" }));
      for (const sub of subs) assertPublish(await sub.nextPacket(), { topic: "f/open", payload: "open" });
      await waitFor(() => (link(ctx, 0, 1)?.up ?? false) && (link(ctx, 0, 2)?.up ?? false), "both links up");
      const sent = spyForwards(ctx.brokers[0]!.cluster!.engine);
      const before = [link(ctx, 0, 1)!.frames, link(ctx, 0, 2)!.frames];
      await pub.send(publishPacket(5, { topic: "f/y/x", payload: "p" }));
      for (const sub of subs) assertPublish(await sub.nextPacket(), { topic: "f/y/x", payload: "p" });
      for (const sub of subs) await sub.barrier("one copy per subscriber");
      assert.deepEqual([link(ctx, 0, 1)!.frames - before[0]!, link(ctx, 0, 2)!.frames - before[1]!], [1, 1]);
      assert.equal(sent.length, 0);
    }),
);

Deno.test("a link still connecting to an address that never answers does not hold up closing the node [memory]", async () => {
  let closedIn = 0;
  await withCluster(MEMORY, 2, async (ctx) => {
    const a = ctx.brokers[0]!.cluster!;
    // A non-routable address: the SYN goes unanswered (or the network is unreachable at once).
    a.engine.peerAddress = () => Promise.resolve("10.255.255.1:9");
    const sub = await ctx.connect(1, { version: 5, clientId: "sub" });
    await subscribe(sub, 1, [["t/#", 0]]);
    await ctx.routed(0, 1);
    const pub = await ctx.connect(0, { version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "t/x", payload: "via the engine" }));
    assertPublish(await sub.nextPacket(), { topic: "t/x", payload: "via the engine" });
    assert.equal(link(ctx, 0, 1)?.up, false);
    const started = performance.now();
    await ctx.brokers[0]!.close();
    closedIn = performance.now() - started;
  });
  assert.ok(closedIn < 2000, `closed in ${closedIn.toFixed(0)} ms`);
});

Deno.test("the peer port closes sockets beyond HANDSHAKES_MAX that have not authenticated, and goes on [memory]", async () => {
  const log = warnings();
  await withCluster(MEMORY, 2, async (ctx) => {
    const idle: Deno.TcpConn[] = [];
    try {
      for (let i = 0; i < HANDSHAKES_MAX; i++) idle.push(await rawPeer(ctx, 1));
      await waitFor(
        () => ctx.brokers[1]!.cluster!.peers!.handshakes === HANDSHAKES_MAX,
        "the sockets accepted",
      );
      const extra = await rawPeer(ctx, 1);
      assert.ok(await closedByPeer(extra), "one more is closed at once");
      assert.ok(log.lines.some((l) => l.includes("handshakes under way")));
    } finally {
      for (const conn of idle) conn.close();
    }
    const { sub, pub } = await linked(ctx);
    await pub.send(publishPacket(5, { topic: "t/after", payload: "after" }));
    assertPublish(await sub.nextPacket(), { topic: "t/after", payload: "after" });
  }, { broker: { logger: log } });
});
