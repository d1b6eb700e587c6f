/**
 * Hostile input, each case bounded in count and time and run on 127.0.0.1 only: slowloris CONNECTs, a 256 MB
 * Remaining Length, a SUBSCRIBE far over the subscription limit, a subscriber that never reads, a client that
 * never reads the answers to what it sends, and a storm of random bytes. Each test prints what it measured.
 *
 * The cases that measure memory run `broker.ts` as a subprocess (see `_proc.ts`) and need `--allow-run` and
 * `--allow-read`; without them they are ignored with a name that says so. The storm lasts `HOSTILE_SECONDS`
 * seconds (default 20; needs `--allow-env` to change).
 */

import assert from "node:assert/strict";
import type { Connection } from "../../lib/broker/connection.ts";
import type { ProtocolVersion, QoS } from "../../lib/packet/packet_type.ts";
import {
  concat,
  CONNACK_OK_V4,
  connectPacket,
  disconnectPacket,
  P,
  PINGREQ,
  puback,
  publishPacket,
  pubrec,
  subackPacket,
  subscribe,
  subscribePacket,
  u16,
  unsubscribePacket,
  v,
  varint,
  VERSIONS,
  waitFor,
  WireClient,
  withBroker,
} from "../broker/_wire.ts";
import { mib, RssSampler, startBrokerProcess, subprocessSkipReason } from "./_proc.ts";
import { mulberry32 } from "../_prng.ts";

const SKIP_PROC = subprocessSkipReason();
const encoder = new TextEncoder();

// ---- helpers -----------------------------------------------------------------------------------------------

/** A raw TCP client to `port` (for the broker subprocess). */
async function openTcp(port: number, version: ProtocolVersion): Promise<WireClient> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  return new WireClient(conn, version);
}

/** Opens a client to `port`, sends CONNECT and expects success. */
async function connectTcp(port: number, version: ProtocolVersion, clientId: string): Promise<WireClient> {
  const client = await openTcp(port, version);
  await client.send(connectPacket({ version, clientId }));
  if (version === 5) assert.equal((await client.expectPacket(2, "CONNACK")).reasonCode, 0);
  else await client.expect(CONNACK_OK_V4, "CONNACK");
  return client;
}

/** A SUBSCRIBE with many filters (the `_wire.ts` builder spreads its parts, which overflows the stack here). */
function largeSubscribe(version: ProtocolVersion, id: number, filters: readonly string[]): Uint8Array {
  const encoded = filters.map((f) => encoder.encode(f));
  const head = version === 5 ? concat(u16(id), 0) : u16(id);
  const body = new Uint8Array(head.length + encoded.reduce((n, e) => n + 3 + e.length, 0));
  body.set(head);
  let at = head.length;
  for (const e of encoded) {
    body.set(u16(e.length), at);
    body.set(e, at + 2);
    body[at + 2 + e.length] = 0; // QoS 0
    at += 3 + e.length;
  }
  return concat(0x82, varint(body.length), body);
}

/** Resolves after `ms` real milliseconds. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Writes all of `data` unless the peer is gone; false when it is. */
async function tryWrite(conn: Deno.Conn, data: Uint8Array): Promise<boolean> {
  try {
    let offset = 0;
    while (offset < data.length) offset += await conn.write(data.subarray(offset));
    return true;
  } catch {
    return false;
  }
}

/** Reads and discards everything until the peer closes; resolves the byte count. */
async function discard(conn: Deno.Conn): Promise<number> {
  const buffer = new Uint8Array(64 * 1024);
  let total = 0;
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) return total;
      total += n;
    }
  } catch {
    return total;
  }
}

/** Closes a Deno.Conn, ignoring one already closed. */
function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

// ---- slowloris ---------------------------------------------------------------------------------------------

Deno.test("slowloris: sockets that send half a CONNECT, then a byte every 200 ms, are closed after connectTimeout", async () => {
  const connectTimeout = 500;
  const sockets = 20;
  await withBroker({ connectTimeout }, async ({ broker, open, connect }) => {
    const good = await connect({ version: 5, clientId: "good" });
    const timers: ReturnType<typeof setInterval>[] = [];
    try {
      const started = performance.now();
      const runs = Array.from({ length: sockets }, async (_, i) => {
        const version: ProtocolVersion = i % 2 === 0 ? 4 : 5;
        const client = await open(version);
        const bytes = connectPacket({ version, clientId: `slowloris-${i}`, keepAlive: 60 });
        let sent = bytes.length >> 1;
        await client.send(bytes.subarray(0, sent));
        const timer = setInterval(() => {
          if (sent < bytes.length - 1) client.trySend(bytes.subarray(sent, ++sent)); // never the last byte
        }, 200);
        timers.push(timer);
        await client.expectClosed("close after the connect timeout");
        clearInterval(timer);
        return { elapsed: performance.now() - started, sent, total: bytes.length };
      });
      await good.barrier("served while the slowloris sockets hang");
      const results = await Promise.all(runs);
      const slowest = Math.max(...results.map((r) => r.elapsed));
      const fastest = Math.min(...results.map((r) => r.elapsed));
      console.log(
        `  ${sockets} slowloris sockets closed after ${fastest.toFixed(0)}-${slowest.toFixed(0)} ms ` +
          `(connectTimeout ${connectTimeout} ms), each having sent ${results[0]!.sent} of ${
            results[0]!.total
          } bytes`,
      );
      assert.ok(fastest >= connectTimeout - 50, `closed after ${fastest} ms, before the timeout`);
      assert.ok(slowest < connectTimeout + 1500, `closed after ${slowest} ms`);
      await waitFor(() => broker.connectionCount === 1, "only the good client left");
      await good.barrier("still served");
      await good.disconnect();
    } finally {
      for (const timer of timers) clearInterval(timer);
    }
  });
});

Deno.test("slowloris: a socket that sends nothing at all is closed after connectTimeout", async () => {
  await withBroker({ connectTimeout: 300 }, async ({ open }) => {
    const started = performance.now();
    const idle = await open(4);
    await idle.expectClosed();
    const elapsed = performance.now() - started;
    console.log(`  a silent socket was closed after ${elapsed.toFixed(0)} ms (connectTimeout 300 ms)`);
    assert.ok(elapsed >= 250 && elapsed < 1500, `closed after ${elapsed} ms`);
  });
});

// ---- a 256 MB Remaining Length -----------------------------------------------------------------------------

/** A PUBLISH fixed header claiming 0x7f * 128^3 = 266,338,304 bytes (254 MiB). */
const HUGE_PUBLISH = Uint8Array.of(0x30, 0x80, 0x80, 0x80, 0x7f);
/** A Remaining Length 5 bytes long: malformed, whatever it would say [MQTT-1.5.5-1 (5.0)]. */
const FIVE_BYTE_LENGTH = Uint8Array.of(0x30, 0x80, 0x80, 0x80, 0x80, 0x01);

for (const version of VERSIONS) {
  const answer = version === 5 ? "DISCONNECT 0x95" : "a closed socket";
  Deno.test(`${v(version)}: a 254 MiB Remaining Length gets ${answer} right after the header`, async () => {
    await withBroker({}, async ({ connect }) => {
      const client = await connect({ version, clientId: "huge" });
      const started = performance.now();
      await client.trySend(HUGE_PUBLISH);
      await client.expectDisconnect(0x95, "DISCONNECT 0x95 Packet too large");
      console.log(
        `  ${v(version)}: refused ${(performance.now() - started).toFixed(1)} ms after the 5-byte header`,
      );
    });
  });

  Deno.test(`${v(version)}: a 5-byte Remaining Length is malformed (${version === 5 ? "DISCONNECT 0x81" : "closed"})`, async () => {
    await withBroker({}, async ({ connect }) => {
      const client = await connect({ version, clientId: "five" });
      await client.trySend(FIVE_BYTE_LENGTH);
      await client.expectDisconnect(0x81, "DISCONNECT 0x81 Malformed Packet");
    });
  });
}

Deno.test("a CONNECT header claiming 254 MiB is closed before anything else is read", async () => {
  await withBroker({}, async ({ open, connect }) => {
    const client = await open(5);
    await client.trySend(0x10, 0x80, 0x80, 0x80, 0x7f);
    await client.expectClosed("closed: no CONNACK for an unreadable CONNECT");
    const other = await connect({ version: 4, clientId: "other" });
    await other.disconnect();
  });
});

Deno.test({
  name: `256 MB headers from 30 sockets do not grow the broker's memory${SKIP_PROC}`,
  ignore: SKIP_PROC !== "",
  fn: async () => {
    const broker = await startBrokerProcess();
    const clients: WireClient[] = [];
    try {
      const before = await broker.rss();
      const body = new Uint8Array(64 * 1024);
      await Promise.all(Array.from({ length: 30 }, async (_, i) => {
        const version: ProtocolVersion = i % 3 === 0 ? 4 : 5;
        let client: WireClient;
        if (i % 3 === 2) client = await openTcp(broker.port, version); // before CONNECT
        else client = await connectTcp(broker.port, version, `huge-${i}`);
        clients.push(client);
        await client.trySend(HUGE_PUBLISH);
        // Keep sending the "body": the broker must have stopped reading at the header.
        for (let k = 0; k < 16 && !client.ended; k++) await client.trySend(body);
        if (i % 3 !== 2) await client.expectDisconnect(0x95);
        else await client.expectClosed();
      }));
      const after = await broker.rss();
      console.log(`  broker RSS before ${mib(before)}, after 30 x 254 MiB headers ${mib(after)}`);
      assert.ok(after - before < 32 * 1_048_576, `RSS grew by ${mib(after - before)}`);
      const check = await connectTcp(broker.port, 4, "after");
      clients.push(check);
      await check.disconnect();
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await broker.stop();
    }
    assert.deepEqual(broker.errors, [], "no error lines in the broker's log");
  },
});

Deno.test({
  name: `with --max-packet-size 268435460 a 256 MB header allocates only the bytes that arrived${SKIP_PROC}`,
  ignore: SKIP_PROC !== "",
  fn: async () => {
    const broker = await startBrokerProcess(["--max-packet-size", "268435460"]);
    const clients: WireClient[] = [];
    try {
      const before = await broker.rss();
      const sockets = 10;
      const sent = 256 * 1024;
      for (let i = 0; i < sockets; i++) {
        const client = await connectTcp(broker.port, 5, `partial-${i}`);
        clients.push(client);
        await client.send(HUGE_PUBLISH, [0, 1, 0x61, 0], new Uint8Array(sent)); // topic "a", no properties
      }
      await sleep(300); // the broker has read what was sent: it waits for the rest of the bodies
      const during = await broker.rss();
      console.log(
        `  broker RSS before ${mib(before)}, with ${sockets} x 254 MiB PUBLISH headers and ${
          sent / 1024
        } KiB of each body: ${mib(during)}`,
      );
      assert.ok(during - before < 64 * 1_048_576, `RSS grew by ${mib(during - before)}`);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await broker.stop();
    }
    assert.deepEqual(broker.errors, [], "no error lines in the broker's log");
  },
});

// ---- the subscription limit --------------------------------------------------------------------------------

for (const version of VERSIONS) {
  const failure = version === 5 ? 0x97 : 0x80;
  Deno.test(`${v(version)}: a 1 MB SUBSCRIBE of 100,000 filters over maxSubscriptionsPerClient gets per-filter 0x${failure.toString(16)} quickly`, async () => {
    await withBroker({}, async ({ connect }) => {
      const greedy = await connect({ version, clientId: "greedy" });
      const other = await connect({ version: 4, clientId: "other" });
      const filters = Array.from({ length: 100_000 }, (_, i) => `a/${i}`);
      const bytes = largeSubscribe(version, 1, filters);
      const started = performance.now();
      await greedy.send(bytes);
      // Another client pings all along: how long is the broker held by the one packet?
      let worstPing = 0;
      let answered = false;
      const pinging = (async () => {
        while (!answered) {
          const pinged = performance.now();
          await other.barrier("another client is answered meanwhile");
          worstPing = Math.max(worstPing, performance.now() - pinged);
        }
      })();
      const suback = await greedy.next("SUBACK");
      const elapsed = performance.now() - started;
      answered = true;
      await pinging;
      const codes = suback.subarray(suback.length - filters.length);
      const granted = codes.filter((c) => c === 0).length;
      const refused = codes.filter((c) => c === failure).length;
      console.log(
        `  ${v(version)}: SUBSCRIBE of ${filters.length} filters (${mib(bytes.length)}): SUBACK after ` +
          `${
            elapsed.toFixed(0)
          } ms, ${granted} granted, ${refused} refused; another client's slowest PINGREQ ` +
          `meanwhile took ${worstPing.toFixed(0)} ms`,
      );
      assert.equal(granted, 10_000, "the default limit of 10,000");
      assert.equal(refused, 90_000);
      assert.ok(elapsed < 5_000, `SUBACK took ${elapsed} ms`);
      await greedy.send(publishPacket(version, { topic: "a/9999", payload: "ok" }));
      await greedy.expect(publishPacket(version, { topic: "a/9999", payload: "ok" }), "still usable");
      for (let round = 2; round <= 6; round++) {
        await greedy.send(subscribePacket(version, round, [[`b/${round}`, 1]]));
        await greedy.expect(subackPacket(version, round, [failure]), "still over the limit");
      }
      await greedy.disconnect();
      await other.disconnect();
    });
  });
}

// ---- clients that do not read ------------------------------------------------------------------------------

/** Counts whole MQTT frames arriving on a socket and the PUBLISH among them; cheap enough for throughput. */
class FrameCounter {
  publishes = 0;
  frames = 0;
  readonly done: Promise<void>;
  #need = 0;
  #header: number[] = [];

  constructor(conn: Deno.Conn) {
    this.done = this.#run(conn);
  }

  async #run(conn: Deno.Conn): Promise<void> {
    const buffer = new Uint8Array(256 * 1024);
    try {
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) return;
        this.#scan(buffer, n);
      }
    } catch {
      // closed
    }
  }

  #scan(buffer: Uint8Array, n: number): void {
    let i = 0;
    while (i < n) {
      if (this.#need > 0) {
        const take = Math.min(this.#need, n - i);
        this.#need -= take;
        i += take;
        continue;
      }
      this.#header.push(buffer[i++]!);
      const h = this.#header;
      if (h.length < 2 || (h[h.length - 1]! & 0x80) !== 0) continue;
      let length = 0;
      for (let k = h.length - 1; k >= 1; k--) length = length * 128 + (h[k]! & 0x7f);
      this.frames++;
      if ((h[0]! & 0xf0) === 0x30) this.publishes++;
      this.#need = length;
      this.#header = [];
    }
  }
}

/**
 * A publisher → subscriber pair on `topic` measured for `ms`: QoS 0 messages of 64 bytes with at most `window`
 * sent and not yet received (so the pair itself never becomes a slow consumer). Resolves messages per second.
 */
async function pairThroughput(port: number, topic: string, ms: number, window = 200): Promise<number> {
  const pub = await Deno.connect({ hostname: "127.0.0.1", port });
  const sub = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    for (const [conn, id] of [[pub, `${topic}-pub`], [sub, `${topic}-sub`]] as const) {
      conn.setNoDelay(true);
      await tryWrite(conn, connectPacket({ version: 4, clientId: id }));
      const connack = new Uint8Array(4);
      assert.equal(await conn.read(connack), 4, "CONNACK");
    }
    await tryWrite(sub, subscribePacket(4, 1, [[topic, 0]]));
    const suback = new Uint8Array(5);
    assert.equal(await sub.read(suback), 5, "SUBACK");
    const counter = new FrameCounter(sub);
    const one = publishPacket(4, { topic, payload: new Uint8Array(64) });
    const batch = concat(...Array.from({ length: 50 }, () => one));
    let sent = 0;
    const started = performance.now();
    while (performance.now() - started < ms) {
      if (sent - counter.publishes < window) {
        if (!(await tryWrite(pub, batch))) break;
        sent += 50;
      } else {
        await sleep(0);
      }
    }
    const elapsed = performance.now() - started;
    const received = counter.publishes;
    closeQuietly(sub);
    await counter.done;
    return received / (elapsed / 1000);
  } finally {
    closeQuietly(pub);
    closeQuietly(sub);
  }
}

/**
 * Publishes QoS 0 messages of `size` bytes to `topic` until `signal` aborts: as fast as the broker takes them
 * when `relentless`, else giving this process's other tasks a turn after each 64 KiB.
 */
async function flood(
  port: number,
  topic: string,
  size: number,
  signal: AbortSignal,
  relentless = false,
): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let sent = 0;
  try {
    await tryWrite(conn, connectPacket({ version: 4, clientId: `flood-${topic}` }));
    assert.equal(await conn.read(new Uint8Array(4)), 4, "CONNACK");
    const one = publishPacket(4, { topic, payload: new Uint8Array(size) });
    const batch = concat(...Array.from({ length: Math.max(1, (64 * 1024) / one.length) }, () => one));
    const perBatch = batch.length / one.length;
    while (!signal.aborted) {
      if (!(await tryWrite(conn, batch))) break;
      sent += perBatch;
      if (!relentless) await sleep(0); // let the measuring pair run in this process too
    }
    return sent;
  } finally {
    closeQuietly(conn);
  }
}

/**
 * Writes `batch` to `conn` until `limit` bytes are written or a write has hung for a second (the peer stopped
 * reading us); resolves the bytes written and whether it hung.
 */
async function writeUntilStuck(
  conn: Deno.Conn,
  batch: Uint8Array,
  limit: number,
  deadlineMs: number,
): Promise<{ written: number; stuck: boolean }> {
  let written = 0;
  const deadline = performance.now() + deadlineMs;
  while (performance.now() < deadline && written < limit) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<"stuck">((resolve) => timer = setTimeout(() => resolve("stuck"), 1000));
    const wrote = tryWrite(conn, batch).then((ok) => ok ? "ok" as const : "closed" as const);
    const outcome = await Promise.race([wrote, expired]);
    clearTimeout(timer);
    if (outcome !== "ok") return { written, stuck: outcome === "stuck" };
    written += batch.length;
  }
  return { written, stuck: false };
}

/** PINGREQ and a QoS 1 PUBLISH: 9 bytes that are owed 6 bytes of answer (PINGRESP, PUBACK). */
const ANSWERED = concat(PINGREQ, publishPacket(4, { topic: "t", qos: 1, id: 1 }));
const ANSWERED_BATCH = concat(...Array.from({ length: (64 * 1024) / ANSWERED.length }, () => ANSWERED));

Deno.test({
  name: `a publisher flooding QoS 0 as fast as TCP takes it does not hold other clients up${SKIP_PROC}`,
  ignore: SKIP_PROC !== "",
  fn: async () => {
    const broker = await startBrokerProcess();
    const probe = await connectTcp(broker.port, 4, "probe");
    try {
      const stop = new AbortController();
      const flooding = flood(broker.port, "nobody", 100, stop.signal, true);
      await sleep(200);
      const latencies: number[] = [];
      const until = performance.now() + 4000;
      while (performance.now() < until) {
        const pinged = performance.now();
        await probe.send(PINGREQ);
        const answer = await probe.nextOrEnd(30_000, "PINGRESP");
        assert.ok(answer !== undefined && answer[0] === 0xd0, "PINGRESP");
        latencies.push(performance.now() - pinged);
        await sleep(10);
      }
      stop.abort();
      const sent = await flooding;
      latencies.sort((a, b) => a - b);
      const median = latencies[latencies.length >> 1]!;
      const worst = latencies[latencies.length - 1]!;
      console.log(
        `  while ${sent} x 100-byte PUBLISH were flooded in: ${latencies.length} PINGREQ of another client, ` +
          `median ${median.toFixed(1)} ms, worst ${worst.toFixed(0)} ms`,
      );
      // Measured: median 2-5 ms, worst under 100 ms; a yield that lets no other socket in gives 660 / 850 ms.
      assert.ok(median < 50, `PINGREQ took ${median.toFixed(0)} ms (median)`);
      assert.ok(worst < 500, `a PINGREQ waited ${worst.toFixed(0)} ms`);
      await probe.disconnect();
    } finally {
      await probe.close();
      await broker.stop();
    }
    assert.deepEqual(broker.errors, [], "no error lines in the broker's log");
  },
});

Deno.test({
  name: `a subscriber that never reads neither grows the broker's memory nor slows other clients${SKIP_PROC}`,
  ignore: SKIP_PROC !== "",
  fn: async () => {
    const broker = await startBrokerProcess();
    const maxOutputBytes = 1_048_576; // the broker's default
    const phaseMs = 3000;
    let slow: Deno.Conn | undefined;
    let sampler: RssSampler | undefined;
    try {
      // Without the slow consumer: the same flood, which then goes nowhere.
      const quiet = new AbortController();
      const quietFlood = flood(broker.port, "busy", 1024, quiet.signal);
      const alone = await pairThroughput(broker.port, "pair-a", phaseMs);
      quiet.abort();
      const quietSent = await quietFlood;

      slow = await Deno.connect({ hostname: "127.0.0.1", port: broker.port });
      await tryWrite(slow, connectPacket({ version: 4, clientId: "slow" }));
      assert.equal(await slow.read(new Uint8Array(4)), 4, "CONNACK");
      await tryWrite(slow, subscribePacket(4, 1, [["busy", 0]]));
      assert.equal(await slow.read(new Uint8Array(5)), 5, "SUBACK");
      // From here on the slow consumer reads nothing.
      const start = await broker.rss();
      sampler = new RssSampler(broker.pid);
      const busy = new AbortController();
      const busyFlood = flood(broker.port, "busy", 1024, busy.signal);
      await sleep(1000); // the kernel's socket buffers fill; then the broker's output limit applies
      const withSlow = await pairThroughput(broker.port, "pair-b", phaseMs);
      busy.abort();
      const busySent = await busyFlood;
      const peak = await sampler.stop();
      const end = await broker.rss();
      const ratio = withSlow / alone;
      console.log(
        `  pair throughput: ${
          alone.toFixed(0)
        } msg/s beside a flood of ${quietSent} x 1 KiB with no subscriber, ` +
          `${
            withSlow.toFixed(0)
          } msg/s beside a flood of ${busySent} x 1 KiB to a subscriber that never reads ` +
          `(${(ratio * 100).toFixed(0)}%)`,
      );
      console.log(
        `  broker RSS: start ${mib(start)}, peak ${mib(peak)}, end ${mib(end)} ` +
          `(${mib(busySent * 1024)} published to the slow consumer; maxOutputBytes ${mib(maxOutputBytes)})`,
      );
      assert.ok(ratio >= 0.25, `the pair kept ${(ratio * 100).toFixed(0)}% of its throughput`);
      assert.ok(peak < start + maxOutputBytes + 64 * 1_048_576, `peak RSS ${mib(peak)} from ${mib(start)}`);
      assert.ok(busySent * 1024 > 4 * (peak - start), "the flood was large compared to what the broker held");
    } finally {
      await sampler?.stop(); // after a failure; a no-op otherwise
      if (slow !== undefined) closeQuietly(slow);
      await broker.stop();
    }
    assert.deepEqual(broker.errors, [], "no error lines in the broker's log");
  },
});

/**
 * Runs a fresh broker subprocess, connects one client that sends `bytes` of PINGREQ + QoS 1 PUBLISH (or, with
 * `bytes` undefined, as much as the broker takes until it stops reading, at most 64 MiB) and reads its answers
 * only when `reads`; resolves what was sent and the broker's RSS growth (peak - start).
 */
async function answeredTraffic(
  reads: boolean,
  bytes?: number,
): Promise<{ written: number; stuck: boolean; growth: number; start: number; peak: number }> {
  const broker = await startBrokerProcess();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: broker.port });
  let answers: FrameCounter | undefined;
  let sampler: RssSampler | undefined;
  try {
    await tryWrite(conn, connectPacket({ version: 4, clientId: reads ? "reader" : "deaf" }));
    assert.equal(await conn.read(new Uint8Array(4)), 4, "CONNACK");
    const start = await broker.rss();
    sampler = new RssSampler(broker.pid);
    if (reads) answers = new FrameCounter(conn);
    const { written, stuck } = await writeUntilStuck(conn, ANSWERED_BATCH, bytes ?? 64 * 1_048_576, 15_000);
    if (answers !== undefined) {
      const owed = (written / ANSWERED.length) * 2; // a PINGRESP and a PUBACK each
      const deadline = performance.now() + 15_000;
      while (answers.frames < owed && performance.now() < deadline) await sleep(50);
      assert.equal(answers.frames, owed, "the reading client got all its answers");
    } else {
      const other = await connectTcp(broker.port, 5, "other");
      await other.barrier("others are still served");
      await other.disconnect();
    }
    const peak = await sampler.stop();
    return { written, stuck, growth: peak - start, start, peak };
  } finally {
    await sampler?.stop(); // after a failure; a no-op otherwise
    closeQuietly(conn);
    await answers?.done;
    await broker.stop();
    assert.deepEqual(broker.errors, [], "no error lines in the broker's log");
  }
}

Deno.test({
  name:
    `a client that never reads the answers to its PINGREQ and QoS 1 PUBLISH does not grow the broker's memory${SKIP_PROC}`,
  ignore: SKIP_PROC !== "",
  fn: async () => {
    const deaf = await answeredTraffic(false);
    // The same traffic from a client that reads: what handling it costs the broker anyway (garbage, mostly).
    const control = await answeredTraffic(true, deaf.written);
    const owed = (deaf.written / ANSWERED.length) * 6;
    console.log(
      `  a client that never reads sent ${mib(deaf.written)} (owed ${mib(owed)} of PINGRESP/PUBACK); ` +
        `${deaf.stuck ? "then the broker stopped reading it" : "the broker kept reading"}. Broker RSS ` +
        `${mib(deaf.start)} -> peak ${mib(deaf.peak)} (+${
          mib(deaf.growth)
        }); for the same traffic from a client ` +
        `that reads: +${mib(control.growth)}`,
    );
    assert.ok(deaf.stuck, "the broker stopped reading the client that does not read");
    assert.ok(
      deaf.growth < control.growth + 32 * 1_048_576,
      `+${mib(deaf.growth)} against +${mib(control.growth)} for a reading client`,
    );
  },
});

Deno.test("a client that never reads the answers it is owed is not read past maxOutputBytes; others are served", async () => {
  const maxOutputBytes = 256 * 1024;
  await withBroker({ maxOutputBytes }, async ({ broker, port, connect }) => {
    const deaf = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await tryWrite(deaf, connectPacket({ version: 4, clientId: "deaf" }));
      assert.equal(await deaf.read(new Uint8Array(4)), 4, "CONNACK");
      const { written, stuck } = await writeUntilStuck(deaf, ANSWERED_BATCH, 16 * 1_048_576, 10_000);
      const held = (broker.session("deaf")?.link as Connection).pendingOutput;
      console.log(
        `  wrote ${mib(written)} of PINGREQ + QoS 1 PUBLISH without reading; ` +
          `${
            stuck ? "then the broker stopped reading" : "the broker kept reading"
          }; it holds ${held} bytes ` +
          `of answers (maxOutputBytes ${maxOutputBytes})`,
      );
      assert.ok(stuck, "the broker stopped reading the client");
      assert.ok(held > maxOutputBytes, `stopped with ${held} bytes held: not for its output`);
      // Past the limit, at most the answers to one read are added (a read takes up to 128 KiB: 87,381 answer bytes).
      assert.ok(held <= maxOutputBytes + 128 * 1024, `held ${held} bytes`);
      const other = await connect({ version: 5, clientId: "other" });
      await other.barrier("others are still served");
      await other.disconnect();
    } finally {
      closeQuietly(deaf);
    }
  });
});

// ---- connection churn --------------------------------------------------------------------------------------

Deno.test("connections that come and go with the longest keep alive leave nothing behind in the broker", async () => {
  await withBroker({}, async ({ broker, connect }) => {
    const churn = 3000;
    const started = performance.now();
    for (let i = 0; i < churn; i += 50) {
      await Promise.all(Array.from({ length: 50 }, async (_, k) => {
        const version: ProtocolVersion = k % 2 === 0 ? 4 : 5;
        const client = await connect({ version, clientId: `churn-${i + k}`, keepAlive: 65535 });
        await client.disconnect();
      }));
    }
    await waitFor(() => broker.connectionCount === 0, "every connection closed");
    const elapsed = performance.now() - started;
    const staying = await connect({ version: 4, clientId: "staying", keepAlive: 60 });
    console.log(
      `  ${churn} connections with keep alive 65535 s came and went in ${elapsed.toFixed(0)} ms: ` +
        `${broker.sessionCount} session(s) and ${broker.deadlines.size} deadline(s) left, 1 connection open`,
    );
    assert.equal(broker.sessionCount, 1);
    // A closed connection's keep-alive deadline (27 hours away) must not keep a slot: churn would grow it forever.
    assert.ok(broker.deadlines.size < 1100, `${broker.deadlines.size} deadlines held for 1 open connection`);
    await staying.disconnect();
  });
});

// ---- a storm of random bytes -------------------------------------------------------------------------------

/** Storm duration: `HOSTILE_SECONDS` when readable, else 20 s. */
function stormSeconds(): number {
  const permitted =
    Deno.permissions.querySync({ name: "env", variable: "HOSTILE_SECONDS" }).state === "granted";
  const value = permitted ? Deno.env.get("HOSTILE_SECONDS") : undefined;
  const seconds = value === undefined ? 20 : Number(value);
  assert.ok(
    Number.isFinite(seconds) && seconds > 0,
    `HOSTILE_SECONDS must be a positive number, got ${value}`,
  );
  return seconds;
}

/** One valid packet of a random kind with random fields, as a well-meaning client of `version` would send it. */
function randomPacket(random: () => number, version: ProtocolVersion): Uint8Array {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const text = (max: number) =>
    Array.from({ length: Math.floor(random() * max) }, () => pick(["a", "b", "/", "é", "x", "0"])).join("");
  const topic = `s/${text(12)}`;
  const qos = pick([0, 1, 2] as const) as QoS;
  const id = 1 + Math.floor(random() * 65535);
  switch (Math.floor(random() * 8)) {
    case 0:
      return connectPacket({
        version,
        clientId: `storm-${text(8)}`,
        keepAlive: Math.floor(random() * 100),
        ...(random() < 0.3 ? { will: { topic, payload: text(20), qos } } : {}),
        ...(version === 5 && random() < 0.5
          ? { properties: [P.sessionExpiry(Math.floor(random() * 10))] }
          : {}),
      });
    case 1:
    case 2:
      return publishPacket(version, {
        topic,
        payload: text(200),
        qos,
        retain: random() < 0.1,
        id,
        ...(version === 5 && random() < 0.3
          ? { properties: [P.topicAlias(1 + Math.floor(random() * 12))] }
          : {}),
      });
    case 3:
      return subscribePacket(version, id, [[pick([topic, "s/#", "s/+/x", "$share/g/s/#", "#"]), qos]]);
    case 4:
      return unsubscribePacket(version, id, [topic]);
    case 5:
      return pick([puback(version, id), pubrec(version, id)]);
    case 6:
      return version === 5 ? disconnectPacket(pick([0, 4, 0x80])) : PINGREQ;
    default:
      return PINGREQ;
  }
}

/** What one storm connection sends: random bytes, a valid CONNECT then garbage, or truncated valid packets. */
function stormChunks(random: () => number): Uint8Array[] {
  const version = ([3, 4, 5] as const)[Math.floor(random() * 3)]!;
  const garbage = (max: number) => {
    const bytes = new Uint8Array(1 + Math.floor(random() * max));
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
    return bytes;
  };
  const chunks: Uint8Array[] = [];
  const mode = random();
  if (mode < 0.3) {
    for (let i = 0, n = 1 + Math.floor(random() * 8); i < n; i++) chunks.push(garbage(4096));
  } else if (mode < 0.65) {
    chunks.push(connectPacket({ version, clientId: `storm-${Math.floor(random() * 1000)}` }));
    for (let i = 0, n = Math.floor(random() * 6); i < n; i++) chunks.push(randomPacket(random, version));
    chunks.push(garbage(2048));
  } else {
    chunks.push(connectPacket({ version, clientId: `trunc-${Math.floor(random() * 1000)}` }));
    for (let i = 0, n = 1 + Math.floor(random() * 6); i < n; i++) {
      const whole = randomPacket(random, version);
      chunks.push(random() < 0.5 ? whole : whole.subarray(0, Math.floor(random() * whole.length)));
    }
  }
  return chunks;
}

Deno.test({
  name:
    `random bytes from 20 sockets leave the broker serving and its memory back near the start${SKIP_PROC}`,
  ignore: SKIP_PROC !== "",
  fn: async () => {
    const seconds = stormSeconds();
    const seed = 0x4d515454; // "MQTT"
    const broker = await startBrokerProcess();
    const stats = { connections: 0, bytes: 0, closedByBroker: 0, received: 0 };
    let sampler: RssSampler | undefined;
    try {
      const start = await broker.rss();
      sampler = new RssSampler(broker.pid);
      const deadline = performance.now() + seconds * 1000;
      const worker = async (index: number) => {
        const random = mulberry32(seed + index);
        while (performance.now() < deadline) {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: broker.port });
          stats.connections++;
          const reading = discard(conn);
          let open = true;
          for (const chunk of stormChunks(random)) {
            if (!(await tryWrite(conn, chunk))) {
              open = false;
              break;
            }
            stats.bytes += chunk.length;
            if (random() < 0.3) await sleep(Math.floor(random() * 20));
          }
          // Sometimes leave the connection hanging (a truncated packet, no CONNECT) for a while.
          if (open && random() < 0.2) await sleep(Math.floor(random() * 300));
          closeQuietly(conn);
          stats.received += await reading;
          if (!open) stats.closedByBroker++;
        }
      };
      await Promise.all(Array.from({ length: 20 }, (_, i) => worker(i)));
      const peak = await sampler.stop();
      const after = await broker.rss();

      const subscriber = await connectTcp(broker.port, 5, "after-storm-sub");
      const publisher = await connectTcp(broker.port, 4, "after-storm-pub");
      await subscribe(subscriber, 1, [["after/storm", 1]]);
      await publisher.send(publishPacket(4, { topic: "after/storm", payload: "calm", qos: 1, id: 7 }));
      await publisher.expect(puback(4, 7));
      await subscriber.expect(publishPacket(5, { topic: "after/storm", payload: "calm", qos: 1, id: 1 }));
      await subscriber.send(puback(5, 1));
      await subscriber.disconnect();
      await publisher.disconnect();
      // V8 gives memory back once the process has been idle for a few seconds (its memory reducer): wait for
      // that, up to 15 s, rather than judge garbage not yet collected.
      const idleSince = performance.now();
      let end = await broker.rss();
      while (end >= start + 25 * 1_048_576 && performance.now() - idleSince < 15_000) {
        await sleep(1000);
        end = await broker.rss();
      }
      const idle = (performance.now() - idleSince) / 1000;
      console.log(
        `  ${seconds} s storm (seed ${seed}): ${stats.connections} connections, ${mib(stats.bytes)} sent, ` +
          `${mib(stats.received)} received, ${stats.closedByBroker} cut off by the broker mid-send`,
      );
      console.log(
        `  broker RSS start ${mib(start)}, peak ${mib(peak)}, right after ${mib(after)}, ` +
          `end ${mib(end)} (after ${idle.toFixed(0)} s idle)`,
      );
      assert.ok(end < start + 50 * 1_048_576, `end RSS ${mib(end)} from ${mib(start)}`);
    } finally {
      await sampler?.stop(); // after a failure; a no-op otherwise
      await broker.stop();
    }
    // Malformed input is logged at warn with its reason code; an error line means an internal error (a throw that
    // was not an MqttError) or a failing listener.
    assert.deepEqual(broker.errors, [], "no error lines in the broker's log");
  },
});
