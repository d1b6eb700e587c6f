/**
 * Wire-level helpers for the broker tests: byte builders written independently of `lib/codec` (so the codec is
 * not its own oracle), a raw test client that sends bytes and expects exact bytes back, and
 * {@linkcode withBroker}, which runs a broker on port 0 and always closes it and every client.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Broker, type BrokerOptions } from "../../lib/broker/broker.ts";
import { decode } from "../../lib/packet/decode.ts";
import type { Packet } from "../../lib/packet/packet.ts";
import type { ProtocolVersion, QoS } from "../../lib/packet/packet_type.ts";
import { memoryPair } from "../../lib/transport/memory.ts";
import type { ByteStream } from "../../lib/transport/transport.ts";

/** The protocol versions most cases run for: 3.1.1 and 5.0. */
export const VERSIONS: readonly (4 | 5)[] = [4, 5];

/** How long a test waits for bytes that should come (real time; nothing here sleeps on success). */
export const WAIT_MS = 2000;

// ---- byte builders -----------------------------------------------------------------------------------------

/** A part of a packet: bytes, one byte value, or a list of byte values. */
export type Part = Uint8Array | number | readonly number[];

const encoder = new TextEncoder();

/** Concatenates parts into one buffer. */
export function concat(...parts: Part[]): Uint8Array {
  const arrays = parts.map((part) =>
    part instanceof Uint8Array ? part : Uint8Array.from(typeof part === "number" ? [part] : part)
  );
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

/** Bytes from hex text: `hex("20 02 00 00")`. */
export function hex(text: string): Uint8Array {
  const digits = text.replace(/\s+/g, "");
  assert.equal(digits.length % 2, 0, `odd hex string: ${text}`);
  return Uint8Array.from(
    { length: digits.length / 2 },
    (_, i) => parseInt(digits.slice(i * 2, i * 2 + 2), 16),
  );
}

/** Bytes as spaced hex, for messages. */
export function toHex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** UTF-8 bytes of `text`, no length prefix. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** A Two Byte Integer. */
export function u16(n: number): Uint8Array {
  return Uint8Array.of(n >>> 8, n & 0xff);
}

/** A Four Byte Integer. */
export function u32(n: number): Uint8Array {
  return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/** A Variable Byte Integer. */
export function varint(n: number): Uint8Array {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Uint8Array.from(out);
}

/** A UTF-8 Encoded String: two length bytes, then the text. */
export function str(text: string): Uint8Array {
  const bytes = utf8(text);
  return concat(u16(bytes.length), bytes);
}

/** Binary Data: two length bytes, then the bytes. */
export function bin(bytes: Uint8Array): Uint8Array {
  return concat(u16(bytes.length), bytes);
}

/** A whole packet: the first byte, the Remaining Length, then the body. */
export function packet(header: number, ...body: Part[]): Uint8Array {
  const content = concat(...body);
  return concat(header, varint(content.length), content);
}

/** A v5 property block: its length, then the properties. */
export function props(...properties: Part[]): Uint8Array {
  const content = concat(...properties);
  return concat(varint(content.length), content);
}

/** v5 properties by name (identifier byte + value), for {@linkcode props}. */
export const P = {
  payloadFormat: (n: number): Uint8Array => Uint8Array.of(0x01, n),
  messageExpiry: (s: number): Uint8Array => concat(0x02, u32(s)),
  subscriptionId: (n: number): Uint8Array => concat(0x0b, varint(n)),
  sessionExpiry: (s: number): Uint8Array => concat(0x11, u32(s)),
  requestProblemInformation: (n: number): Uint8Array => Uint8Array.of(0x17, n),
  willDelay: (s: number): Uint8Array => concat(0x18, u32(s)),
  receiveMaximum: (n: number): Uint8Array => concat(0x21, u16(n)),
  topicAliasMaximum: (n: number): Uint8Array => concat(0x22, u16(n)),
  topicAlias: (n: number): Uint8Array => concat(0x23, u16(n)),
  userProperty: (key: string, value: string): Uint8Array => concat(0x26, str(key), str(value)),
  maximumPacketSize: (n: number): Uint8Array => concat(0x27, u32(n)),
} as const;

/** A will carried by CONNECT. */
export interface WillSpec {
  readonly topic: string;
  readonly payload: string | Uint8Array;
  readonly qos?: QoS;
  readonly retain?: boolean;
  /** v5 will properties, without the length (e.g. `P.willDelay(5)`). */
  readonly properties?: readonly Part[];
}

/** What {@linkcode connectPacket} builds. */
export interface ConnectSpec {
  /** 3 = MQTT 3.1 (`MQIsdp`), 4 = 3.1.1, 5 = 5.0. */
  readonly version: ProtocolVersion;
  /** @default {""} */
  readonly clientId?: string;
  /** Clean Session / Clean Start. @default {true} */
  readonly clean?: boolean;
  /** Seconds. @default {0} */
  readonly keepAlive?: number;
  readonly will?: WillSpec;
  readonly username?: string;
  readonly password?: string;
  /** v5 CONNECT properties, without the length. */
  readonly properties?: readonly Part[];
  /** Overrides the protocol level byte (for unsupported-version tests). */
  readonly level?: number;
  /** Overrides the protocol name. */
  readonly protocolName?: string;
}

/** A CONNECT packet. */
export function connectPacket(spec: ConnectSpec): Uint8Array {
  const v5 = spec.version === 5;
  const will = spec.will;
  let flags = 0;
  if (spec.clean ?? true) flags |= 0x02;
  if (will !== undefined) flags |= 0x04 | ((will.qos ?? 0) << 3) | (will.retain ? 0x20 : 0);
  if (spec.password !== undefined) flags |= 0x40;
  if (spec.username !== undefined) flags |= 0x80;
  const name = spec.protocolName ?? (spec.version === 3 ? "MQIsdp" : "MQTT");
  const payload = will === undefined ? [] : [
    ...(v5 ? [props(...(will.properties ?? []))] : []),
    str(will.topic),
    bin(typeof will.payload === "string" ? utf8(will.payload) : will.payload),
  ];
  return packet(
    0x10,
    str(name),
    spec.level ?? spec.version,
    flags,
    u16(spec.keepAlive ?? 0),
    ...(v5 ? [props(...(spec.properties ?? []))] : []),
    str(spec.clientId ?? ""),
    ...payload,
    ...(spec.username === undefined ? [] : [str(spec.username)]),
    ...(spec.password === undefined ? [] : [str(spec.password)]),
  );
}

/** What {@linkcode publishPacket} builds. */
export interface PublishSpec {
  readonly topic: string;
  /** @default {""} */
  readonly payload?: string | Uint8Array;
  /** @default {0} */
  readonly qos?: QoS;
  readonly retain?: boolean;
  readonly dup?: boolean;
  /** Packet identifier, for QoS 1 and 2. */
  readonly id?: number;
  /** v5 PUBLISH properties, without the length. */
  readonly properties?: readonly Part[];
}

/** A PUBLISH packet, as a client sends it or as the broker should. */
export function publishPacket(version: ProtocolVersion, spec: PublishSpec): Uint8Array {
  const qos = spec.qos ?? 0;
  const header = 0x30 | (spec.dup ? 0x08 : 0) | (qos << 1) | (spec.retain ? 0x01 : 0);
  const payload = spec.payload ?? "";
  return packet(
    header,
    str(spec.topic),
    ...(qos > 0 ? [u16(spec.id ?? 1)] : []),
    ...(version === 5 ? [props(...(spec.properties ?? []))] : []),
    typeof payload === "string" ? utf8(payload) : payload,
  );
}

/** Subscription options byte: QoS, No Local, Retain As Published, Retain Handling (5.0 section 3.8.3.1). */
export function subOptions(
  qos: QoS,
  options: { noLocal?: boolean; retainAsPublished?: boolean; retainHandling?: 0 | 1 | 2 } = {},
): number {
  return qos | (options.noLocal ? 0x04 : 0) | (options.retainAsPublished ? 0x08 : 0) |
    ((options.retainHandling ?? 0) << 4);
}

/** A SUBSCRIBE packet; each entry is `[filter, options byte]` (or a QoS). */
export function subscribePacket(
  version: ProtocolVersion,
  id: number,
  subscriptions: readonly (readonly [string, number])[],
  properties: readonly Part[] = [],
): Uint8Array {
  return packet(
    0x82,
    u16(id),
    ...(version === 5 ? [props(...properties)] : []),
    ...subscriptions.flatMap(([filter, options]) => [str(filter), options]),
  );
}

/** A SUBACK as the broker should send it (v5 with no properties). */
export function subackPacket(version: ProtocolVersion, id: number, codes: readonly number[]): Uint8Array {
  return packet(0x90, u16(id), ...(version === 5 ? [0] : []), codes);
}

/** An UNSUBSCRIBE packet. */
export function unsubscribePacket(
  version: ProtocolVersion,
  id: number,
  filters: readonly string[],
): Uint8Array {
  return packet(0xa2, u16(id), ...(version === 5 ? [0] : []), ...filters.map(str));
}

/** An UNSUBACK as the broker should send it: v3 has no reason codes. */
export function unsubackPacket(version: ProtocolVersion, id: number, codes: readonly number[]): Uint8Array {
  return version === 5 ? packet(0xb0, u16(id), 0, codes) : packet(0xb0, u16(id));
}

/** PUBACK / PUBREC / PUBREL / PUBCOMP in their shortest form (v5 adds the reason code when it is not 0). */
function ack(header: number, version: ProtocolVersion, id: number, reason: number): Uint8Array {
  return version === 5 && reason !== 0 ? packet(header, u16(id), reason) : packet(header, u16(id));
}

/** A PUBACK. */
export const puback = (version: ProtocolVersion, id: number, reason = 0): Uint8Array =>
  ack(0x40, version, id, reason);
/** A PUBREC. */
export const pubrec = (version: ProtocolVersion, id: number, reason = 0): Uint8Array =>
  ack(0x50, version, id, reason);
/** A PUBREL (fixed header flags 0010). */
export const pubrel = (version: ProtocolVersion, id: number, reason = 0): Uint8Array =>
  ack(0x62, version, id, reason);
/** A PUBCOMP. */
export const pubcomp = (version: ProtocolVersion, id: number, reason = 0): Uint8Array =>
  ack(0x70, version, id, reason);

/** A successful v3 CONNACK. */
export const CONNACK_OK_V4: Uint8Array = hex("20 02 00 00");
/** A v3 CONNACK with Session Present. */
export const CONNACK_PRESENT_V4: Uint8Array = hex("20 02 01 00");
export const PINGREQ: Uint8Array = hex("c0 00");
export const PINGRESP: Uint8Array = hex("d0 00");
/** A normal DISCONNECT (v3, or v5 reason 0 in its shortest form). */
export const DISCONNECT: Uint8Array = hex("e0 00");

/** A v5 DISCONNECT with a reason code and optional properties (without their length). */
export function disconnectPacket(reason: number, properties: readonly Part[] = []): Uint8Array {
  return packet(0xe0, reason, props(...properties));
}

// ---- the raw client ----------------------------------------------------------------------------------------

/** A raw MQTT test client: sends bytes, receives whole frames, expects exact bytes back. */
export class WireClient {
  /** Protocol version used to decode what arrives. */
  version: ProtocolVersion;
  readonly #stream: ByteStream;
  readonly #frames: Uint8Array[] = [];
  #buffer: Uint8Array = new Uint8Array(1024);
  #length = 0;
  #ended = false;
  #endError: unknown;
  #wake: (() => void) | undefined;
  readonly #reading: Promise<void>;
  #closed = false;

  constructor(stream: ByteStream, version: ProtocolVersion) {
    this.#stream = stream;
    this.version = version;
    this.#reading = this.#readLoop();
  }

  async #readLoop(): Promise<void> {
    const chunk = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.#stream.read(chunk);
        if (n === null) break;
        this.#append(chunk.subarray(0, n));
        this.#split();
        this.#wake?.();
      }
    } catch (error) {
      // A reset by the broker counts as a close; our own close() ends the read with BadResource.
      if (!(error instanceof Deno.errors.BadResource) && !(error instanceof Deno.errors.Interrupted)) {
        this.#endError = error;
      }
    }
    this.#ended = true;
    this.#wake?.();
  }

  /** Appends to the receive buffer, doubling its capacity when full (big frames arrive in many reads). */
  #append(data: Uint8Array): void {
    const needed = this.#length + data.length;
    if (needed > this.#buffer.length) {
      const grown = new Uint8Array(Math.max(needed, this.#buffer.length * 2, 1024));
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
    }
    this.#buffer.set(data, this.#length);
    this.#length = needed;
  }

  /** Moves every whole frame out of the receive buffer, then compacts it once. */
  #split(): void {
    const b = this.#buffer.subarray(0, this.#length);
    let start = 0;
    for (;;) {
      let length = 0;
      let multiplier = 1;
      let i = start + 1;
      let complete = false;
      for (; i < b.length; i++) {
        length += (b[i]! & 0x7f) * multiplier;
        multiplier *= 128;
        if ((b[i]! & 0x80) === 0) {
          complete = true;
          break;
        }
        if (i - start === 4) {
          throw new Error(
            `broker sent a Remaining Length over 4 bytes: ${toHex(b.subarray(start, start + 5))}`,
          );
        }
      }
      const end = i + 1 + length;
      if (!complete || end > b.length) break;
      this.#frames.push(b.slice(start, end));
      start = end;
    }
    if (start > 0) {
      this.#buffer.copyWithin(0, start, this.#length);
      this.#length -= start;
    }
  }

  /** Sends the concatenated parts. */
  async send(...parts: Part[]): Promise<void> {
    const data = concat(...parts);
    let offset = 0;
    while (offset < data.length) offset += await this.#stream.write(data.subarray(offset));
  }

  /** Sends without failing when the broker already closed the connection. */
  async trySend(...parts: Part[]): Promise<void> {
    try {
      await this.send(...parts);
    } catch {
      // closed by the broker: what the test checks next
    }
  }

  /** The next whole frame, or undefined when the connection ended first. Fails after `timeout` ms. */
  async nextOrEnd(timeout = WAIT_MS, what = "a packet"): Promise<Uint8Array | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<"timeout">((resolve) =>
      timer = setTimeout(() => resolve("timeout"), timeout)
    );
    try {
      for (;;) {
        const frame = this.#frames.shift();
        if (frame !== undefined) return frame;
        if (this.#ended) return undefined;
        const woken = new Promise<void>((resolve) => this.#wake = resolve);
        if ((await Promise.race([woken, expired])) === "timeout") {
          throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
        }
      }
    } finally {
      this.#wake = undefined;
      clearTimeout(timer);
    }
  }

  /** The next whole frame; fails when the connection ends first. */
  async next(what = "a packet"): Promise<Uint8Array> {
    const frame = await this.nextOrEnd(WAIT_MS, what);
    if (frame === undefined) throw new Error(`connection closed while waiting for ${what}`);
    return frame;
  }

  /** Expects the next frame to be exactly `expected`. */
  async expect(expected: Uint8Array, what = "packet"): Promise<void> {
    const frame = await this.next(`${what} ${toHex(expected.subarray(0, 64))}`);
    if (frame.length === expected.length && frame.every((b, i) => b === expected[i])) return;
    assert.equal(toHex(frame), toHex(expected), `${what}: unexpected bytes`);
  }

  /** The next frame, decoded with this client's version. */
  async nextPacket(what = "a packet"): Promise<Packet> {
    return decode(await this.next(what), this.version);
  }

  /** Expects the next frame to be a packet of `type`; returns it decoded. */
  async expectPacket<T extends Packet["type"]>(
    type: T,
    what?: string,
  ): Promise<Extract<Packet, { type: T }>> {
    const bytes = await this.next(what ?? `packet type ${type}`);
    const decoded = decode(bytes, this.version);
    assert.equal(decoded.type, type, `${what ?? "packet"}: expected type ${type}, got ${toHex(bytes)}`);
    return decoded as Extract<Packet, { type: T }>;
  }

  /** Expects the broker to close the connection with nothing (more) sent. */
  async expectClosed(what = "close"): Promise<void> {
    const frame = await this.nextOrEnd(WAIT_MS, what);
    assert.equal(frame && toHex(frame), undefined, `expected ${what}, got a packet`);
  }

  /**
   * Expects the broker to end the connection for a protocol violation: v5 DISCONNECT with `reasonCode` then
   * close; v3 close with nothing sent.
   */
  async expectDisconnect(reasonCode: number, what = "DISCONNECT"): Promise<void> {
    if (this.version === 5) {
      const disconnect = await this.expectPacket(14, what);
      assert.equal(
        disconnect.reasonCode,
        reasonCode,
        `${what}: reason 0x${disconnect.reasonCode.toString(16)} (${disconnect.properties?.reasonString})`,
      );
    }
    await this.expectClosed(`close after ${what}`);
  }

  /**
   * Sends PINGREQ and expects PINGRESP next: everything the broker sent this client before it has been read,
   * and everything sent before it has been handled. Fails on any other packet, so it also proves "nothing else".
   */
  async barrier(what = "nothing before PINGRESP"): Promise<void> {
    await this.send(PINGREQ);
    await this.expect(PINGRESP, what);
  }

  /**
   * Sends PINGREQ and returns every packet that arrives before the PINGRESP, decoded (for unordered sets such as
   * `$SYS` updates or many retained messages).
   */
  async collect(): Promise<Packet[]> {
    await this.send(PINGREQ);
    const packets: Packet[] = [];
    for (;;) {
      const frame = await this.next("packets before PINGRESP");
      if (frame.length === 2 && frame[0] === 0xd0) return packets;
      packets.push(decode(frame, this.version));
    }
  }

  /** Frames received and not yet taken. */
  get buffered(): number {
    return this.#frames.length;
  }

  /** Whether the broker ended the connection. */
  get ended(): boolean {
    return this.#ended && this.#frames.length === 0;
  }

  /** Closes the connection (abruptly: no DISCONNECT) and waits for the reader to stop. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        this.#stream.close();
      } catch {
        // already closed
      }
    }
    await this.#reading;
  }

  /** Sends a normal DISCONNECT, then closes. */
  async disconnect(): Promise<void> {
    await this.trySend(DISCONNECT);
    await this.expectClosed("close after DISCONNECT");
    await this.close();
  }

  /** An error the reader hit (a reset), if any. */
  get error(): unknown {
    return this.#endError;
  }
}

// ---- the broker --------------------------------------------------------------------------------------------

/** What {@linkcode withBroker} hands the test. */
export interface BrokerContext {
  readonly broker: Broker;
  readonly port: number;
  /** A raw client over TCP (or in memory), not yet connected. Closed by withBroker. */
  open(version: ProtocolVersion, transport?: "tcp" | "memory"): Promise<WireClient>;
  /**
   * A client that sent CONNECT and got a CONNACK; returns the decoded CONNACK too. Fails unless accepted.
   * v3/v4 CONNACK bytes are checked exactly (`20 02 0S 00`).
   */
  connect(spec: ConnectSpec, expectPresent?: boolean): Promise<WireClient>;
}

/** Runs `fn` with a broker on 127.0.0.1:0 (`sysInterval: 0` unless given); always closes clients and broker. */
export async function withBroker(
  options: BrokerOptions,
  fn: (context: BrokerContext) => Promise<void>,
): Promise<void> {
  const broker = new Broker({ sysInterval: 0, ...options });
  const { port } = await broker.listen({ hostname: "127.0.0.1", port: 0 });
  const clients: WireClient[] = [];
  const served: Promise<void>[] = [];
  const open = async (version: ProtocolVersion, transport: "tcp" | "memory" = "tcp"): Promise<WireClient> => {
    let stream: ByteStream;
    if (transport === "tcp") {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.setNoDelay(true); // no Nagle delay between a test's back-to-back small writes
      stream = conn;
    } else {
      const [ours, theirs] = memoryPair();
      served.push(broker.handle(theirs, { remoteAddress: "memory", allowAnonymous: true }));
      stream = ours;
    }
    const client = new WireClient(stream, version);
    clients.push(client);
    return client;
  };
  const connect = async (spec: ConnectSpec, expectPresent = false): Promise<WireClient> => {
    const client = await open(spec.version);
    await client.send(connectPacket(spec));
    if (spec.version === 5) {
      const connack = await client.expectPacket(2, "CONNACK");
      assert.equal(connack.reasonCode, 0, `CONNACK refused: ${connack.properties?.reasonString}`);
      assert.equal(connack.sessionPresent, expectPresent, "CONNACK Session Present");
    } else {
      await client.expect(expectPresent ? CONNACK_PRESENT_V4 : CONNACK_OK_V4, "CONNACK");
    }
    return client;
  };
  try {
    await fn({ broker, port, open, connect });
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await broker.close();
    await Promise.all(served);
  }
}

/** Connects a v5 client and returns the decoded CONNACK (for property checks). */
export async function connectV5(
  context: BrokerContext,
  spec: Omit<ConnectSpec, "version">,
): Promise<{ client: WireClient; connack: Extract<Packet, { type: 2 }> }> {
  const client = await context.open(5);
  await client.send(connectPacket({ ...spec, version: 5 }));
  const connack = await client.expectPacket(2, "CONNACK");
  return { client, connack };
}

/** Subscribes and expects the SUBACK with `codes` (granted QoS by default). */
export async function subscribe(
  client: WireClient,
  id: number,
  subscriptions: readonly (readonly [string, number])[],
  codes?: readonly number[],
): Promise<void> {
  await client.send(subscribePacket(client.version, id, subscriptions));
  await client.expect(
    subackPacket(client.version, id, codes ?? subscriptions.map(([, options]) => options & 0x03)),
    "SUBACK",
  );
}

/** A name suffix for a protocol version: `"v4"`/`"v5"`. */
export function v(version: ProtocolVersion): string {
  return `v${version}`;
}

/** Waits (polling every ms, real time) until `condition` holds; for state the broker changes after a socket event. */
export async function waitFor(condition: () => boolean, what: string, timeout = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
