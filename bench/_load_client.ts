/**
 * The load generator: MQTT 3.1.1 clients on raw `Deno.connect` sockets that must never be the bottleneck.
 * PUBLISH packets are encoded once and copied into batches (hundreds per write) where only the sequence number,
 * timestamp and packet identifier are patched; reads go into one reused buffer per connection through a
 * {@linkcode Framer}, and a received PUBLISH is counted from its header and the 8 payload bytes that identify it,
 * never fully decoded. Acknowledgements produced by one read are written back in one write.
 *
 * Every payload starts with the publisher's index (u32), the message's sequence number (u32) and the send time
 * (f64, `performance.now()`), so a subscriber can tell loss, duplicates and latency apart without decoding.
 *
 * Every wait is bounded: a scenario that stops hearing from the broker ends with what arrived.
 *
 * @module
 */

import { encode, Framer, publishPacketIdOffset, type QoS } from "../lib/mod.ts";

/** Called as a measured window starts and ends (CPU meters hook in here); awaited. */
export type WindowHook = (edge: "start" | "end") => void | Promise<void>;

/** Timing shared by the throughput scenarios, ms. */
export interface Timing {
  /** Load before measuring, not counted (connections warm up, JITs compile). */
  readonly warmupMs: number;
  /** The measured window. */
  readonly durationMs: number;
  /** After the window: how long to wait at most for messages still on their way. */
  readonly drainMs: number;
  /** Called as the measured window starts and ends. */
  readonly onWindow?: WindowHook;
}

/** What a throughput scenario measured. */
export interface FlowResult {
  /** Messages (or deliveries) per second over the measured window. */
  readonly rate: number;
  /** Messages published. */
  readonly sent: number;
  /** Deliveries expected: `sent` times the number of subscribers. */
  readonly expected: number;
  /** Deliveries received (distinct messages for QoS 1/2). */
  readonly received: number;
  /** Messages received more than once by the same subscriber. */
  readonly duplicates: number;
  /** QoS 1/2: messages the publisher saw acknowledged (PUBACK, PUBCOMP). */
  readonly acked: number;
  /** Reads the generator completed on all its connections (frames per read = deliveries / reads). */
  readonly reads: number;
  /** A connection the broker closed or broke, when one did. */
  readonly error?: string;
}

/** What the latency scenario measured. */
export interface LatencyResult {
  readonly p50Us: number;
  readonly p99Us: number;
  readonly samples: number;
  readonly sent: number;
  readonly received: number;
  readonly error?: string;
}

/** What the idle-connection scenario measured. */
export interface IdleResult {
  /** CONNECT→CONNACK completed per second. */
  readonly connectRate: number;
  readonly attempted: number;
  readonly connected: number;
  readonly rssBeforeKiB: number;
  readonly rssAfterKiB: number;
  /** (RSS after − RSS before) / connected. */
  readonly kibPerConnection: number;
  /** Broker CPU time (user + system) from the first CONNECT to the last CONNACK, per connection, µs. */
  readonly cpuPerConnectUs?: number;
  /** RSS once the first half of the connections is open (and settled), KiB. */
  readonly rssHalfKiB: number;
  /**
   * (RSS after − RSS at half) / the second half's connections: what one more idle connection costs once the
   * broker holds many, without the fixed costs of the first ones (compiled code, the young generation growing).
   */
  readonly kibPerConnectionMarginal: number;
  /** The first failure, when a connection failed. */
  readonly error?: string;
}

/** Bytes of the payload header: publisher index, sequence number, send time. */
export const STAMP_BYTES = 16;
/** Read buffer per connection; a pending read holds it, so the idle scenario uses raw sockets instead. */
const READ_BUFFER = 64 * 1024;
/** The most messages one QoS 1/2 subscriber may track (a bitmap of 2 MiB), which also bounds a run's count. */
export const MAX_TRACKED = 1 << 24;

export const PUBLISH = 3;
const CONNACK = 2;
const SUBACK = 9;

type FrameHandler = (header: number, body: Uint8Array) => void;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function noop(): void {}

export function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Wakes whoever waits for progress; waits are bounded by a timeout so a silent broker cannot hang a run. */
export class Progress {
  #waiters: (() => void)[] = [];

  notify(): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  wait(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** Offset of the payload in a PUBLISH body (MQTT 3.1.1: no properties). */
export function payloadOffset(header: number, body: Uint8Array): number {
  return 2 + ((body[0]! << 8) | body[1]!) + ((header & 0x06) === 0 ? 0 : 2);
}

export function u32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) |
    bytes[offset + 3]!) >>>
    0;
}

export function putU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = (value >>> 16) & 0xff;
  bytes[offset + 2] = (value >>> 8) & 0xff;
  bytes[offset + 3] = value & 0xff;
}

const f64Scratch = new DataView(new ArrayBuffer(8));
const f64Bytes = new Uint8Array(f64Scratch.buffer);

export function readF64(bytes: Uint8Array, offset: number): number {
  f64Bytes.set(bytes.subarray(offset, offset + 8));
  return f64Scratch.getFloat64(0);
}

/** One encoded PUBLISH and where its packet identifier and payload stamp sit. */
export interface PublishTemplate {
  readonly bytes: Uint8Array;
  /** Offset of the packet identifier (QoS 1/2 only). */
  readonly idOffset: number;
  /** Offset of the payload stamp. */
  readonly stampOffset: number;
}

export function publishTemplate(
  topic: string,
  qos: QoS,
  payloadSize: number,
  publisher: number,
  retain = false,
): PublishTemplate {
  const payload = new Uint8Array(Math.max(payloadSize, STAMP_BYTES));
  putU32(payload, 0, publisher);
  const bytes = qos === 0
    ? encode({ type: 3, topic, payload, qos, retain, dup: false }, 4)
    : encode({ type: 3, topic, payload, qos, retain, dup: false, packetId: 1 }, 4);
  const idOffset = qos === 0 ? -1 : publishPacketIdOffset(bytes);
  const stampOffset = bytes.length - payload.length;
  return { bytes, idOffset, stampOffset };
}

/** `count` copies of one QoS 0 PUBLISH in one buffer, numbered before each write. */
export class PublishBatch {
  readonly bytes: Uint8Array;
  readonly packetLength: number;
  readonly count: number;
  readonly #stampOffset: number;
  readonly #view: DataView;

  constructor(topic: string, payloadSize: number, count: number, publisher: number) {
    const template = publishTemplate(topic, 0, payloadSize, publisher);
    this.packetLength = template.bytes.length;
    this.count = count;
    this.#stampOffset = template.stampOffset;
    this.bytes = new Uint8Array(this.packetLength * count);
    for (let i = 0; i < count; i++) this.bytes.set(template.bytes, i * this.packetLength);
    this.#view = new DataView(this.bytes.buffer);
  }

  /** Numbers the first `count` packets from `firstSeq` and stamps them with `time`; returns their bytes. */
  prepare(firstSeq: number, count = this.count, time = 0): Uint8Array {
    for (let i = 0; i < count; i++) {
      const at = i * this.packetLength + this.#stampOffset;
      putU32(this.bytes, at + 4, firstSeq + i);
      if (time !== 0) this.#view.setFloat64(at + 8, time);
    }
    return this.bytes.subarray(0, count * this.packetLength);
  }
}

/** Acknowledgements and PUBLISH copies gathered while handling one read, written back at once. */
export class Outbox {
  #buffer = new Uint8Array(16 * 1024);
  #length = 0;

  #reserve(n: number): number {
    if (this.#length + n > this.#buffer.length) {
      const grown = new Uint8Array(Math.max(this.#buffer.length * 2, this.#length + n));
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
    }
    const at = this.#length;
    this.#length += n;
    return at;
  }

  /** A 4-byte acknowledgement (PUBACK 0x40, PUBREC 0x50, PUBREL 0x62, PUBCOMP 0x70). */
  ack(header: number, packetId: number): void {
    const at = this.#reserve(4);
    const b = this.#buffer;
    b[at] = header;
    b[at + 1] = 2;
    b[at + 2] = packetId >>> 8;
    b[at + 3] = packetId & 0xff;
  }

  /** Appends a copy of `template` and returns where it starts, for patching. */
  copy(template: Uint8Array): number {
    const at = this.#reserve(template.length);
    this.#buffer.set(template, at);
    return at;
  }

  get buffer(): Uint8Array {
    return this.#buffer;
  }

  /** The gathered bytes (a copy, so the outbox can fill again while they are written), or undefined. */
  take(): Uint8Array | undefined {
    if (this.#length === 0) return undefined;
    const bytes = this.#buffer.slice(0, this.#length);
    this.#length = 0;
    return bytes;
  }
}

/** Options for {@linkcode Link.open}. */
export interface LinkOptions {
  /**
   * How long CONNACK and SUBACK may take, ms.
   * @default {10000}
   */
  timeoutMs?: number;
  /**
   * Clean Session. With false the broker keeps the session (subscriptions, queued QoS 1/2 messages) after the
   * connection ends, and a broker with storage writes it there.
   * @default {true}
   */
  cleanSession?: boolean;
}

/**
 * One MQTT 3.1.1 client connection on a raw socket. Frames go to the handler set with {@linkcode Link.handle};
 * `onChunk` runs once after each read, where acknowledgements are flushed in one write.
 */
export class Link {
  readonly conn: Deno.TcpConn;
  /** `performance.now()` when the read being handled completed. */
  chunkTime = 0;
  /** Reads completed, for a frames-per-read figure. */
  reads = 0;
  /** Why the reader stopped, when it was not our own close. */
  error: string | undefined;
  /** Resolves when the reader has stopped. */
  readonly ended: Promise<void>;
  readonly #timeoutMs: number;
  #onFrame: FrameHandler = noop;
  #onChunk: () => void = noop;
  #waiter: { type: number; resolve: (body: Uint8Array) => void; reject: (error: Error) => void } | undefined;
  #writing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(conn: Deno.TcpConn, timeoutMs: number) {
    this.conn = conn;
    this.#timeoutMs = timeoutMs;
    this.ended = this.#readLoop();
  }

  /** Connects to 127.0.0.1:`port` as `clientId` and waits for a successful CONNACK. */
  static async open(port: number, clientId: string, options: LinkOptions = {}): Promise<Link> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    const link = new Link(conn, options.timeoutMs ?? 10_000);
    const cleanStart = options.cleanSession ?? true;
    try {
      const connack = await link.#request(
        encode({ type: 1, protocolVersion: 4, clientId, cleanStart, keepAlive: 60 }, 4),
        CONNACK,
      );
      if (connack[1] !== 0) throw new Error(`CONNACK refused ${clientId} with return code ${connack[1]}`);
    } catch (error) {
      link.close();
      throw error;
    }
    return link;
  }

  /** Subscribes to `filter` at `qos` and checks the SUBACK granted it. */
  async subscribe(filter: string, qos: QoS): Promise<void> {
    const suback = await this.#request(
      encode({
        type: 8,
        packetId: 1,
        subscriptions: [{ filter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
      }, 4),
      SUBACK,
    );
    if (suback[2] !== qos) throw new Error(`SUBACK for ${filter} granted ${suback[2]}, asked QoS ${qos}`);
  }

  /** Sets what to do with each frame and after each read. */
  handle(onFrame: FrameHandler, onChunk: () => void = noop): void {
    this.#onFrame = onFrame;
    this.#onChunk = onChunk;
  }

  /** Queues `bytes` behind earlier writes; the caller must not change them until the promise settles. */
  write(bytes: Uint8Array): Promise<void> {
    const written = this.#writing.then(() => this.#writeAll(bytes));
    this.#writing = written.catch(noop);
    return written;
  }

  /** Writes without waiting; a failure shows as the reader's error. */
  send(bytes: Uint8Array): void {
    this.write(bytes).catch(noop);
  }

  /** Closes the socket; pending reads and writes end. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // already closed by the reader
    }
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
  }

  async #request(bytes: Uint8Array, type: number): Promise<Uint8Array> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const reply = new Promise<Uint8Array>((resolve, reject) => {
      this.#waiter = { type, resolve, reject };
      timer = setTimeout(
        () => reject(new Error(`no reply of type ${type} within ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
    });
    try {
      await this.write(bytes);
      return await reply;
    } finally {
      clearTimeout(timer);
      this.#waiter = undefined;
    }
  }

  async #readLoop(): Promise<void> {
    const buffer = new Uint8Array(READ_BUFFER);
    const framer = new Framer();
    try {
      for (;;) {
        const n = await this.conn.read(buffer);
        if (n === null) {
          if (!this.#closed) this.error = "the broker closed the connection";
          break;
        }
        this.chunkTime = performance.now();
        this.reads++;
        framer.push(buffer.subarray(0, n));
        for (let frame = framer.next(); frame !== undefined; frame = framer.next()) {
          const waiter = this.#waiter;
          if (waiter !== undefined && frame.header >> 4 === waiter.type) {
            this.#waiter = undefined;
            waiter.resolve(frame.body.slice());
          } else {
            this.#onFrame(frame.header, frame.body);
          }
        }
        this.#onChunk();
      }
    } catch (error) {
      if (!this.#closed) this.error = errorText(error);
    } finally {
      this.#waiter?.reject(new Error(this.error ?? "connection closed"));
      this.#waiter = undefined;
      this.close();
    }
  }
}

/**
 * Drives the common phases of a throughput run: warm-up, the measured window (rate from `count()` differences),
 * then a drain until `settled()` or until nothing arrived for a quiet spell or the drain time ran out.
 */
export async function measure(
  timing: Timing,
  progress: Progress,
  count: () => number,
  settled: () => boolean,
  stop: () => void,
  failed: () => boolean,
): Promise<number> {
  await sleep(timing.warmupMs);
  await timing.onWindow?.("start");
  const c0 = count();
  const t0 = performance.now();
  await sleep(timing.durationMs);
  const c1 = count();
  const t1 = performance.now();
  await timing.onWindow?.("end");
  stop();
  const drainEnd = t1 + timing.drainMs;
  let last = count();
  let lastChange = performance.now();
  while (!settled() && !failed()) {
    const now = performance.now();
    if (now >= drainEnd || now - lastChange > QUIET_MS) break;
    await progress.wait(50);
    const c = count();
    if (c !== last) {
      last = c;
      lastChange = performance.now();
    }
  }
  return (c1 - c0) / ((t1 - t0) / 1000);
}

/** A drain gives up once nothing arrived for this long, ms. */
export const QUIET_MS = 1000;

/** Closes every link, then waits for their readers and the given tasks to end. */
export async function closeAll(links: readonly Link[], tasks: readonly Promise<unknown>[]): Promise<void> {
  for (const link of links) link.close();
  await Promise.allSettled([...tasks, ...links.map((link) => link.ended)]);
}

export function totalReads(links: readonly Link[]): number {
  return links.reduce((sum, link) => sum + link.reads, 0);
}

export function firstError(links: readonly Link[]): string | undefined {
  for (const link of links) if (link.error !== undefined) return link.error;
  return undefined;
}

/**
 * A QoS 0 publisher that writes its batch again and again until stopped, at most `window` messages ahead of
 * `seen()` (the highest sequence number its subscriber saw, or the slowest subscriber's), so that a flow
 * measures the rate a broker sustains rather than how much it can buffer.
 */
export class WindowedPublisher {
  /** Messages written so far. */
  sent = 0;
  /** Resolves once the publisher stopped (or its link failed). */
  readonly done: Promise<void>;
  #running = true;

  constructor(link: Link, batch: PublishBatch, window: number, progress: Progress, seen: () => number) {
    this.done = this.#run(link, batch, window, progress, seen).catch(noop);
  }

  stop(): void {
    this.#running = false;
  }

  async #run(link: Link, batch: PublishBatch, window: number, progress: Progress, seen: () => number) {
    while (this.#running && this.sent + batch.count <= MAX_TRACKED) {
      if (this.sent - seen() > window) {
        await progress.wait(100);
        continue;
      }
      const bytes = batch.prepare(this.sent);
      this.sent += batch.count;
      await link.write(bytes);
    }
  }
}

/** What a QoS 0 flow measured: `sent` messages, `expected` deliveries of which `received` came. */
export function qos0Result(
  rate: number,
  counts: { readonly sent: number; readonly expected: number; readonly received: number },
  links: readonly Link[],
): FlowResult {
  const error = firstError(links);
  return {
    rate,
    ...counts,
    duplicates: 0,
    acked: 0,
    reads: totalReads(links),
    ...(error === undefined ? {} : { error }),
  };
}

/** Options shared by the QoS 0 throughput scenarios. */
export interface QoS0Options {
  readonly port: number;
  /** Prefix for topics and client ids, unique per run (client ids stay under 23 characters). */
  readonly tag: string;
  readonly timing: Timing;
  /** @default {64} */
  readonly payloadSize?: number;
}

/** Options for {@linkcode fanIn}. */
export interface FanInOptions extends QoS0Options {
  /** @default {4} */
  readonly publishers?: number;
  /** PUBLISH packets per write. @default {250} */
  readonly batch?: number;
  /** Messages a publisher may have sent and not yet seen delivered. @default {2500} */
  readonly window?: number;
}

/**
 * Fan-in: `publishers` QoS 0 publishers on their own topics, one subscriber to all of them. Each publisher keeps
 * at most `window` messages between what it wrote and what the subscriber saw (the highest sequence number
 * seen, so a dropped message does not stall it), which measures the rate a broker sustains rather than how much
 * it can buffer.
 */
export async function fanIn(options: FanInOptions): Promise<FlowResult> {
  const publishers = options.publishers ?? 4;
  const batchSize = options.batch ?? 250;
  const window = options.window ?? 2500;
  const payloadSize = options.payloadSize ?? 64;
  const prefix = `bench/${options.tag}/in`;
  const progress = new Progress();
  const links: Link[] = [];
  const seen = new Float64Array(publishers);
  const pubs: WindowedPublisher[] = [];
  let received = 0;
  try {
    const subscriber = await Link.open(options.port, `${options.tag}s`);
    links.push(subscriber);
    await subscriber.subscribe(`${prefix}/+`, 0);
    subscriber.handle((header, body) => {
      if (header >> 4 !== PUBLISH) return;
      received++;
      const at = payloadOffset(header, body);
      const publisher = u32(body, at);
      const next = u32(body, at + 4) + 1;
      if (publisher < publishers && next > seen[publisher]!) seen[publisher] = next;
    }, () => progress.notify());
    const opened = await Promise.all(
      Array.from({ length: publishers }, (_, i) => Link.open(options.port, `${options.tag}p${i}`)),
    );
    links.push(...opened);
    opened.forEach((link, i) => {
      const batch = new PublishBatch(`${prefix}/${i}`, payloadSize, batchSize, i);
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

/** Options for {@linkcode fanOut}. */
export interface FanOutOptions extends QoS0Options {
  /** @default {100} */
  readonly subscribers?: number;
  /** PUBLISH packets per write. @default {20} */
  readonly batch?: number;
  /** Messages the publisher may be ahead of the slowest subscriber. @default {200} */
  readonly window?: number;
}

/**
 * Fan-out: one QoS 0 publisher, `subscribers` subscribers of its topic; the rate counts deliveries. The publisher
 * keeps at most `window` messages ahead of the slowest subscriber's highest sequence number seen.
 */
export async function fanOut(options: FanOutOptions): Promise<FlowResult> {
  const subscribers = options.subscribers ?? 100;
  const batchSize = options.batch ?? 20;
  const window = options.window ?? 200;
  const payloadSize = options.payloadSize ?? 64;
  const topic = `bench/${options.tag}/out`;
  const progress = new Progress();
  const links: Link[] = [];
  const seen = new Float64Array(subscribers);
  let received = 0;
  let pub: WindowedPublisher | undefined;
  try {
    const subs = await Promise.all(
      Array.from({ length: subscribers }, async (_, i) => {
        const link = await Link.open(options.port, `${options.tag}s${i}`);
        links.push(link);
        await link.subscribe(topic, 0);
        link.handle((header, body) => {
          if (header >> 4 !== PUBLISH) return;
          received++;
          const next = u32(body, payloadOffset(header, body) + 4) + 1;
          if (next > seen[i]!) seen[i] = next;
        }, () => progress.notify());
        return link;
      }),
    );
    const publisher = await Link.open(options.port, `${options.tag}p`);
    links.push(publisher);
    const batch = new PublishBatch(topic, payloadSize, batchSize, 0);
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

/** The lowest of `seen`: the slowest subscriber's highest sequence number + 1. */
export function slowest(seen: Float64Array): number {
  let min = Infinity;
  for (const value of seen) if (value < min) min = value;
  return min;
}

/** Options for {@linkcode qosEndToEnd}. */
export interface QoSEndToEndOptions {
  readonly port: number;
  readonly tag: string;
  readonly timing: Timing;
  readonly qos: 1 | 2;
  /** Unacknowledged messages the publisher keeps in flight. @default {100} */
  readonly inflight?: number;
  /** @default {64} */
  readonly payloadSize?: number;
  /**
   * Whether the subscriber's session outlives its connection (Clean Session 0, client id `${tag}s`), so a broker
   * with storage writes every message to it before the PUBLISH is acknowledged, and deletes it at the
   * subscriber's PUBACK. The session is discarded after the run. @default {false}
   */
  readonly persistentSubscriber?: boolean;
}

/**
 * QoS 1 or 2 end to end: one publisher keeps `inflight` messages unacknowledged (a new PUBLISH goes out for each
 * PUBACK or PUBCOMP, reusing its packet identifier), one subscriber at the same QoS acknowledges everything it
 * receives. A message is complete when the publisher saw it acknowledged and the subscriber received it; the
 * subscriber tracks every sequence number so missing and duplicated messages are counted exactly.
 */
export async function qosEndToEnd(options: QoSEndToEndOptions): Promise<FlowResult> {
  const { qos } = options;
  const inflight = options.inflight ?? 100;
  const persistent = options.persistentSubscriber ?? false;
  const topic = `bench/${options.tag}/q${qos}`;
  const progress = new Progress();
  const links: Link[] = [];
  const seenBits = new Uint8Array(MAX_TRACKED >> 3);
  let received = 0;
  let duplicates = 0;
  let wrongQoS = 0;
  let acked = 0;
  let published = 0;
  let running = true;
  try {
    const subscriber = await Link.open(options.port, `${options.tag}s`, { cleanSession: !persistent });
    links.push(subscriber);
    await subscriber.subscribe(topic, qos);
    const subOut = new Outbox();
    subscriber.handle((header, body) => {
      const type = header >> 4;
      if (type === PUBLISH) {
        const at = payloadOffset(header, body);
        if (((header >> 1) & 3) !== qos) {
          wrongQoS++;
          return;
        }
        const packetId = (body[at - 2]! << 8) | body[at - 1]!;
        const seq = u32(body, at + 4);
        if (seq < MAX_TRACKED) {
          const mask = 1 << (seq & 7);
          if ((seenBits[seq >> 3]! & mask) !== 0) duplicates++;
          else {
            seenBits[seq >> 3] = seenBits[seq >> 3]! | mask;
            received++;
          }
        }
        subOut.ack(qos === 1 ? 0x40 : 0x50, packetId);
      } else if (header === 0x62) {
        subOut.ack(0x70, (body[0]! << 8) | body[1]!); // PUBREL → PUBCOMP
      }
    }, () => {
      const bytes = subOut.take();
      if (bytes !== undefined) subscriber.send(bytes);
      progress.notify();
    });

    const publisher = await Link.open(options.port, `${options.tag}p`);
    links.push(publisher);
    const template = publishTemplate(topic, qos, options.payloadSize ?? 64, 0);
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
      if (header === 0x40 || header === 0x70) { // PUBACK, PUBCOMP: done; the identifier is free again
        acked++;
        emit(packetId);
      } else if (header === 0x50) { // PUBREC → PUBREL
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
    let error = firstError(links);
    if (wrongQoS > 0) error = `${wrongQoS} messages arrived at a QoS other than ${qos}`;
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
    if (persistent) await discardSession(options.port, `${options.tag}s`);
  }
}

/**
 * Ends a session kept by the broker by connecting once more with Clean Session 1, so that runs do not pile up
 * sessions (and their stored messages) in the broker under test.
 */
async function discardSession(port: number, clientId: string): Promise<void> {
  try {
    const link = await Link.open(port, clientId, { timeoutMs: 5000 });
    await closeAll([link], []);
  } catch {
    // the broker is gone; the run reports that
  }
}

/** Options for {@linkcode retainedPublish}. */
export interface RetainedOptions {
  readonly port: number;
  readonly tag: string;
  readonly timing: Timing;
  /** Topics the publisher cycles through, each keeping its latest message. @default {1000} */
  readonly topics?: number;
  /** Unacknowledged messages the publisher keeps in flight. @default {100} */
  readonly inflight?: number;
  /** @default {64} */
  readonly payloadSize?: number;
}

/**
 * Retained QoS 1 publishes: one publisher keeps `inflight` retained QoS 1 messages unacknowledged, cycling
 * through `topics` topics (message n goes to topic n mod `topics`), so the broker replaces a retained message
 * with every PUBLISH; the rate counts PUBACKs. After the drain a new subscriber to all the topics must receive,
 * for each topic, exactly the last message published to it: `expected` is the number of topics published to,
 * `received` those that held their last message.
 */
export async function retainedPublish(options: RetainedOptions): Promise<FlowResult> {
  const topics = options.topics ?? 1000;
  const inflight = options.inflight ?? 100;
  const digits = String(topics - 1).length;
  const prefix = `bench/${options.tag}/r`;
  const progress = new Progress();
  const links: Link[] = [];
  let acked = 0;
  let published = 0;
  let running = true;
  try {
    const publisher = await Link.open(options.port, `${options.tag}p`);
    links.push(publisher);
    // Same-length topic names, so every template has the packet identifier and stamp at the same offsets.
    const templates = Array.from(
      { length: topics },
      (_, i) =>
        publishTemplate(
          `${prefix}/${String(i).padStart(digits, "0")}`,
          1,
          options.payloadSize ?? 64,
          0,
          true,
        ),
    );
    const pubOut = new Outbox();
    const emit = (packetId: number) => {
      if (!running || published >= MAX_TRACKED) return;
      const template = templates[published % topics]!;
      const at = pubOut.copy(template.bytes);
      const buffer = pubOut.buffer;
      buffer[at + template.idOffset] = packetId >>> 8;
      buffer[at + template.idOffset + 1] = packetId & 0xff;
      putU32(buffer, at + template.stampOffset + 4, published++);
    };
    publisher.handle((header, body) => {
      if (header !== 0x40) return; // PUBACK: the identifier is free again
      acked++;
      emit((body[0]! << 8) | body[1]!);
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
      () => acked,
      () => acked >= published,
      () => running = false,
      () => publisher.error !== undefined,
    );

    // The check: each topic must hold the last message published to it.
    const lastSeq = (topic: number) => topic + topics * Math.floor((published - 1 - topic) / topics);
    const expected = Math.min(published, topics);
    const held = new Uint8Array(topics);
    let received = 0;
    let stale = 0;
    let duplicates = 0;
    const checker = await Link.open(options.port, `${options.tag}c`);
    links.push(checker);
    const checkOut = new Outbox();
    checker.handle((header, body) => {
      if (header >> 4 !== PUBLISH) return;
      const at = payloadOffset(header, body);
      if ((header & 0x06) !== 0) checkOut.ack(0x40, (body[at - 2]! << 8) | body[at - 1]!);
      const seq = u32(body, at + 4);
      // The topic's number, from the digits that end its name.
      const end = 2 + ((body[0]! << 8) | body[1]!);
      let topic = 0;
      for (let i = end - digits; i < end; i++) topic = topic * 10 + body[i]! - 48;
      if (topic >= topics || seq !== lastSeq(topic)) stale++;
      else if (held[topic] !== 0) duplicates++;
      else {
        held[topic] = 1;
        received++;
      }
    }, () => {
      const bytes = checkOut.take();
      if (bytes !== undefined) checker.send(bytes);
      progress.notify();
    });
    await checker.subscribe(`${prefix}/+`, 1);
    const deadline = performance.now() + options.timing.drainMs;
    const arrived = () => received + stale + duplicates;
    let last = -1;
    let lastChange = performance.now();
    while (arrived() < expected && checker.error === undefined) {
      const now = performance.now();
      if (now >= deadline || now - lastChange > QUIET_MS) break;
      await progress.wait(50);
      if (arrived() !== last) {
        last = arrived();
        lastChange = performance.now();
      }
    }
    let error = firstError(links);
    if (stale > 0) error = `${stale} retained messages were not the last one published to their topic`;
    return {
      rate,
      sent: published,
      expected,
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

/** Options for {@linkcode latency}. */
export interface LatencyOptions {
  readonly port: number;
  readonly tag: string;
  readonly timing: Timing;
  /** Messages per second. @default {5000} */
  readonly rate?: number;
  /** @default {64} */
  readonly payloadSize?: number;
}

/**
 * Latency at a fixed rate: one QoS 0 publisher ({@linkcode RateGenerator}) writes what is due every millisecond (about `rate`/1000 messages,
 * each stamped with the send time), one subscriber takes the time its read completed. Percentiles cover the
 * measured window only.
 */
export async function latency(options: LatencyOptions): Promise<LatencyResult> {
  const rate = options.rate ?? 5000;
  const topic = `bench/${options.tag}/lat`;
  const links: Link[] = [];
  const samples: number[] = [];
  let recording = false;
  let received = 0;
  let generator: RateGenerator | undefined;
  try {
    const subscriber = await Link.open(options.port, `${options.tag}s`);
    links.push(subscriber);
    await subscriber.subscribe(topic, 0);
    subscriber.handle((header, body) => {
      if (header >> 4 !== PUBLISH) return;
      received++;
      if (recording) {
        const at = payloadOffset(header, body);
        samples.push((subscriber.chunkTime - readF64(body, at + 8)) * 1000);
      }
    });
    const publisher = await Link.open(options.port, `${options.tag}p`);
    links.push(publisher);
    generator = new RateGenerator(publisher, topic, rate, options.payloadSize ?? 64);
    const stop = () => generator?.stop();
    await latencyWindow(options.timing, (on) => recording = on, stop, () => received >= generator!.sent);
    return latencyResult(samples, generator.sent, received, links);
  } finally {
    generator?.stop();
    await closeAll(links, []);
  }
}

/**
 * Publishes QoS 0 at `rate` msgs/s: every millisecond it writes what is due (at most 10 ms worth), each message
 * stamped with its send time. The milliseconds come from a {@linkcode Ticker}: with `setTimeout` they came
 * every 2.1 ms, so the publisher wrote bursts of 12 messages at 5,000 msgs/s instead of 5, and each broker's
 * latency included handling a burst of 12 (bench/results/2026-12-07-s4-p.md).
 */
export class RateGenerator {
  /** Messages written so far. */
  sent = 0;
  readonly #ticker: Ticker;

  constructor(publisher: Link, topic: string, rate: number, payloadSize: number) {
    const perTickMax = Math.max(1, Math.ceil(rate / 100));
    const batch = new PublishBatch(topic, payloadSize, perTickMax, 0);
    const start = performance.now();
    let writing = false; // the batch's bytes are being written: not to be prepared again until then
    this.#ticker = new Ticker(1, () => {
      if (writing) return;
      const due = Math.min(perTickMax, Math.floor(((performance.now() - start) * rate) / 1000) - this.sent);
      if (due <= 0) return;
      const bytes = batch.prepare(this.sent, due, performance.now());
      this.sent += due;
      writing = true;
      publisher.write(bytes).then(() => writing = false, noop);
    });
  }

  stop(): void {
    this.#ticker.stop();
  }
}

/**
 * Calls `onTick` every `periodMs` from a worker that sleeps in `Atomics.wait`, whose timeout is precise to tens
 * of microseconds; the timers of the main thread fire every 2.1 ms at the least (`setTimeout(f, 1)` and
 * `setTimeout(f, 0)` alike, Deno 2.9.6 on the test machine).
 */
class Ticker {
  readonly #worker: Worker;
  readonly #stop = new Int32Array(new SharedArrayBuffer(4));

  constructor(periodMs: number, onTick: () => void) {
    const url = URL.createObjectURL(new Blob([TICKER], { type: "text/javascript" }));
    this.#worker = new Worker(url, { type: "module" });
    URL.revokeObjectURL(url);
    this.#worker.onmessage = onTick;
    this.#worker.postMessage({ stop: this.#stop.buffer, periodMs });
  }

  stop(): void {
    Atomics.store(this.#stop, 0, 1);
    this.#worker.terminate();
  }
}

/** The worker of {@linkcode Ticker}: one message per period, on a fixed schedule (a late tick is not made up). */
const TICKER = `self.onmessage = (event) => {
  const stop = new Int32Array(event.data.stop);
  const period = event.data.periodMs;
  let next = performance.now();
  while (Atomics.load(stop, 0) === 0) {
    next = Math.max(next + period, performance.now());
    Atomics.wait(stop, 0, 0, next - performance.now());
    if (Atomics.load(stop, 0) === 0) postMessage(0);
  }
};`;

/**
 * The timed part of a latency run: the warm-up, the measured window (samples are recorded while `record` is on),
 * then `stop` the publisher and wait until `drained()` or the drain time ran out.
 */
export async function latencyWindow(
  timing: Timing,
  record: (on: boolean) => void,
  stop: () => void,
  drained: () => boolean,
): Promise<void> {
  await sleep(timing.warmupMs);
  await timing.onWindow?.("start");
  record(true);
  await sleep(timing.durationMs);
  record(false);
  await timing.onWindow?.("end");
  stop();
  const drainEnd = performance.now() + Math.min(timing.drainMs, QUIET_MS);
  while (!drained() && performance.now() < drainEnd) await sleep(10);
}

/** What a latency run measured: p50 and p99 of `samples` (µs; sorted here) and the counts. */
export function latencyResult(
  samples: number[],
  sent: number,
  received: number,
  links: readonly Link[],
): LatencyResult {
  const sorted = samples.sort((a, b) => a - b);
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
  const error = firstError(links);
  return {
    p50Us: at(0.5) ?? 0,
    p99Us: at(0.99) ?? 0,
    samples: sorted.length,
    sent,
    received,
    ...(error === undefined ? {} : { error }),
  };
}

/** Options for {@linkcode idleConnections}. */
export interface IdleOptions {
  readonly port: number;
  /** Every port to spread the connections over, round robin. @default {[port]} */
  readonly ports?: readonly number[];
  readonly tag: string;
  /** Connections to open and leave idle. @default {5000} */
  readonly count?: number;
  /** Handshakes in progress at once. @default {100} */
  readonly concurrency?: number;
  /** Wait after the last CONNACK before reading RSS, ms. @default {500} */
  readonly settleMs?: number;
  /** Time for one CONNACK, ms. @default {5000} */
  readonly timeoutMs?: number;
  /** Reads the broker's RSS, KiB. */
  readonly rssKiB: () => Promise<number>;
  /** Reads the broker's CPU time so far, seconds; gives {@linkcode IdleResult.cpuPerConnectUs}. */
  readonly cpuSeconds?: () => Promise<number>;
  /** Called as the handshakes start and when the last one ended. */
  readonly onWindow?: WindowHook;
}

/**
 * Idle connections: opens `count` connections (CONNECT, wait for CONNACK, `concurrency` at a time) and leaves
 * them idle, then reads the broker's RSS; the same at half way, for the marginal cost. The sockets are raw and not read from after CONNACK, so the generator
 * holds no buffer per connection. After 20 failures in all the run stops opening more.
 */
export async function idleConnections(options: IdleOptions): Promise<IdleResult> {
  const count = options.count ?? 5000;
  const concurrency = options.concurrency ?? 100;
  const timeoutMs = options.timeoutMs ?? 5000;
  const ports = options.ports ?? [options.port];
  const conns: Deno.TcpConn[] = [];
  let next = 0;
  let failures = 0;
  let firstFailure: string | undefined;
  const fail = (error: unknown) => {
    failures++;
    firstFailure ??= errorText(error);
  };
  try {
    const rssBeforeKiB = await options.rssKiB();
    const cpuBefore = await options.cpuSeconds?.();
    await options.onWindow?.("start");
    // Two halves, with a pause between them for the RSS at half; the connect rate and CPU leave the pause out.
    let limit = Math.floor(count / 2);
    const worker = async () => {
      const buffer = new Uint8Array(64);
      while (next < limit && failures < 20) {
        const i = next++;
        let conn: Deno.TcpConn | undefined;
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
          conn = await Deno.connect({ hostname: "127.0.0.1", port: ports[i % ports.length]! });
          conns.push(conn);
          const c = conn;
          timer = setTimeout(() => c.close(), timeoutMs);
          const connect = encode(
            { type: 1, protocolVersion: 4, clientId: `${options.tag}-${i}`, cleanStart: true, keepAlive: 60 },
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
            throw new Error(
              `unexpected reply ${buffer[0]} ${buffer[1]} ${buffer[2]} ${buffer[3]} to CONNECT`,
            );
          }
        } catch (error) {
          fail(error);
          if (conn !== undefined) conns.splice(conns.indexOf(conn), 1);
          try {
            conn?.close();
          } catch {
            // closed by the timeout
          }
        } finally {
          clearTimeout(timer);
        }
      }
    };
    let start = performance.now();
    await Promise.all(Array.from({ length: concurrency }, worker));
    let seconds = (performance.now() - start) / 1000;
    const cpuHalf = await options.cpuSeconds?.();
    await sleep(options.settleMs ?? 500);
    const rssHalfKiB = await options.rssKiB();
    const connectedHalf = conns.length;
    const cpuResumed = await options.cpuSeconds?.();
    limit = count;
    start = performance.now();
    await Promise.all(Array.from({ length: concurrency }, worker));
    seconds += (performance.now() - start) / 1000;
    const cpuAfter = await options.cpuSeconds?.();
    await options.onWindow?.("end");
    const connected = conns.length;
    const cpuPerConnectUs = cpuBefore === undefined || cpuHalf === undefined || cpuResumed === undefined ||
        cpuAfter === undefined ||
        connected === 0
      ? undefined
      : ((cpuHalf - cpuBefore + cpuAfter - cpuResumed) * 1e6) / connected;
    await sleep(options.settleMs ?? 500);
    const rssAfterKiB = await options.rssKiB();
    return {
      connectRate: connected / seconds,
      attempted: Math.min(next, count),
      connected,
      rssBeforeKiB,
      rssAfterKiB,
      kibPerConnection: connected === 0 ? 0 : (rssAfterKiB - rssBeforeKiB) / connected,
      rssHalfKiB,
      kibPerConnectionMarginal: connected === connectedHalf
        ? 0
        : (rssAfterKiB - rssHalfKiB) / (connected - connectedHalf),
      ...(cpuPerConnectUs === undefined ? {} : { cpuPerConnectUs }),
      ...(firstFailure === undefined ? {} : { error: firstFailure }),
    };
  } finally {
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  }
}
