/**
 * `renderMetrics()` over a live broker: read back by a strict parser, moved exactly by known traffic, never
 * lower at a later scrape, and accepted by `promtool check metrics` (Debian's `prometheus` package).
 */

import assert from "node:assert/strict";
import { renderMetrics, startMetrics } from "../../../lib/admin/metrics/render.ts";
import { MemoryPersistence } from "../../../lib/broker/storage/memory_persistence.ts";
import { Broker } from "../../../lib/broker/broker.ts";
import { ManualClock } from "../../../lib/clock.ts";
import type { Packet } from "../../../lib/packet/packet.ts";
import { testIf } from "../../_permissions.ts";
import {
  connectPacket,
  P,
  puback,
  publishPacket,
  subscribe,
  waitFor,
  WireClient,
  withBroker,
} from "../../broker/_wire.ts";
import { type Family, parseExposition, value } from "./_prometheus_text.ts";

const HOSTILE_ID = 'evil"}\nclient\\';
const HOSTILE_TOPIC = 'zq9topic/"x"/\nnewline';

/** Every counter and histogram sample by series key: what may never go down between two scrapes. */
function monotonic(families: Map<string, Family>): Map<string, number> {
  const out = new Map<string, number>();
  for (const family of families.values()) {
    if (family.type !== "counter" && family.type !== "histogram") continue;
    for (const s of family.samples) out.set(`${s.name}${JSON.stringify(s.labels)}`, s.value);
  }
  return out;
}

function assertNotLower(before: Map<string, number>, after: Map<string, number>): void {
  for (const [key, was] of before) {
    const now = after.get(key);
    assert.ok(now !== undefined, `${key} disappeared`);
    assert.ok(now >= was, `${key} went down: ${was} -> ${now}`);
  }
}

Deno.test("renderMetrics() has every family once, the prefix, base units, and never a client id or a topic", async () => {
  await withBroker({}, async ({ connect, broker }) => {
    const sub = await connect({ version: 5, clientId: HOSTILE_ID });
    await subscribe(sub, 1, [[HOSTILE_TOPIC, 1]]);
    const pub = await connect({ version: 4, clientId: "pub" });
    await pub.send(publishPacket(4, { topic: HOSTILE_TOPIC, payload: "x", qos: 1, id: 1 }));
    await pub.expect(puback(4, 1));
    const text = renderMetrics(broker, {
      adminRequests: { "2xx": 3, "4xx": 1, "5xx": 0 },
      certificates: [{ listener: "tls listener", cert: "not a certificate" }],
    });
    const families = parseExposition(text);
    for (const name of families.keys()) {
      assert.ok(name.startsWith("denomqtt_") || name.startsWith("process_"), `${name} has the prefix`);
    }
    assert.ok(!text.includes("evil"), "no client id");
    assert.ok(!text.includes("zq9topic"), "no topic");
    for (
      const [name, type] of [
        ["denomqtt_clients_connected", "gauge"],
        ["denomqtt_connections", "gauge"],
        ["denomqtt_sessions", "gauge"],
        ["denomqtt_messages_received_total", "counter"],
        ["denomqtt_messages_dropped_total", "counter"],
        ["denomqtt_packets_received_total", "counter"],
        ["denomqtt_received_bytes_total", "counter"],
        ["denomqtt_delivery_latency_seconds", "histogram"],
        ["denomqtt_storage_commit_duration_seconds", "histogram"],
        ["denomqtt_event_loop_lag_seconds", "histogram"],
        ["denomqtt_admin_requests_total", "counter"],
        ["denomqtt_build_info", "gauge"],
        ["process_resident_memory_bytes", "gauge"],
        ["process_cpu_seconds_total", "counter"],
        ["process_start_time_seconds", "gauge"],
        ["denomqtt_heap_used_bytes", "gauge"],
      ] as const
    ) {
      assert.equal(families.get(name)?.type, type, name);
    }
    assert.equal(value(families, "denomqtt_clients_connected", { protocol: "5.0" }), 1);
    assert.equal(value(families, "denomqtt_clients_connected", { protocol: "3.1.1" }), 1);
    assert.equal(value(families, "denomqtt_subscriptions", { kind: "plain" }), 1);
    assert.equal(value(families, "denomqtt_admin_requests_total", { code: "2xx" }), 3);
    assert.equal(
      families.get("denomqtt_certificate_expiry_timestamp_seconds")!.samples.length,
      0,
      "unreadable",
    );
    assert.equal(value(families, "denomqtt_packets_received_total", { type: "connect" }), 2);
  });
});

Deno.test('renderMetrics(): N QoS 1 publishes move messages_received_total{qos="1"} by exactly N', async () => {
  await withBroker({}, async ({ connect, broker }) => {
    const pub = await connect({ version: 4, clientId: "pub" });
    const before = value(parseExposition(renderMetrics(broker)), "denomqtt_messages_received_total", {
      qos: "1",
    });
    const n = 25;
    for (let id = 1; id <= n; id++) {
      await pub.send(publishPacket(4, { topic: "t", payload: "p", qos: 1, id }));
    }
    for (let id = 1; id <= n; id++) await pub.expect(puback(4, id));
    const after = parseExposition(renderMetrics(broker));
    assert.equal(value(after, "denomqtt_messages_received_total", { qos: "1" }) - before, n);
    assert.equal(value(after, "denomqtt_messages_received_total", { qos: "0" }), 0);
    assert.equal(value(after, "denomqtt_messages_unrouted_total"), n, "nobody subscribed");
  });
});

Deno.test('renderMetrics(): a full queue moves messages_dropped_total{reason="queue_full"}, and no counter goes down when the session ends', async () => {
  await withBroker({ maxQueued: 2 }, async ({ connect, broker }) => {
    const away = { version: 5 as const, clientId: "away", clean: false, properties: [P.sessionExpiry(3600)] };
    const first = await connect(away);
    await subscribe(first, 1, [["q", 1]]);
    await first.disconnect();
    const pub = await connect({ version: 4, clientId: "pub" });
    const start = parseExposition(renderMetrics(broker));
    for (let id = 1; id <= 5; id++) {
      await pub.send(publishPacket(4, { topic: "q", payload: "m", qos: 1, id }));
      await pub.expect(puback(4, id));
    }
    const full = parseExposition(renderMetrics(broker));
    assert.equal(value(full, "denomqtt_messages_dropped_total", { reason: "queue_full" }), 3);
    assert.equal(value(full, "denomqtt_queued_messages"), 2);
    assertNotLower(monotonic(start), monotonic(full));
    // Clean Start ends the session that dropped them; its two queued messages go with it.
    const back = await connect({ ...away, clean: true });
    await back.disconnect();
    const ended = parseExposition(renderMetrics(broker));
    assert.equal(value(ended, "denomqtt_messages_dropped_total", { reason: "queue_full" }), 3, "kept");
    assert.equal(value(ended, "denomqtt_queued_messages"), 0, "the gauge goes down");
    assertNotLower(monotonic(full), monotonic(ended));
  });
});

Deno.test("renderMetrics(): delivery latency counts each acknowledged delivery once, and skips messages restored from storage", async () => {
  const persistence = new MemoryPersistence();
  const first = new Broker({ sysInterval: 0, persistence });
  const { port } = await first.listen({ hostname: "127.0.0.1", port: 0 });
  const open = async (clientId: string, clean: boolean): Promise<WireClient> => {
    const client = new WireClient(await Deno.connect({ hostname: "127.0.0.1", port: portNow }), 5);
    await client.send(connectPacket({ version: 5, clientId, clean, properties: [P.sessionExpiry(3600)] }));
    await client.expectPacket(2, "CONNACK");
    return client;
  };
  let portNow = port;
  const sub = await open("sub", true);
  await subscribe(sub, 1, [["l", 1]]);
  const pub = await open("pub", true);
  await pub.send(publishPacket(5, { topic: "l", payload: "live", qos: 1, id: 1 }));
  await pub.expectPacket(4, "PUBACK 1");
  const got = await sub.expectPacket(3, "PUBLISH");
  await sub.send(puback(5, got.packetId!));
  await waitFor(() => first.counters.deliveryLatency[1]!.count === 1, "one latency");
  await sub.close();
  await waitFor(() => first.session("sub")?.link === undefined, "the subscriber gone");
  await pub.send(publishPacket(5, { topic: "l", payload: "held", qos: 1, id: 2 }));
  await pub.expectPacket(4, "PUBACK 2");
  await pub.close();
  await first.close();
  const second = new Broker({ sysInterval: 0, persistence });
  portNow = (await second.listen({ hostname: "127.0.0.1", port: 0 })).port;
  try {
    const back = await open("sub", false);
    const held = await back.expectPacket(3, "the PUBLISH held across the restart");
    await back.send(puback(5, held.packetId!));
    await waitFor(() => second.counters.packetsReceivedByType[4] === 1, "its PUBACK");
    const families = parseExposition(renderMetrics(second));
    assert.equal(
      value(families, "denomqtt_delivery_latency_seconds_count", { qos: "1" }),
      0,
      "restored: skipped",
    );
    assert.equal(value(families, "denomqtt_messages_sent_total", { qos: "1" }), 1);
    await back.close();
  } finally {
    await second.close();
  }
});

/** Why `promtool` cannot run here, or undefined. */
function promtoolUnavailable(): string | undefined {
  if (Deno.permissions.querySync({ name: "run", command: "/usr/bin/promtool" }).state !== "granted") {
    return "needs --allow-run";
  }
  try {
    Deno.statSync("/usr/bin/promtool");
  } catch {
    return "promtool is not installed (Debian package prometheus)";
  }
  return undefined;
}

testIf(
  "promtool check metrics accepts renderMetrics() of a broker with traffic",
  [promtoolUnavailable()],
  async () => {
    await withBroker({ maxQueued: 1 }, async ({ connect, broker }) => {
      const sub = await connect({
        version: 5,
        clientId: "s",
        clean: false,
        properties: [P.sessionExpiry(60)],
      });
      await subscribe(sub, 1, [["a/#", 2], ["$share/g/b", 1]]);
      const pub = await connect({ version: 4, clientId: "p" });
      for (let id = 1; id <= 5; id++) {
        await pub.send(publishPacket(4, { topic: "a/b", payload: "x", qos: 1, id, retain: id === 1 }));
        await pub.expect(puback(4, id));
      }
      const text = renderMetrics(broker, { adminRequests: { "2xx": 1, "4xx": 0, "5xx": 0 } });
      const child = new Deno.Command("/usr/bin/promtool", {
        args: ["check", "metrics"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(text));
      await writer.close();
      const { code, stdout, stderr } = await child.output();
      const said = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
      assert.equal(code, 0, said);
      assert.equal(said.trim(), "", `promtool has no complaint: ${said}`);
    });
  },
);

Deno.test("renderMetrics(): disconnects and refusals are counted by reason from the event hub once metrics start", async () => {
  await withBroker({}, async ({ connect, broker, open }) => {
    startMetrics(broker);
    const a = await connect({ version: 5, clientId: "a" });
    await a.disconnect();
    const b = await connect({ version: 4, clientId: "b" });
    await b.close();
    const first = await connect({ version: 5, clientId: "dup" });
    await connect({ version: 5, clientId: "dup" });
    await first.expectDisconnect(0x8e, "DISCONNECT Session taken over");
    const bad = await open(4);
    await bad.send(connectPacket({ version: 4, clientId: "x", level: 9 }));
    await bad.next("CONNACK 0x01 unacceptable protocol version");
    await bad.expectClosed("refused: unsupported protocol level");
    await waitFor(() => broker.counters.disconnects.reduce((s, n) => s + n, 0) === 3, "three disconnects");
    const families = parseExposition(renderMetrics(broker));
    assert.equal(value(families, "denomqtt_disconnects_total", { reason: "normal" }), 1);
    assert.equal(value(families, "denomqtt_disconnects_total", { reason: "socket_error" }), 1);
    assert.equal(value(families, "denomqtt_disconnects_total", { reason: "takeover" }), 1);
    assert.equal(value(families, "denomqtt_connections_refused_total", { reason: "protocol" }), 1);
  });
});

Deno.test("$SYS and renderMetrics() read the same counters: received and dropped totals agree", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, sysInterval: 10, maxQueued: 1 }, async ({ connect, broker }) => {
    const away = { version: 5 as const, clientId: "away", clean: false, properties: [P.sessionExpiry(3600)] };
    const first = await connect(away);
    await subscribe(first, 1, [["d", 1]]);
    await first.disconnect();
    const pub = await connect({ version: 4, clientId: "pub" });
    for (let id = 1; id <= 4; id++) {
      await pub.send(publishPacket(4, { topic: "d", payload: "m", qos: 1, id }));
      await pub.expect(puback(4, id));
    }
    clock.advance(10_000); // $SYS publishes now, from the counters
    const monitor = await connect({ version: 4, clientId: "monitor" });
    await subscribe(monitor, 1, [["$SYS/broker/publish/messages/+", 0]]);
    const sys = new Map<string, number>();
    for (const packet of await monitor.collect()) {
      const publish = packet as Extract<Packet, { type: 3 }>;
      sys.set(
        publish.topic.slice("$SYS/broker/publish/messages/".length),
        Number(new TextDecoder().decode(publish.payload)),
      );
    }
    const families = parseExposition(renderMetrics(broker));
    const sum = (name: string) => families.get(name)!.samples.reduce((total, s) => total + s.value, 0);
    assert.equal(sys.get("received"), 4);
    assert.equal(sum("denomqtt_messages_received_total"), sys.get("received"));
    assert.equal(sys.get("dropped"), 3);
    assert.equal(sum("denomqtt_messages_dropped_total"), sys.get("dropped"));
  });
});
