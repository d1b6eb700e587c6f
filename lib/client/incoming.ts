/**
 * The client's incoming QoS flows (section 4.3): a received message goes to the {@linkcode Inbox}, and its PUBACK
 * or PUBREC goes out only when an iterator takes it, so a slow reader paces the server. A QoS 2 message is handed
 * out once however often the server sends it again (section 4.3.3).
 *
 * @module
 */

import type { PublishPacket } from "../packet/publish.ts";
import type { PubrelPacket } from "../packet/pubrel.ts";
import { PACKET_TYPE } from "../packet/packet_type.ts";
import { REASON_CODE } from "../packet/reason_code.ts";
import { IncomingTopicAliases } from "../topic/topic_alias.ts";
import type { Connection } from "./connection.ts";
import type { Inbox, MqttMessage } from "./inbox.ts";

/** One QoS 1/2 message from its PUBLISH until its flow ends. */
interface IncomingEntry {
  readonly packetId: number;
  readonly qos: 1 | 2;
  /** queued: not yet taken; taken: taken while disconnected (QoS 2); pubrec_sent: waiting for PUBREL. */
  state: "queued" | "taken" | "pubrec_sent";
  /** The connection it (last) came in on: an acknowledgement never goes out on another. */
  conn: Connection;
}

/** The incoming side of a client's session. */
export class IncomingFlows {
  #aliases: IncomingTopicAliases;
  #inbox: Inbox;
  #current: () => Connection | undefined;
  #entries = new Map<number, IncomingEntry>();

  /**
   * `aliasMaximum` is the Topic Alias Maximum the client announced; `current` answers the connection the client
   * is connected on, if any (asked when an iterator takes a message, which is not tied to a packet).
   */
  constructor(aliasMaximum: number, inbox: Inbox, current: () => Connection | undefined) {
    this.#aliases = new IncomingTopicAliases(aliasMaximum);
    this.#inbox = inbox;
    this.#current = current;
  }

  /** QoS 1/2 messages not yet acknowledged. */
  get inflight(): number {
    let count = 0;
    for (const entry of this.#entries.values()) if (entry.state !== "taken") count++;
    return count;
  }

  /** A new connection: aliases start over [MQTT-3.3.2-7 (5.0)]; without a session, so do the flows. */
  connected(sessionPresent: boolean): void {
    this.#aliases.reset();
    if (!sessionPresent) this.#entries.clear();
  }

  /** Forgets everything (the client closed). */
  close(): void {
    this.#entries.clear();
  }

  /** A PUBLISH from the server. Throws an {@linkcode MqttError} for a bad Topic Alias (5.0 section 3.3.4). */
  onPublish(conn: Connection, packet: PublishPacket): void {
    const alias = packet.properties?.topicAlias;
    const topic = this.#aliases.resolve(packet.topic, alias);
    let properties = packet.properties;
    if (alias !== undefined) {
      const { topicAlias: _, ...rest } = properties!;
      properties = Object.keys(rest).length === 0 ? undefined : rest;
    }
    const message: MqttMessage = {
      topic,
      payload: packet.payload,
      qos: packet.qos,
      retain: packet.retain,
      dup: packet.dup,
      ...(packet.packetId === undefined ? {} : { packetId: packet.packetId }),
      ...(properties === undefined ? {} : { properties }),
    };
    if (packet.qos === 0) {
      this.#inbox.deliver(message);
      return;
    }
    const packetId = packet.packetId!;
    const known = this.#entries.get(packetId);
    if (known !== undefined) {
      // The server sent it again (after a reconnect): never hand it out twice, just acknowledge in the right step.
      known.conn = conn;
      if (known.state === "taken" || known.state === "pubrec_sent") {
        known.state = "pubrec_sent";
        conn.send({ type: PACKET_TYPE.PUBREC, packetId, reasonCode: 0 });
      }
      return;
    }
    const entry: IncomingEntry = { packetId, qos: packet.qos, state: "queued", conn };
    this.#entries.set(packetId, entry);
    this.#inbox.deliver(message, () => this.#onTaken(entry));
  }

  /** PUBREL ends a QoS 2 flow; PUBCOMP answers even an unknown id, so the server can forget it. */
  onPubrel(conn: Connection, packet: PubrelPacket): void {
    const packetId = packet.packetId;
    const entry = this.#entries.get(packetId);
    if (entry !== undefined && entry.state === "pubrec_sent") this.#entries.delete(packetId);
    conn.send({
      type: PACKET_TYPE.PUBCOMP,
      packetId,
      reasonCode: entry === undefined ? REASON_CODE.PacketIdentifierNotFound : 0,
    });
  }

  /** A QoS 1/2 message left an iterator: acknowledge it on the connection it came in on. */
  #onTaken(entry: IncomingEntry): void {
    if (this.#entries.get(entry.packetId) !== entry) return;
    const conn = this.#current();
    if (conn !== entry.conn) {
      // The connection it came on is gone; the server will send it again if it kept the session.
      if (entry.qos === 1) this.#entries.delete(entry.packetId);
      else entry.state = "taken";
      return;
    }
    if (entry.qos === 1) {
      this.#entries.delete(entry.packetId);
      conn.send({ type: PACKET_TYPE.PUBACK, packetId: entry.packetId, reasonCode: 0 });
    } else {
      entry.state = "pubrec_sent";
      conn.send({ type: PACKET_TYPE.PUBREC, packetId: entry.packetId, reasonCode: 0 });
    }
  }
}
