/**
 * A scripted MQTT server on a loopback port for client tests: the test reads the client's packets and writes the
 * server's answers (or does not answer, to play a dead broker).
 *
 * @module
 */

import { decodePacket } from "../../lib/packet/decode.ts";
import { encode } from "../../lib/packet/encode.ts";
import { Framer } from "../../lib/codec/framer.ts";
import type { Packet } from "../../lib/packet/packet.ts";
import { packetName, type ProtocolVersion } from "../../lib/packet/packet_type.ts";
import type { Properties } from "../../lib/packet/properties.ts";
import type { Connector } from "../../lib/client/connector.ts";

/** A packet of one type. */
export type PacketOf<T extends Packet["type"]> = Extract<Packet, { type: T }>;

/** The server side of one client connection. */
export class FakeConnection {
  #conn: Deno.Conn;
  #framer = new Framer();
  #packets: Packet[] = [];
  #waiter: (() => void) | undefined;
  #ended = false;
  #closed = false;
  version: ProtocolVersion = 4;
  /** Settles when the read loop ended (the client closed, or {@linkcode close} was called). */
  readonly done: Promise<void>;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.done = this.#read();
  }

  /** Whether the client closed its side. */
  get ended(): boolean {
    return this.#ended;
  }

  /** While set, the server does not read (the client's writes back up). */
  #paused: PromiseWithResolvers<void> | undefined;

  /** Stops reading from the client. */
  pauseReading(): void {
    this.#paused ??= Promise.withResolvers<void>();
  }

  async #read(): Promise<void> {
    const buffer = new Uint8Array(65_536);
    try {
      for (;;) {
        if (this.#paused !== undefined) await this.#paused.promise;
        const n = await this.#conn.read(buffer);
        if (n === null) break;
        this.#framer.push(buffer.subarray(0, n));
        for (let frame = this.#framer.next(); frame !== undefined; frame = this.#framer.next()) {
          const packet = decodePacket(frame.header, frame.body.slice(), this.version);
          if (packet.type === 1) this.version = packet.protocolVersion;
          this.#packets.push(packet);
        }
        this.#wake();
      }
    } catch {
      // closed under us
    }
    this.#ended = true;
    this.#wake();
    this.close();
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }

  /** The next packet from the client, or undefined once it closed. */
  async next(): Promise<Packet | undefined> {
    while (this.#packets.length === 0) {
      if (this.#ended) return undefined;
      await new Promise<void>((resolve) => this.#waiter = resolve);
    }
    return this.#packets.shift();
  }

  /** The next packet, which must be of `type`. */
  async expect<T extends Packet["type"]>(type: T): Promise<PacketOf<T>> {
    const packet = await this.next();
    if (packet === undefined) throw new Error(`Expected ${packetName(type)}, the client closed`);
    if (packet.type !== type) {
      throw new Error(`Expected ${packetName(type)}, received ${packetName(packet.type)}`);
    }
    return packet as PacketOf<T>;
  }

  /** Reads CONNECT and answers CONNACK. */
  async accept(properties?: Properties, sessionPresent = false): Promise<PacketOf<1>> {
    const connect = await this.expect(1);
    await this.send({
      type: 2,
      sessionPresent,
      reasonCode: 0,
      ...(properties === undefined ? {} : { properties }),
    });
    return connect;
  }

  /** Sends a packet. */
  async send(packet: Packet): Promise<void> {
    const bytes = encode(packet, this.version);
    let offset = 0;
    while (offset < bytes.length) offset += await this.#conn.write(bytes.subarray(offset));
  }

  /** Closes the connection. */
  close(): void {
    this.#paused?.resolve();
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

/** A listener handing out {@linkcode FakeConnection}s. */
export class FakeServer {
  #listener: Deno.Listener;
  #connections: FakeConnection[] = [];
  #accepted: FakeConnection[] = [];
  #waiter: (() => void) | undefined;
  #loop: Promise<void>;
  #stopped = false;
  /** Connections accepted so far. */
  acceptedCount = 0;

  constructor() {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#loop = this.#acceptLoop();
  }

  /** The port. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** A connector for the client. */
  get connector(): Connector {
    return () => Deno.connect({ hostname: "127.0.0.1", port: this.port });
  }

  async #acceptLoop(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        const fake = new FakeConnection(conn);
        this.acceptedCount++;
        this.#connections.push(fake);
        this.#accepted.push(fake);
        const waiter = this.#waiter;
        this.#waiter = undefined;
        waiter?.();
      }
    } catch {
      // listener closed
    }
  }

  /** The next connection from a client. */
  async accept(): Promise<FakeConnection> {
    while (this.#accepted.length === 0) await new Promise<void>((resolve) => this.#waiter = resolve);
    return this.#accepted.shift()!;
  }

  /** Closes the listener and every connection, and waits for their loops. */
  async close(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#listener.close();
    }
    await this.#loop;
    for (const conn of this.#connections) conn.close();
    await Promise.all(this.#connections.map((conn) => conn.done));
  }
}

/** Resolves after `ms` real milliseconds (only for letting loopback I/O settle). */
export function tick(ms = 0): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` until it holds (real time, for I/O), failing after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 3000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await tick(5);
  }
}
