/**
 * Load scenarios of the cluster benchmark whose clients sit on different nodes: each takes the port of every
 * client's node, so the same code measures a single broker (the same port everywhere) and a cluster (node A,
 * B, C). The connections are `_load_client.ts`'s {@linkcode Link}s; the payload carries the same 16-byte stamp
 * (publisher index u32, sequence number u32, send time f64) so loss, duplicates and latency are told apart
 * without decoding.
 *
 * Every wait is bounded: a scenario that stops hearing from the brokers ends with what arrived.
 *
 * @module
 */

import { encode, Framer } from "../lib/mod.ts";
import {
  closeAll,
  errorText,
  firstError,
  type FlowResult,
  type LatencyResult,
  latencyResult,
  latencyWindow,
  Link,
  MAX_TRACKED,
  measure,
  noop,
  Outbox,
  payloadOffset,
  Progress,
  PUBLISH,
  PublishBatch,
  publishTemplate,
  putU32,
  qos0Result,
  RateGenerator,
  readF64,
  sleep,
  slowest,
  STAMP_BYTES,
  type Timing,
  totalReads,
  u32,
  WindowedPublisher,
  type WindowHook,
} from "./_load_client.ts";

/** Waits until `filter` routes from the publisher's node: a probe message on a side topic arrives. */
async function awaitRoute(
  publisher: Link,
  subscriber: Link,
  topic: string,
  arrived: () => boolean,
): Promise<void> {
  const probe = publishTemplate(topic, 0, STAMP_BYTES, 0xffffffff).bytes;
  const deadline = performance.now() + 10_000;
  while (!arrived()) {
    if (performance.now() > deadline || subscriber.error !== undefined) {
      throw new Error(`no route to ${topic} after 10 s`);
    }
    await publisher.write(probe);
    await sleep(5);
  }
}

/**
 * Handles a QoS 0 subscriber's PUBLISHes: a route probe (publisher index 0xffffffff) goes to `probe`, any other
 * message to `message` with its publisher index and its sequence number + 1.
 */
function countDeliveries(
  link: Link,
  progress: Progress,
  probe: (body: Uint8Array) => void,
  message: (publisher: number, next: number) => void,
): void {
  link.handle((header, body) => {
    if (header >> 4 !== PUBLISH) return;
    const at = payloadOffset(header, body);
    const publisher = u32(body, at);
    if (publisher === 0xffffffff) probe(body);
    else message(publisher, u32(body, at + 4) + 1);
  }, () => progress.notify());
}

/** Options for {@linkcode crossFanIn}. */
export interface CrossFanInOptions {
  /** The port of each publisher's node; their number is the number of publishers. */
  readonly publisherPorts: readonly number[];
  readonly subscriberPort: number;
  /** Prefix for topics and client ids, unique per run. */
  readonly tag: string;
  readonly timing: Timing;
  /** PUBLISH packets per write. @default {250} */
  readonly batch?: number;
  /** Messages a publisher may be ahead of what the subscriber saw. @default {2500} */
  readonly window?: number;
  /** @default {64} */
  readonly payloadSize?: number;
}

/**
 * Fan-in across nodes: QoS 0 publishers on their own topics, one subscriber to all of them, each publisher at
 * most `window` messages ahead of the highest sequence number the subscriber saw from it (as `fanIn` of
 * `_load_client.ts`). The window starts once every publisher's route reached its node.
 */
export async function crossFanIn(options: CrossFanInOptions): Promise<FlowResult> {
  const publishers = options.publisherPorts.length;
  const batchSize = options.batch ?? 250;
  const window = options.window ?? 2500;
  const prefix = `bench/${options.tag}/in`;
  const progress = new Progress();
  const links: Link[] = [];
  const seen = new Float64Array(publishers);
  const probed = new Uint8Array(publishers);
  const pubs: WindowedPublisher[] = [];
  let received = 0;
  try {
    const subscriber = await Link.open(options.subscriberPort, `${options.tag}s`);
    links.push(subscriber);
    await subscriber.subscribe(`${prefix}/+`, 0);
    countDeliveries(subscriber, progress, (body) => {
      probed[body[2 + prefix.length + 2]! - 48] = 1; // the probe topic is `${prefix}/p<digit>`
    }, (publisher, next) => {
      received++;
      if (publisher < publishers && next > seen[publisher]!) seen[publisher] = next;
    });
    const opened = await Promise.all(
      options.publisherPorts.map((port, i) => Link.open(port, `${options.tag}p${i}`)),
    );
    links.push(...opened);
    await Promise.all(
      opened.map((link, i) => awaitRoute(link, subscriber, `${prefix}/p${i}`, () => probed[i] === 1)),
    );
    opened.forEach((link, i) => {
      const batch = new PublishBatch(`${prefix}/${i}`, options.payloadSize ?? 64, batchSize, i);
      pubs.push(new WindowedPublisher(link, batch, window, progress, () => seen[i]!));
    });
    const totalSent = () => pubs.reduce((sum, pub) => sum + pub.sent, 0);
    const rate = await measure(
      options.timing,
      progress,
      () => received,
      () => received >= totalSent(),
      () => pubs.forEach((pub) => pub.stop()),
      () => subscriber.error !== undefined,
    );
    return qos0Result(rate, { sent: totalSent(), expected: totalSent(), received }, links);
  } finally {
    pubs.forEach((pub) => pub.stop());
    await closeAll(links, pubs.map((pub) => pub.done));
  }
}

/** Options for {@linkcode crossFanOut}. */
export interface CrossFanOutOptions {
  readonly publisherPort: number;
  /** The port of each subscriber's node; their number is the number of subscribers. */
  readonly subscriberPorts: readonly number[];
  readonly tag: string;
  readonly timing: Timing;
  /** @default {20} */
  readonly batch?: number;
  /** Messages the publisher may be ahead of the slowest subscriber. @default {200} */
  readonly window?: number;
  /** @default {64} */
  readonly payloadSize?: number;
}

/**
 * Fan-out across nodes: one QoS 0 publisher, subscribers of its topic on the given nodes; the rate counts
 * deliveries. The window starts once every subscriber received a probe (every node's route reached the
 * publisher's node).
 */
export async function crossFanOut(options: CrossFanOutOptions): Promise<FlowResult> {
  const subscribers = options.subscriberPorts.length;
  const batchSize = options.batch ?? 20;
  const window = options.window ?? 200;
  const topic = `bench/${options.tag}/out`;
  const progress = new Progress();
  const links: Link[] = [];
  const seen = new Float64Array(subscribers);
  const probed = new Uint8Array(subscribers);
  let received = 0;
  let pub: WindowedPublisher | undefined;
  try {
    const subs = await Promise.all(
      options.subscriberPorts.map(async (port, i) => {
        const link = await Link.open(port, `${options.tag}s${i}`);
        links.push(link);
        await link.subscribe(topic, 0);
        countDeliveries(link, progress, () => probed[i] = 1, (_publisher, next) => {
          received++;
          if (next > seen[i]!) seen[i] = next;
        });
        return link;
      }),
    );
    const publisher = await Link.open(options.publisherPort, `${options.tag}p`);
    links.push(publisher);
    await awaitRoute(publisher, subs[0]!, topic, () => probed.every((p) => p === 1));
    const batch = new PublishBatch(topic, options.payloadSize ?? 64, batchSize, 0);
    const publishing = pub = new WindowedPublisher(publisher, batch, window, progress, () => slowest(seen));
    const rate = await measure(
      options.timing,
      progress,
      () => received,
      () => received >= publishing.sent * subscribers,
      () => publishing.stop(),
      () => subs.some((link) => link.error !== undefined),
    );
    return qos0Result(
      rate,
      { sent: publishing.sent, expected: publishing.sent * subscribers, received },
      links,
    );
  } finally {
    pub?.stop();
    await closeAll(links, pub === undefined ? [] : [pub.done]);
  }
}

/** Options for {@linkcode crossQoS}. */
export interface CrossQoSOptions {
  readonly publisherPort: number;
  readonly subscriberPort: number;
  readonly tag: string;
  readonly timing: Timing;
  readonly qos: 1 | 2;
  /** Unacknowledged messages the publisher keeps in flight. @default {100} */
  readonly inflight?: number;
  /** @default {64} */
  readonly payloadSize?: number;
}

/**
 * QoS 1 or 2 end to end across nodes (as `qosEndToEnd` of `_load_client.ts`): the publisher keeps `inflight`
 * messages unacknowledged, the subscriber acknowledges everything; a message counts when both its
 * acknowledgement and its delivery were seen. Every sequence number is tracked: loss and duplicates are exact.
 */
export async function crossQoS(options: CrossQoSOptions): Promise<FlowResult> {
  const { qos } = options;
  const inflight = options.inflight ?? 100;
  const topic = `bench/${options.tag}/q${qos}`;
  const progress = new Progress();
  const links: Link[] = [];
  const seenBits = new Uint8Array(MAX_TRACKED >> 3);
  let received = 0;
  let duplicates = 0;
  let probed = false;
  let acked = 0;
  let published = 0;
  let running = true;
  try {
    const subscriber = await Link.open(options.subscriberPort, `${options.tag}s`);
    links.push(subscriber);
    await subscriber.subscribe(`${topic}/+`, qos);
    const subOut = new Outbox();
    subscriber.handle((header, body) => {
      const type = header >> 4;
      if (type === PUBLISH) {
        const at = payloadOffset(header, body);
        if ((header & 0x06) !== 0) subOut.ack(qos === 1 ? 0x40 : 0x50, (body[at - 2]! << 8) | body[at - 1]!);
        if (u32(body, at) === 0xffffffff) {
          probed = true;
          return;
        }
        const seq = u32(body, at + 4);
        if (seq < MAX_TRACKED) {
          const mask = 1 << (seq & 7);
          if ((seenBits[seq >> 3]! & mask) !== 0) duplicates++;
          else {
            seenBits[seq >> 3] = seenBits[seq >> 3]! | mask;
            received++;
          }
        }
      } else if (header === 0x62) {
        subOut.ack(0x70, (body[0]! << 8) | body[1]!); // PUBREL → PUBCOMP
      }
    }, () => {
      const bytes = subOut.take();
      if (bytes !== undefined) subscriber.send(bytes);
      progress.notify();
    });
    const publisher = await Link.open(options.publisherPort, `${options.tag}p`);
    links.push(publisher);
    await awaitRoute(publisher, subscriber, `${topic}/probe`, () => probed);
    const template = publishTemplate(`${topic}/m`, qos, options.payloadSize ?? 64, 0);
    const pubOut = new Outbox();
    const emit = (packetId: number) => {
      if (!running || published >= MAX_TRACKED) return;
      const at = pubOut.copy(template.bytes);
      const buffer = pubOut.buffer;
      buffer[at + template.idOffset] = packetId >>> 8;
      buffer[at + template.idOffset + 1] = packetId & 0xff;
      putU32(buffer, at + template.stampOffset + 4, published++);
    };
    publisher.handle((header, body) => {
      const packetId = (body[0]! << 8) | body[1]!;
      if (header === 0x40 || header === 0x70) {
        acked++;
        emit(packetId);
      } else if (header === 0x50) {
        pubOut.ack(0x62, packetId);
      }
    }, () => {
      const bytes = pubOut.take();
      if (bytes !== undefined) publisher.send(bytes);
      progress.notify();
    });
    for (let id = 1; id <= inflight; id++) emit(id);
    publisher.send(pubOut.take()!);
    const rate = await measure(
      options.timing,
      progress,
      () => Math.min(acked, received),
      () => acked >= published && received >= published,
      () => running = false,
      () => links.some((link) => link.error !== undefined),
    );
    const error = firstError(links);
    return {
      rate,
      sent: published,
      expected: published,
      received,
      duplicates,
      acked,
      reads: totalReads(links),
      ...(error === undefined ? {} : { error }),
    };
  } finally {
    running = false;
    await closeAll(links, []);
  }
}

/** Options for {@linkcode crossLatency}. */
export interface CrossLatencyOptions {
  readonly publisherPort: number;
  readonly subscriberPort: number;
  readonly tag: string;
  readonly timing: Timing;
  /** Messages per second. @default {5000} */
  readonly rate?: number;
  /** @default {64} */
  readonly payloadSize?: number;
}

/**
 * Latency at a fixed rate across nodes: the publisher writes what is due every millisecond (at most 10 ms
 * worth), each message stamped with its send time; the subscriber takes the time its read completed. The
 * milliseconds come from a worker ({@linkcode RateGenerator}): with `setTimeout` they came every 2.1 ms, so the publisher wrote bursts of 12 messages at 5,000 msgs/s instead of 5, and each broker's
 * figure included handling a burst of 12 (bench/results/2026-12-07-s4-p.md).
 */
export async function crossLatency(options: CrossLatencyOptions): Promise<LatencyResult> {
  const rate = options.rate ?? 5000;
  const topic = `bench/${options.tag}/lat`;
  const links: Link[] = [];
  const samples: number[] = [];
  let recording = false;
  let probed = false;
  let received = 0;
  let generator: RateGenerator | undefined;
  try {
    const subscriber = await Link.open(options.subscriberPort, `${options.tag}s`);
    links.push(subscriber);
    await subscriber.subscribe(`${topic}/+`, 0);
    subscriber.handle((header, body) => {
      if (header >> 4 !== PUBLISH) return;
      const at = payloadOffset(header, body);
      if (u32(body, at) === 0xffffffff) {
        probed = true;
        return;
      }
      received++;
      if (recording) samples.push((subscriber.chunkTime - readF64(body, at + 8)) * 1000);
    });
    const publisher = await Link.open(options.publisherPort, `${options.tag}p`);
    links.push(publisher);
    await awaitRoute(publisher, subscriber, `${topic}/probe`, () => probed);
    generator = new RateGenerator(publisher, `${topic}/m`, rate, options.payloadSize ?? 64);
    const stop = () => generator?.stop();
    await latencyWindow(options.timing, (on) => recording = on, stop, () => received >= generator!.sent);
    return latencyResult(samples, generator.sent, received, links);
  } finally {
    generator?.stop();
    await closeAll(links, []);
  }
}

/** What {@linkcode routePropagation} measured. */
export interface RouteResult {
  /** Milliseconds from sending SUBSCRIBE on the subscriber's node to the first message published on the other. */
  readonly samplesMs: readonly number[];
  /** Probes whose first message never came within the deadline. */
  readonly missed: number;
  readonly error?: string;
}

/** Options for {@linkcode routePropagation}. */
export interface RouteOptions {
  readonly publisherPort: number;
  readonly subscriberPort: number;
  readonly tag: string;
  /** Subscriptions to time. @default {30} */
  readonly probes?: number;
  /** How long one probe may take, ms. @default {2000} */
  readonly deadlineMs?: number;
  readonly onWindow?: WindowHook;
}

/**
 * Route propagation: for each probe a fresh topic; the publisher (on its node) publishes to it every
 * millisecond while the subscriber (on another node) sends SUBSCRIBE; the sample is the time from SUBSCRIBE to
 * the first message (resolution about 1 ms, the publisher's period).
 */
export async function routePropagation(options: RouteOptions): Promise<RouteResult> {
  const probes = options.probes ?? 30;
  const deadlineMs = options.deadlineMs ?? 2000;
  const prefix = `bench/${options.tag}/route`;
  const links: Link[] = [];
  const samplesMs: number[] = [];
  let missed = 0;
  let current = -1;
  let arrivedAt = 0;
  try {
    const subscriber = await Link.open(options.subscriberPort, `${options.tag}s`);
    links.push(subscriber);
    subscriber.handle((header, body) => {
      if (header >> 4 !== PUBLISH || arrivedAt !== 0) return;
      const at = payloadOffset(header, body);
      if (u32(body, at + 4) === current) arrivedAt = subscriber.chunkTime;
    });
    const publisher = await Link.open(options.publisherPort, `${options.tag}p`);
    links.push(publisher);
    await options.onWindow?.("start");
    for (let probe = 0; probe < probes; probe++) {
      const message = publishTemplate(`${prefix}/${probe}`, 0, STAMP_BYTES, 0);
      putU32(message.bytes, message.stampOffset + 4, probe);
      current = probe;
      arrivedAt = 0;
      let publishing = true;
      const pump = (async () => {
        while (publishing) {
          await publisher.write(message.bytes);
          await sleep(1);
        }
      })().catch(noop);
      await sleep(5); // the publisher is publishing before the subscription exists
      const t0 = performance.now();
      await subscriber.subscribe(`${prefix}/${probe}`, 0);
      while (arrivedAt === 0 && performance.now() - t0 < deadlineMs && subscriber.error === undefined) {
        await sleep(1);
      }
      publishing = false;
      await pump;
      if (arrivedAt === 0) missed++;
      else samplesMs.push(arrivedAt - t0);
    }
    await options.onWindow?.("end");
    const error = firstError(links);
    return { samplesMs, missed, ...(error === undefined ? {} : { error }) };
  } finally {
    await closeAll(links, []);
  }
}

/** Options for {@linkcode persistentConnects}. */
export interface ConnectsOptions {
  readonly port: number;
  readonly tag: string;
  /** Connections to make. @default {1000} */
  readonly count?: number;
  /** Handshakes in progress at once. @default {50} */
  readonly concurrency?: number;
  /** Time for one CONNACK, ms. @default {10000} */
  readonly timeoutMs?: number;
  readonly onWindow?: WindowHook;
}

/** What {@linkcode persistentConnects} measured. */
export interface ConnectsResult {
  /** CONNECT→CONNACK completed per second. */
  readonly rate: number;
  readonly connected: number;
  readonly attempted: number;
  readonly error?: string;
}

/**
 * Connects with persistent sessions: `count` clients, each with its own id and Clean Session 0, connect (CONNECT,
 * CONNACK), then DISCONNECT and close, so the broker creates and keeps `count` sessions. The rate counts
 * completed handshakes over the whole run.
 */
export async function persistentConnects(options: ConnectsOptions): Promise<ConnectsResult> {
  const count = options.count ?? 1000;
  const concurrency = options.concurrency ?? 50;
  const timeoutMs = options.timeoutMs ?? 10_000;
  let next = 0;
  let connected = 0;
  let failures = 0;
  let firstFailure: string | undefined;
  const disconnect = Uint8Array.of(0xe0, 0);
  await options.onWindow?.("start");
  const start = performance.now();
  const worker = async () => {
    const buffer = new Uint8Array(64);
    while (next < count && failures < 20) {
      const i = next++;
      let conn: Deno.TcpConn | undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        conn = await Deno.connect({ hostname: "127.0.0.1", port: options.port });
        const c = conn;
        timer = setTimeout(() => c.close(), timeoutMs);
        const connect = encode(
          { type: 1, protocolVersion: 4, clientId: `${options.tag}-${i}`, cleanStart: false, keepAlive: 60 },
          4,
        );
        let offset = 0;
        while (offset < connect.length) offset += await conn.write(connect.subarray(offset));
        let have = 0;
        while (have < 4) {
          const n = await conn.read(buffer.subarray(have));
          if (n === null) throw new Error("the broker closed the connection before CONNACK");
          have += n;
        }
        if (buffer[0] !== 0x20 || buffer[3] !== 0) {
          throw new Error(`unexpected reply ${buffer[0]} ${buffer[1]} ${buffer[2]} ${buffer[3]} to CONNECT`);
        }
        connected++;
        await conn.write(disconnect);
      } catch (error) {
        failures++;
        firstFailure ??= errorText(error);
      } finally {
        clearTimeout(timer);
        try {
          conn?.close();
        } catch {
          // closed by the timeout
        }
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  await options.onWindow?.("end");
  return {
    rate: connected / seconds,
    connected,
    attempted: Math.min(next, count),
    ...(firstFailure === undefined ? {} : { error: firstFailure }),
  };
}

/** Options for {@linkcode takeover}. */
export interface TakeoverOptions {
  /** The node where the session lives and the publisher publishes. */
  readonly fromPort: number;
  /** The node the client reconnects to. */
  readonly toPort: number;
  readonly tag: string;
  /** Messages queued for the offline session, half QoS 1 and half QoS 2. @default {1000} */
  readonly queued?: number;
  /** Takeovers to time. @default {5} */
  readonly iterations?: number;
  readonly onWindow?: WindowHook;
}

/** What {@linkcode takeover} measured. */
export interface TakeoverResult {
  /** CONNECT to CONNACK on the new node, ms, one per iteration. */
  readonly connackMs: readonly number[];
  /** Time from CONNECT until every queued message arrived, ms, one per iteration that completed. */
  readonly drainMs: readonly number[];
  readonly queued: number;
  /** Messages (of all iterations) that never arrived. */
  readonly lost: number;
  /** QoS 2 messages delivered more than once (must be 0). */
  readonly qos2Duplicates: number;
  /** QoS 1 messages delivered more than once (allowed). */
  readonly qos1Duplicates: number;
  readonly error?: string;
}

/** A raw connection whose frames are handled from the first byte, CONNACK included. */
async function rawConnect(
  port: number,
  clientId: string,
  onFrame: (header: number, body: Uint8Array, conn: Deno.TcpConn) => void,
): Promise<{ conn: Deno.TcpConn; ended: Promise<void> }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const connect = encode({ type: 1, protocolVersion: 4, clientId, cleanStart: false, keepAlive: 60 }, 4);
  let offset = 0;
  while (offset < connect.length) offset += await conn.write(connect.subarray(offset));
  const ended = (async () => {
    const buffer = new Uint8Array(64 * 1024);
    const framer = new Framer();
    try {
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) break;
        framer.push(buffer.subarray(0, n));
        for (let frame = framer.next(); frame !== undefined; frame = framer.next()) {
          onFrame(frame.header, frame.body, conn);
        }
      }
    } catch {
      // closed by us
    }
  })();
  return { conn, ended };
}

/**
 * Takeover of an offline session with queued messages: client X (Clean Session 0) subscribes on the `from`
 * node at QoS 1 and QoS 2 and disconnects; a publisher on the same node publishes `queued` messages (half at
 * each QoS, all acknowledged) for X; then X connects to the `to` node. Timed: CONNECT to CONNACK; checked: every
 * message arrives, no QoS 2 message twice.
 */
export async function takeover(options: TakeoverOptions): Promise<TakeoverResult> {
  const queued = options.queued ?? 1000;
  const iterations = options.iterations ?? 5;
  const connackMs: number[] = [];
  const drainMs: number[] = [];
  let lost = 0;
  let qos1Duplicates = 0;
  let qos2Duplicates = 0;
  let firstError: string | undefined;
  const disconnect = Uint8Array.of(0xe0, 0);
  await options.onWindow?.("start");
  for (let round = 0; round < iterations; round++) {
    const clientId = `${options.tag}x${round}`;
    const prefix = `bench/${options.tag}/t${round}`;
    const links: Link[] = [];
    let conn: Deno.TcpConn | undefined;
    let ended: Promise<void> | undefined;
    try {
      const x = await Link.open(options.fromPort, clientId, { cleanSession: false });
      links.push(x);
      await x.subscribe(`${prefix}/1`, 1);
      await x.subscribe(`${prefix}/2`, 2);
      await x.write(disconnect);
      x.close();
      await x.ended;
      await publishAll(options.fromPort, `${options.tag}p${round}`, prefix, queued, links);

      const seen = [new Uint8Array(queued), new Uint8Array(queued)];
      let distinct = 0;
      let connackAt = 0;
      let doneAt = 0;
      const out = new Outbox();
      const t0 = performance.now();
      ({ conn, ended } = await rawConnect(options.toPort, clientId, (header, body, c) => {
        const type = header >> 4;
        if (type === 2) {
          connackAt = performance.now();
          if (body[1] !== 0) firstError ??= `CONNACK refused the takeover with return code ${body[1]}`;
        } else if (type === PUBLISH) {
          const qos = (header >> 1) & 3;
          const at = payloadOffset(header, body);
          const packetId = (body[at - 2]! << 8) | body[at - 1]!;
          out.ack(qos === 1 ? 0x40 : 0x50, packetId);
          const seq = u32(body, at + 4);
          const bits = seen[qos === 1 ? 0 : 1]!;
          if (seq < queued) {
            if (bits[seq] === 1) {
              if (qos === 2) qos2Duplicates++;
              else qos1Duplicates++;
            } else {
              bits[seq] = 1;
              if (++distinct === queued) doneAt = performance.now();
            }
          }
        } else if (header === 0x62) {
          out.ack(0x70, (body[0]! << 8) | body[1]!);
        }
        const bytes = out.take();
        if (bytes !== undefined) c.write(bytes).catch(noop);
      }));
      const deadline = performance.now() + 20_000;
      let last = -1;
      let lastChange = performance.now();
      while (distinct < queued && performance.now() < deadline) {
        await sleep(10);
        if (distinct !== last) {
          last = distinct;
          lastChange = performance.now();
        } else if (performance.now() - lastChange > 3000) break;
      }
      if (connackAt === 0) firstError ??= "no CONNACK for the takeover";
      else connackMs.push(connackAt - t0);
      if (doneAt !== 0) drainMs.push(doneAt - t0);
      lost += queued - distinct;
      await conn.write(disconnect).catch(noop);
    } catch (error) {
      firstError ??= errorText(error);
      lost += queued;
    } finally {
      try {
        conn?.close();
      } catch {
        // already closed
      }
      await ended;
      await closeAll(links, []);
    }
  }
  await options.onWindow?.("end");
  return {
    connackMs,
    drainMs,
    queued,
    lost,
    qos1Duplicates,
    qos2Duplicates,
    ...(firstError === undefined ? {} : { error: firstError }),
  };
}

/**
 * Publishes `count` messages: message n at QoS 1 to `${prefix}/1` when n is even, at QoS 2 to `${prefix}/2` when
 * odd, numbered n >> 1 within its QoS; 100 in flight; resolves when all are acknowledged (PUBACK, PUBCOMP).
 */
async function publishAll(
  port: number,
  clientId: string,
  prefix: string,
  count: number,
  links: Link[],
): Promise<void> {
  const publisher = await Link.open(port, clientId);
  links.push(publisher);
  const templates = [publishTemplate(`${prefix}/1`, 1, 64, 0), publishTemplate(`${prefix}/2`, 2, 64, 0)];
  const progress = new Progress();
  const out = new Outbox();
  let published = 0;
  let acked = 0;
  const emit = (packetId: number) => {
    if (published >= count) return;
    const template = templates[published & 1]!;
    const at = out.copy(template.bytes);
    out.buffer[at + template.idOffset] = packetId >>> 8;
    out.buffer[at + template.idOffset + 1] = packetId & 0xff;
    putU32(out.buffer, at + template.stampOffset + 4, published >> 1);
    published++;
  };
  publisher.handle((header, body) => {
    const packetId = (body[0]! << 8) | body[1]!;
    if (header === 0x40 || header === 0x70) {
      acked++;
      emit(packetId);
    } else if (header === 0x50) {
      out.ack(0x62, packetId);
    }
  }, () => {
    const bytes = out.take();
    if (bytes !== undefined) publisher.send(bytes);
    progress.notify();
  });
  for (let id = 1; id <= Math.min(100, count); id++) emit(id);
  publisher.send(out.take()!);
  const deadline = performance.now() + 30_000;
  while (acked < count && publisher.error === undefined) {
    if (performance.now() > deadline) {
      throw new Error(`only ${acked} of ${count} queued messages acknowledged`);
    }
    await progress.wait(100);
  }
  if (publisher.error !== undefined) throw new Error(publisher.error);
}
