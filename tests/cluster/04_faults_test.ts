/**
 * Nodes that die, nodes cut off, an engine that goes away: wills exactly once through adoption, persistent
 * sessions adopted with what was published meanwhile, self-fencing (v5 DISCONNECT 0x8B), CONNECT refused while
 * the engine is unreachable (v5 0x88, v3 0x03), local QoS 0 flowing meanwhile, QoS 1 acknowledgements held, and
 * recovery by itself with and without the engine's data. Faults are injected on the in-memory engine.
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertPublish, payloads, persistent } from "../broker/_v5.ts";
import {
  hex,
  P,
  puback,
  pubcomp,
  publishPacket,
  pubrec,
  pubrel,
  subscribe,
  subscribePacket,
  unsubscribePacket,
  waitFor,
  type WireClient,
} from "../broker/_wire.ts";
import { decode } from "../../lib/packet/decode.ts";
import type { Packet } from "../../lib/packet/packet.ts";
import { type ClusterContext, MEMORY, withCluster } from "./_cluster.ts";
import { rendezvous } from "../../lib/cluster/ownership.ts";

/** Collects PUBLISH payloads on `clients` until `count` came (or `ms` passed), then a little longer for extras. */
async function gather(clients: readonly WireClient[], count: number, ms = 4000): Promise<string[]> {
  const got: string[] = [];
  const deadline = Date.now() + ms;
  while (got.length < count && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    for (const client of clients) got.push(...payloads(await client.collect()));
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  for (const client of clients) got.push(...payloads(await client.collect()));
  return got;
}

/**
 * x (persistent) subscribes with `subscription` on `node`, and once both other nodes have its route, goes offline;
 * then `node` closes gracefully, so that x's session is adopted at once. Returns the node that adopted it.
 */
async function closedAndAdopted(
  { brokers, connect, routed }: ClusterContext,
  { node, subscription }: { node: number; subscription: readonly [string, number] },
): Promise<number> {
  const others = [0, 1, 2].filter((n) => n !== node);
  const x = await connect(node, persistent("x"));
  await subscribe(x, 1, [subscription]);
  for (const other of others) await routed(other, node);
  await x.disconnect();
  await brokers[node]!.close();
  await waitFor(() => others.some((n) => brokers[n]!.session("x") !== undefined), "x adopted");
  return others.find((n) => brokers[n]!.session("x") !== undefined)!;
}

Deno.test("the will of a client whose node dies is published exactly once, by the node that adopts it", () =>
  withCluster(MEMORY, 3, async ({ brokers, engines, connect, routed }) => {
    const watchers = [
      await connect(1, { version: 5, clientId: "w1" }),
      await connect(2, { version: 5, clientId: "w2" }),
    ];
    for (const watcher of watchers) await subscribe(watcher, 1, [["will/#", 0]]);
    await routed(0, 1);
    await routed(0, 2);
    await connect(0, { version: 5, clientId: "dies", will: { topic: "will/dies", payload: "gone" } });
    await waitFor(
      () => engines.memory!.clients.get("dies")?.will !== undefined,
      "the will armed in the engine",
    );
    engines.memory!.partition(brokers[0]!.cluster!.incarnation, true); // as SIGKILL: no lease, no leave
    const got = await gather(watchers, 2);
    assert.deepEqual(got, ["gone", "gone"], "each watcher once: one publication");
    assert.equal(brokers[0]!.cluster!.state, "fenced", "the cut-off node fenced itself");
  }, { leaseMs: 300 }));

Deno.test("a dead node's persistent session is adopted: what was published meanwhile waits for its client", () =>
  withCluster(MEMORY, 3, async ({ brokers, engines, connect, routed }) => {
    const x = await connect(0, persistent("x"));
    await subscribe(x, 1, [["s/#", 1]]);
    await routed(1, 0);
    const pub = await connect(1, { version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "s/1", payload: "before", qos: 1, id: 1 }));
    await pub.expect(puback(5, 1));
    assertPublish(await x.nextPacket(), { topic: "s/1", payload: "before", qos: 1 }); // not acknowledged
    engines.memory!.partition(brokers[0]!.cluster!.incarnation, true);
    for (let i = 2; i <= 4; i++) {
      await pub.send(publishPacket(5, { topic: "s/1", payload: `during${i}`, qos: 1, id: i }));
      await pub.expect(puback(5, i));
    }
    await waitFor(
      () => brokers[1]!.session("x") !== undefined || brokers[2]!.session("x") !== undefined,
      "a live node to adopt x",
      3000,
    );
    for (let i = 5; i <= 6; i++) {
      await pub.send(publishPacket(5, { topic: "s/1", payload: `after${i}`, qos: 1, id: i }));
      await pub.expect(puback(5, i));
    }
    const back = await connect(2, persistent("x"), true);
    const got: string[] = [];
    while (new Set(got).size < 6) {
      const packet = await back.nextPacket(`message ${got.length + 1}`);
      assert.equal(packet.type, 3);
      const publish = packet as Extract<typeof packet, { type: 3 }>;
      got.push(new TextDecoder().decode(publish.payload));
      await back.send(puback(5, publish.packetId!));
    }
    assert.deepEqual([...new Set(got)].sort(), [
      "after5",
      "after6",
      "before",
      "during2",
      "during3",
      "during4",
    ]);
  }, { leaseMs: 300 }));

Deno.test("a node cut off from the engine fences itself: v5 DISCONNECT 0x8B, then CONNECT refused 0x88", () =>
  withCluster(MEMORY, 2, async ({ brokers, engines, connect, open }) => {
    const client = await connect(0, { version: 5, clientId: "c", will: { topic: "will/c", payload: "w" } });
    const watcher = await connect(1, { version: 5, clientId: "watch" });
    await subscribe(watcher, 1, [["will/#", 0]]);
    await waitFor(() => engines.memory!.clients.get("c")?.will !== undefined, "the will armed in the engine");
    engines.memory!.partition(brokers[0]!.cluster!.incarnation, true);
    await client.expectDisconnect(0x8b, "DISCONNECT Server shutting down");
    const v5 = await open(0, 5);
    await v5.send(hex("10 10 00 04 4d 51 54 54 05 02 00 00 00 00 03 6e 65 77"));
    const connack = await v5.expectPacket(2, "CONNACK");
    assert.equal(connack.reasonCode, 0x88, "Server unavailable");
    const got = await gather([watcher], 1);
    assert.deepEqual(got, ["w"], "the will once, from the adopter, not from the fenced node");
  }, { leaseMs: 300 }));

Deno.test("engine down: local QoS 0 flows, QoS 1 PUBACK waits, CONNECT refused (v5 0x88, v3 0x03); all recovers", () =>
  withCluster(MEMORY, 2, async ({ engines, connect, open, routed }) => {
    const remote = await connect(1, { version: 5, clientId: "remote" });
    await subscribe(remote, 1, [["d/#", 1]]);
    await routed(0, 1);
    const local = await connect(0, { version: 5, clientId: "local" });
    await subscribe(local, 1, [["d/#", 0]]);
    const pub = await connect(0, { version: 5, clientId: "pub" });
    engines.memory!.down();
    await pub.send(publishPacket(5, { topic: "d/0", payload: "qos0 local" }));
    assertPublish(await local.nextPacket(), { topic: "d/0", payload: "qos0 local" });
    await pub.send(publishPacket(5, { topic: "d/1", payload: "qos1", qos: 1, id: 1 }));
    assertPublish(await local.nextPacket(), { topic: "d/1", payload: "qos1" });
    assert.equal(
      await pub.nextOrEnd(200).catch(() => "nothing"),
      "nothing",
      "no PUBACK while the engine is away",
    );
    const v5 = await open(0, 5);
    await v5.send(hex("10 10 00 04 4d 51 54 54 05 02 00 00 00 00 03 6e 65 77"));
    assert.equal((await v5.expectPacket(2, "CONNACK")).reasonCode, 0x88);
    const v4 = await open(0, 4);
    await v4.send(hex("10 0f 00 04 4d 51 54 54 04 02 00 00 00 03 6f 6c 64"));
    await v4.expect(hex("20 02 00 03"), "CONNACK 0x03 Server unavailable (3.1.1)");
    engines.memory!.up({ keepData: true });
    await pub.expect(puback(5, 1), "PUBACK once the forward is durable");
    assertPublish(await remote.nextPacket(), { topic: "d/1", payload: "qos1", qos: 1 });
    await connect(0, { version: 5, clientId: "new" });
  }, { leaseMs: 4000 }));

Deno.test("engine back without its data: routes, retained messages and sessions are written back", () =>
  withCluster(MEMORY, 2, async ({ brokers, engines, connect, routed }) => {
    const sub = await connect(1, { version: 5, clientId: "sub" });
    await subscribe(sub, 1, [["z/#", 0]]);
    await routed(0, 1);
    const pub = await connect(0, { version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "z/r", payload: "kept", retain: true, qos: 1, id: 1 }));
    await pub.expect(puback(5, 1));
    assertPublish(await sub.nextPacket(), { topic: "z/r", payload: "kept" });
    engines.memory!.down();
    engines.memory!.up({ keepData: false });
    await waitFor(
      () => brokers.every((broker) => broker.cluster!.state === "up"),
      "every node to hear it is back",
    );
    await waitFor(
      () => engines.memory!.routes.get(brokers[1]!.cluster!.incarnation)?.has("z/#") ?? false,
      "re-seed",
    );
    await routed(0, 1);
    await waitFor(() => engines.memory!.retained.has("z/r"), "retained re-seeded");
    await pub.send(publishPacket(5, { topic: "z/after", payload: "again" }));
    assertPublish(await sub.nextPacket(), { topic: "z/after", payload: "again" });
    assert.equal(
      engines.memory!.clients.get("sub")?.owner,
      brokers[1]!.cluster!.incarnation,
      "ownership re-seeded",
    );
  }, { leaseMs: 4000 }));

Deno.test("a fenced node joins again as a new incarnation once the engine answers, and serves again", () =>
  withCluster(MEMORY, 2, async ({ brokers, engines, connect, routed }) => {
    const node = brokers[0]!.cluster!;
    const old = node.incarnation;
    const x = await connect(0, persistent("x"));
    await subscribe(x, 1, [["j/#", 1]]);
    await waitFor(() => engines.memory!.clients.get("x")?.session !== undefined, "the session stored");
    engines.memory!.partition(old, true);
    await x.expectDisconnect(0x8b);
    await waitFor(() => node.state === "fenced", "the node to fence itself");
    await waitFor(() => brokers[1]!.session("x") !== undefined, "the live node to adopt x", 3000);
    engines.memory!.partition(old, false);
    await waitFor(() => node.state === "up" && node.incarnation !== old, "a new incarnation", 3000);
    const back = await connect(0, persistent("x"), true);
    await routed(1, 0);
    const pub = await connect(1, { version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "j/1", payload: "again", qos: 1, id: 1 }));
    await pub.expect(puback(5, 1));
    assertPublish(await back.nextPacket(), { topic: "j/1", payload: "again", qos: 1 });
  }, { leaseMs: 300 }));

Deno.test("a session no live node adopted (they disagreed on who is live) is adopted by the dead node's sweeper", () =>
  withCluster(MEMORY, 3, async ({ brokers, engines, connect }) => {
    const dead = brokers[0]!.cluster!.incarnation;
    const live = [brokers[1]!.cluster!.incarnation, brokers[2]!.cluster!.incarnation];
    // A node name that wins the client id but not the dead node: whoever believes in it leaves the id to it.
    let phantom = "";
    for (let i = 0; phantom === ""; i++) {
      const candidate = `phantom-${i}`;
      const all = [...live, candidate];
      if (rendezvous("orphan", all) === candidate && rendezvous(dead, all) !== candidate) phantom = candidate;
    }
    for (const broker of brokers.slice(1)) {
      broker.cluster!.engine.liveNodes = () => Promise.resolve([...live, phantom].sort());
    }
    const orphan = await connect(0, persistent("orphan"));
    await subscribe(orphan, 1, [["o/#", 1]]);
    await waitFor(() => engines.memory!.clients.get("orphan")?.session !== undefined, "the session stored");
    engines.memory!.partition(dead, true);
    await waitFor(
      () => brokers[1]!.session("orphan") !== undefined || brokers[2]!.session("orphan") !== undefined,
      "the sweeper to adopt the orphan",
      3000,
    );
    assert.equal(engines.memory!.owned.get(dead)?.size ?? 0, 0, "nothing left owned by the dead node");
  }, { leaseMs: 300 }));

Deno.test("a dead node's client with a Will Delay: the adopter waits the delay, and a return in time cancels it", () =>
  withCluster(MEMORY, 3, async ({ brokers, engines, connect, routed }) => {
    const watcher = await connect(1, { version: 5, clientId: "watch" });
    await subscribe(watcher, 1, [["will/#", 0]]);
    await routed(0, 1);
    const will = (payload: string) => ({ topic: "will/delayed", payload, properties: [P.willDelay(1)] });
    await connect(0, { ...persistent("back"), will: will("back") });
    await connect(0, { ...persistent("gone"), will: will("gone") });
    // The will is stored before the CONNACK, the new session with the commit after it.
    const stored = (id: string) =>
      engines.memory!.clients.get(id)?.will !== undefined &&
      engines.memory!.clients.get(id)?.session !== undefined;
    await waitFor(() => stored("back") && stored("gone"), "both sessions and wills in the engine");
    engines.memory!.partition(brokers[0]!.cluster!.incarnation, true);
    await waitFor(
      () =>
        ["back", "gone"].every((id) => brokers.slice(1).some((broker) => broker.session(id) !== undefined)),
      "both sessions adopted",
      3000,
    );
    const adopted = performance.now();
    assert.deepEqual(payloads(await watcher.collect()), [], "no will before its delay");
    await connect(2, { ...persistent("back"), will: will("back") }, true);
    const got = await gather([watcher], 1);
    const waited = performance.now() - adopted;
    assert.deepEqual(got, ["gone"], "the returning client's will is cancelled [MQTT-3.1.3-9 (5.0)]");
    assert.ok(waited >= 800, `the will waited its delay (${waited.toFixed(0)} ms after adoption)`);
  }, { leaseMs: 300 }));

Deno.test("QoS 2 published while a stopped node's session is adopted reaches it exactly once, and no older message reaches a newer subscription", () =>
  withCluster(MEMORY, 3, async ({ brokers, connect, routed }) => {
    const x = await connect(0, persistent("x"));
    await subscribe(x, 1, [["d/#", 2]]);
    await routed(2, 0);
    await x.disconnect();
    const pub = await connect(2, { version: 5, clientId: "pub" });
    const publish = async (topic: string, from: number, to: number) => {
      for (let i = from; i <= to; i++) {
        await pub.send(publishPacket(5, { topic, payload: `${topic}#${i}`, qos: 2, id: i }));
        await pub.expectPacket(5, `PUBREC ${i}`);
        await pub.send(pubrel(5, i));
        await pub.expectPacket(7, `PUBCOMP ${i}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    const closing = brokers[0]!.close(); // graceful: its sessions are adopted at once
    await publish("d/1", 1, 20);
    await publish("e/1", 21, 22); // before anyone subscribes e/#
    await closing;
    await waitFor(
      () => brokers[1]!.session("x") !== undefined || brokers[2]!.session("x") !== undefined,
      "x adopted",
    );
    const back = await connect(1, persistent("x"), true);
    await back.send(subscribePacket(5, 9, [["e/#", 2]])); // its SUBACK comes among the messages
    const got: string[] = [];
    const open = new Set<number>();
    const deadline = Date.now() + 3000;
    while ((new Set(got).size < 20 || open.size > 0) && Date.now() < deadline) {
      const frame = await back.nextOrEnd(500).catch(() => undefined);
      if (frame === undefined) break;
      const packet = decode(frame, 5);
      if (packet.type === 3) {
        got.push(new TextDecoder().decode(packet.payload));
        open.add(packet.packetId!);
        await back.send(pubrec(5, packet.packetId!));
      } else if (packet.type === 6) {
        open.delete(packet.packetId);
        await back.send(pubcomp(5, packet.packetId));
      } else {
        assert.equal(packet.type, 9, "SUBACK");
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const packet of await back.collect()) {
      if (packet.type === 3) got.push(new TextDecoder().decode(packet.payload));
    }
    const expected = Array.from({ length: 20 }, (_, i) => `d/1#${i + 1}`);
    assert.deepEqual([...got].sort(), [...expected].sort(), `each once, nothing from e/1: ${got.join(" ")}`);
  }, { leaseMs: 300 }));

Deno.test("a message that reaches a dead node's inbox after the adopter's first replay reaches its client back on the adopter, even when it subscribes at once", () =>
  withCluster(MEMORY, 3, async (cluster) => {
    const { brokers, connect } = cluster;
    const dead = brokers[0]!.cluster!.incarnation;
    // The second replay waits half a lease (2 s here).
    const adopter = await closedAndAdopted(cluster, { node: 0, subscription: ["d/#", 2] });
    await brokers[adopter]!.cluster!.summary.settled();
    await new Promise((resolve) => setTimeout(resolve, 50)); // the first replay has read the dead inbox
    // A publisher's node that has not heard of the adopter's route yet: the message goes to the dead node's
    // inbox alone, and its publisher is acknowledged once that forward is stored.
    const publisher = brokers[3 - adopter]!.cluster!;
    await publisher.engine.commit({
      ops: [],
      forwards: [{
        to: dead,
        messages: [{
          id: `${publisher.incarnation}:late`,
          message: { topic: "d/1", payload: new TextEncoder().encode("late"), qos: 2, retain: false },
          direct: true,
        }],
      }],
    });
    const back = await connect(adopter, persistent("x"), true);
    await back.send(subscribePacket(5, 9, [["e/#", 2]])); // ends the replays to x: before the second one
    const got: string[] = [];
    const deadline = Date.now() + 1000;
    while (got.length === 0 && Date.now() < deadline) {
      const frame = await back.nextOrEnd(1000).catch(() => undefined);
      if (frame === undefined) break;
      const packet = decode(frame, 5);
      if (packet.type === 3) got.push(new TextDecoder().decode(packet.payload));
    }
    assert.deepEqual(got, ["late"], "the acknowledged message, from the dead node's inbox");
  }, { leaseMs: 4000 }));

Deno.test("an adopted session that moves away and back gets nothing twice from the dead node's inbox", () =>
  withCluster(MEMORY, 3, async (cluster) => {
    const { connect } = cluster;
    // Node 2's routes stay for a lease.
    const adopter = await closedAndAdopted(cluster, { node: 2, subscription: ["r/#", 2] });
    const other = 1 - adopter;
    const away = await connect(other, persistent("x"), true); // takes it from the adopter
    const pub = await connect(adopter, { version: 5, clientId: "pub" });
    await pub.send(publishPacket(5, { topic: "r/1", payload: "once", qos: 2, id: 1 }));
    await pub.expectPacket(5, "PUBREC");
    await pub.send(pubrel(5, 1));
    await pub.expectPacket(7, "PUBCOMP");
    await away.close();
    const back = await connect(adopter, persistent("x"), true); // and back to the adopter
    const got: string[] = [];
    const deadline = Date.now() + 1500; // past the adopter's later replays and the sweep of the dead node
    while (Date.now() < deadline) {
      const frame = await back.nextOrEnd(100).catch(() => undefined);
      if (frame === undefined) continue;
      const packet = decode(frame, 5);
      if (packet.type === 3) {
        got.push(new TextDecoder().decode(packet.payload));
        await back.send(pubrec(5, packet.packetId!));
      } else if (packet.type === 6) {
        await back.send(pubcomp(5, packet.packetId));
      }
    }
    assert.deepEqual(got, ["once"], "QoS 2 exactly once [MQTT-4.3.3-2 (3.1.1)]");
  }, { leaseMs: 600 }));

/**
 * x (persistent, `old/#`) on node 2, which then closes; x comes back on its adopter and unsubscribes, and a
 * QoS 1 message to `old/1` is published on the other live node. Returns x's connection.
 */
async function adoptedThenUnsubscribedThenPublished(cluster: ClusterContext): Promise<WireClient> {
  const { connect } = cluster;
  // Node 2's routes stay for a lease.
  const adopter = await closedAndAdopted(cluster, { node: 2, subscription: ["old/#", 1] });
  const back = await connect(adopter, persistent("x"), true);
  await back.send(unsubscribePacket(5, 2, ["old/#"]));
  await back.expectPacket(11, "UNSUBACK");
  const pub = await connect(1 - adopter, { version: 5, clientId: "pub" });
  await pub.send(publishPacket(5, { topic: "old/1", payload: "unwanted", qos: 1, id: 1 }));
  await pub.expectPacket(4, "PUBACK");
  return back;
}

/** What `client` receives over 1.5 s: past the adopter's later replays and the sweep of the dead node. */
async function quietFor(client: WireClient): Promise<Packet[]> {
  const got: Packet[] = [];
  const deadline = Date.now() + 1500;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    got.push(...await client.collect());
  }
  return got;
}

Deno.test("the dead node's inbox reaches an adopted session only through subscriptions it still has", () =>
  withCluster(MEMORY, 3, async (cluster) => {
    const back = await adoptedThenUnsubscribedThenPublished(cluster);
    assert.deepEqual(await quietFor(back), [], "nothing for a subscription it removed");
  }, { leaseMs: 600 }));

Deno.test("a message published while an adopted session had no matching subscription is not replayed to it later", () =>
  withCluster(MEMORY, 3, async (cluster) => {
    const back = await adoptedThenUnsubscribedThenPublished(cluster);
    await subscribe(back, 3, [["old/#", 1]]); // the same filter again, after the message
    assert.deepEqual(await quietFor(back), [], "the oracle (one broker) would not deliver it");
  }, { leaseMs: 600 }));
