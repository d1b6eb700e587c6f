/**
 * The seam between a session and the connection it is attached to: what the session writes its deliveries
 * through and reads the client's limits from. `Connection` implements it; tests use a fake.
 *
 * @module
 */

import type { ProtocolVersion } from "../packet/packet_type.ts";

/** What the session needs from the connection it is attached to. */
export interface SessionLink {
  /** The connection's protocol: messages are encoded for it. */
  readonly protocolVersion: ProtocolVersion;
  /** The client's Receive Maximum (v5), capped by the broker's inflight limit. */
  readonly sendWindow: number;
  /** The client's Maximum Packet Size (v5), or Infinity. */
  readonly maxPacketSize: number;
  /** The client's Topic Alias Maximum (v5), or 0. */
  readonly topicAliasMaximum: number;
  /** True while the connection's unwritten output is over its limit (QoS 0 is dropped then). */
  readonly congested: boolean;
  /** Queues an encoded PUBLISH, patching its packet id and DUP flag into the copy. */
  sendPublish(bytes: Uint8Array, idOffset: number, packetId: number, dup: boolean): void;
  /** Queues any other encoded packet. */
  send(bytes: Uint8Array): void;
  /** Encodes and queues a PUBREL for `packetId`. */
  sendPubrel(packetId: number): void;
}
