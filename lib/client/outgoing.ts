/**
 * The client's outgoing QoS flows (section 4.3): messages wait in a queue until a connection and a free slot in the
 * server's Receive Maximum take them; QoS 1 ends at PUBACK, QoS 2 at PUBCOMP, and each flow settles the promise
 * {@linkcode MqttClient.publish} returned. Flows outlive connections: a PUBLISH not acknowledged goes out again
 * with DUP, a PUBREL again after a resumed session [MQTT-4.4.0-1 (5.0)].
 *
 * The server's limits from CONNACK are all limits on what the client sends, so they live here too.
 *
 * @module
 */

import { MqttError } from "../mqtt_error.ts";
import { utf8Encode } from "../codec/utf8.ts";
import { encode } from "../packet/encode.ts";
import type { ConnackPacket } from "../packet/connack.ts";
import { PACKET_TYPE, type ProtocolVersion, type QoS } from "../packet/packet_type.ts";
import type { Properties } from "../packet/properties.ts";
import type { PubackPacket } from "../packet/puback.ts";
import type { PubcompPacket } from "../packet/pubcomp.ts";
import type { PubrecPacket } from "../packet/pubrec.ts";
import type { PublishPacket } from "../packet/publish.ts";
import { REASON_CODE, reasonName } from "../packet/reason_code.ts";
import { OutgoingTopicAliases } from "../topic/topic_alias.ts";
import { validateTopicName } from "../topic/topic.ts";
import type { Connection } from "./connection.ts";
import { CLIENT_DEFAULTS, type PublishOptions, type PublishResult, type ServerLimits } from "./options.ts";
import type { PacketIds } from "./packet_id.ts";
import { Fifo } from "./_fifo.ts";

/** One message from publish() until its flow ends. */
interface OutgoingPublish {
  readonly packet: PublishPacket;
  packetId: number | undefined;
  phase: "queued" | "publish_sent" | "pubrel_sent";
  dup: boolean;
  /** The PUBREC reason code of a QoS 2 flow. */
  received: PublishResult | undefined;
  readonly deferred: PromiseWithResolvers<PublishResult>;
  settled: boolean;
  cleanup: (() => void) | undefined;
}

/** The outgoing side of a client's session. */
export class OutgoingFlows {
  #version: ProtocolVersion;
  #ids: PacketIds;
  #useAliases: boolean;
  #queue = new Fifo<OutgoingPublish>();
  #inflight = new Map<number, OutgoingPublish>();
  #aliases = new OutgoingTopicAliases(0);
  #limits: ServerLimits | undefined;

  /** `ids` is shared with SUBSCRIBE and UNSUBSCRIBE; `useAliases` allows v5 Topic Aliases when the server does. */
  constructor(version: ProtocolVersion, ids: PacketIds, useAliases: boolean) {
    this.#version = version;
    this.#ids = ids;
    this.#useAliases = version === 5 && useAliases;
  }

  /** The server's limits from the last CONNACK. */
  get limits(): ServerLimits | undefined {
    return this.#limits;
  }

  /** QoS 1/2 messages waiting for their acknowledgement. */
  get inflight(): number {
    return this.#inflight.size;
  }

  /** Messages waiting for a connection or a free slot in the server's Receive Maximum. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Checks a message against the server's limits, queues it, and sends it on `conn` when there is room. Resolves
   * when its flow completes; an error reason code rejects with an {@linkcode MqttError}.
   */
  publish(
    conn: Connection | undefined,
    topic: string,
    payload: string | Uint8Array,
    options: PublishOptions,
  ): Promise<PublishResult> {
    validateTopicName(topic);
    const qos = options.qos ?? 0;
    if (qos !== 0 && qos !== 1 && qos !== 2) throw new TypeError(`QoS must be 0, 1 or 2, not ${qos}`);
    const retain = options.retain ?? false;
    const limits = this.#limits;
    if (limits !== undefined && qos > limits.maximumQoS) {
      throw new MqttError(
        REASON_CODE.QoSNotSupported,
        `Cannot publish at QoS ${qos}: the server's Maximum QoS is ${limits.maximumQoS} [MQTT-3.2.2-11 (5.0)]`,
      );
    }
    if (retain && limits !== undefined && !limits.retainAvailable) {
      throw new MqttError(
        REASON_CODE.RetainNotSupported,
        "Cannot publish a retained message: the server does not support retain [MQTT-3.2.2-14 (5.0)]",
      );
    }
    options.signal?.throwIfAborted();
    const packet: PublishPacket = {
      type: PACKET_TYPE.PUBLISH,
      topic,
      payload: typeof payload === "string" ? utf8Encode(payload) : payload,
      qos,
      retain,
      dup: false,
      ...(this.#version === 5 && options.properties !== undefined ? { properties: options.properties } : {}),
    };
    const maximum = limits?.maximumPacketSize;
    if (maximum !== undefined) {
      const size = encode(packet, this.#version).length;
      if (size > maximum) throw tooLarge(size, maximum);
    }
    const entry: OutgoingPublish = {
      packet,
      packetId: undefined,
      phase: "queued",
      dup: false,
      received: undefined,
      deferred: Promise.withResolvers<PublishResult>(),
      settled: false,
      cleanup: undefined,
    };
    const signal = options.signal;
    if (signal !== undefined) {
      const onAbort = (): void => {
        if (entry.phase === "queued" && this.#queue.remove(entry) && entry.packetId !== undefined) {
          this.#ids.release(entry.packetId);
        }
        this.#settle(entry, toError(signal.reason));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      entry.cleanup = () => signal.removeEventListener("abort", onAbort);
    }
    this.#queue.push(entry);
    if (conn !== undefined) this.pump(conn);
    return entry.deferred.promise;
  }

  /** A new connection was accepted: take the server's limits, forget topic aliases [MQTT-3.3.2-7 (5.0)]. */
  connected(connack: ConnackPacket): void {
    const props = connack.properties ?? {};
    this.#limits = {
      receiveMaximum: props.receiveMaximum ?? CLIENT_DEFAULTS.receiveMaximum,
      ...(props.maximumPacketSize === undefined ? {} : { maximumPacketSize: props.maximumPacketSize }),
      topicAliasMaximum: props.topicAliasMaximum ?? 0,
      maximumQoS: (props.maximumQoS ?? 2) as QoS,
      retainAvailable: props.retainAvailable !== 0,
    };
    this.#aliases.reset(this.#useAliases ? this.#limits.topicAliasMaximum : 0);
  }

  /**
   * Picks up the QoS 2 flows the server had received (PUBREC): releases them again on `conn`, or, when the server
   * kept no session, they are done. Queued messages go out on the next {@linkcode OutgoingFlows.pump}.
   */
  resume(conn: Connection, sessionPresent: boolean): void {
    for (const entry of [...this.#inflight.values()]) {
      if (entry.phase !== "pubrel_sent") continue;
      if (sessionPresent) {
        conn.send({ type: PACKET_TYPE.PUBREL, packetId: entry.packetId!, reasonCode: 0 });
      } else {
        this.#inflight.delete(entry.packetId!);
        this.#ids.release(entry.packetId!);
        this.#settle(entry, entry.received ?? { reasonCode: 0 });
      }
    }
  }

  /** The connection is gone: messages sent but not acknowledged go out again first, with DUP [MQTT-3.3.1-1 (5.0)]. */
  disconnected(): void {
    const again: OutgoingPublish[] = [];
    for (const entry of this.#inflight.values()) {
      if (entry.phase === "publish_sent") again.push(entry);
    }
    for (const entry of again) {
      this.#inflight.delete(entry.packetId!);
      entry.phase = "queued";
      entry.dup = true;
    }
    this.#queue.unshiftAll(again);
  }

  /** Ends every flow with `error` (the client closed). */
  close(error: Error): void {
    for (const entry of this.#queue.drain()) this.#settle(entry, error);
    for (const entry of this.#inflight.values()) this.#settle(entry, error);
    this.#inflight.clear();
  }

  /** Sends queued messages while the server's Receive Maximum leaves room [MQTT-4.9.0-2 (5.0)]. */
  pump(conn: Connection): void {
    const quota = this.#limits?.receiveMaximum ?? CLIENT_DEFAULTS.receiveMaximum;
    for (;;) {
      const entry = this.#queue.peek();
      if (entry === undefined) return;
      if (entry.packet.qos > 0) {
        if (this.#inflight.size >= quota) return;
        if (entry.packetId === undefined) {
          const id = this.#ids.allocate();
          if (id === undefined) return;
          entry.packetId = id;
        }
      }
      this.#queue.shift();
      this.#send(conn, entry);
    }
  }

  /** PUBACK ends a QoS 1 flow. */
  onPuback(conn: Connection, packet: PubackPacket): void {
    const entry = this.#inflight.get(packet.packetId);
    if (entry === undefined || entry.packet.qos !== 1) return; // a late ack from before a reconnect
    this.#complete(conn, entry, packet.reasonCode, packet.properties);
  }

  /** PUBREC: the server has the QoS 2 message; release it, or end the flow at an error code. */
  onPubrec(conn: Connection, packet: PubrecPacket): void {
    const { packetId, reasonCode, properties } = packet;
    const entry = this.#inflight.get(packetId);
    if (entry === undefined || entry.packet.qos !== 2) {
      // Not ours: release it anyway so the server can forget it (section 4.3.3).
      conn.send({ type: PACKET_TYPE.PUBREL, packetId, reasonCode: REASON_CODE.PacketIdentifierNotFound });
      return;
    }
    if (reasonCode >= 0x80) {
      this.#complete(conn, entry, reasonCode, properties); // the flow ends at an error PUBREC (section 4.3.3)
      return;
    }
    entry.phase = "pubrel_sent";
    entry.received = { reasonCode, ...(properties === undefined ? {} : { properties }) };
    conn.send({ type: PACKET_TYPE.PUBREL, packetId, reasonCode: 0 });
  }

  /** PUBCOMP ends a QoS 2 flow with the PUBREC's outcome. */
  onPubcomp(conn: Connection, packet: PubcompPacket): void {
    const entry = this.#inflight.get(packet.packetId);
    if (entry === undefined || entry.phase !== "pubrel_sent") return;
    const received = entry.received ?? { reasonCode: 0 };
    this.#complete(conn, entry, received.reasonCode, received.properties);
  }

  #send(conn: Connection, entry: OutgoingPublish): void {
    const base = entry.packet;
    const version = this.#version;
    let wire: PublishPacket = {
      ...base,
      dup: entry.dup,
      ...(entry.packetId === undefined ? {} : { packetId: entry.packetId }),
    };
    let bytes = encode(wire, version);
    const maximum = this.#limits?.maximumPacketSize;
    if (maximum !== undefined && bytes.length > maximum) {
      if (entry.packetId !== undefined) this.#ids.release(entry.packetId);
      this.#settle(entry, tooLarge(bytes.length, maximum));
      return;
    }
    // A resent message carries its topic in full: aliases do not outlive a connection [MQTT-3.3.2-7 (5.0)]. The
    // 5 bytes leave room for the property and both length fields to grow.
    if (!entry.dup && this.#aliases.max > 0 && (maximum === undefined || bytes.length + 5 <= maximum)) {
      const aliased = this.#aliases.resolve(base.topic);
      if (aliased.alias !== undefined) {
        wire = {
          ...wire,
          topic: aliased.topic,
          properties: { ...base.properties, topicAlias: aliased.alias },
        };
        bytes = encode(wire, version);
      }
    }
    conn.sendEncoded(wire, bytes);
    if (base.qos === 0) {
      conn.flushed().then((written) =>
        this.#settle(
          entry,
          written ? { reasonCode: 0 } : new Deno.errors.ConnectionReset(
            `The connection closed before the QoS 0 message to "${base.topic}" went out`,
          ),
        )
      );
      return;
    }
    entry.phase = "publish_sent";
    this.#inflight.set(entry.packetId!, entry);
  }

  #complete(
    conn: Connection,
    entry: OutgoingPublish,
    reasonCode: number,
    properties: Properties | undefined,
  ): void {
    this.#inflight.delete(entry.packetId!);
    this.#ids.release(entry.packetId!);
    if (reasonCode >= 0x80) {
      const reason = properties?.reasonString;
      this.#settle(
        entry,
        new MqttError(
          reasonCode,
          `The server refused the message to "${entry.packet.topic}": ${reasonName(reasonCode)}${
            reason === undefined ? "" : ` (${reason})`
          }`,
        ),
      );
    } else {
      this.#settle(entry, { reasonCode, ...(properties === undefined ? {} : { properties }) });
    }
    this.pump(conn);
  }

  #settle(entry: OutgoingPublish, outcome: PublishResult | Error): void {
    if (entry.settled) return;
    entry.settled = true;
    entry.cleanup?.();
    if (outcome instanceof Error) entry.deferred.reject(outcome);
    else entry.deferred.resolve(outcome);
  }
}

function tooLarge(size: number, maximum: number): MqttError {
  return new MqttError(
    REASON_CODE.PacketTooLarge,
    `The PUBLISH is ${size} bytes; the server's Maximum Packet Size is ${maximum} [MQTT-3.2.2-15 (5.0)]`,
  );
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
