/**
 * How a session's delivery becomes a PUBLISH on its connection: the form encoded once per fan-out for the
 * connection's protocol, dropped when it has expired or is over the client's Maximum Packet Size, and the v5
 * outgoing Topic Aliases of the connection.
 *
 * @module
 */

import type { QoS } from "../packet/packet_type.ts";
import type { Message } from "./storage/persistence.ts";
import { type EncodeCache, encodeV5Publish, outgoingProperties } from "./encode_cache.ts";
import type { Outgoing } from "./outgoing.ts";
import type { SessionLink } from "./session_link.ts";
import { DROP, type DropReason } from "./counters.ts";

/** What a write did: {@linkcode WRITTEN}, or why the message was dropped instead (`DROP.expired`, `DROP.tooLarge`). */
export type WriteResult = typeof WRITTEN | DropReason;

/** The message went out. */
export const WRITTEN = -1;

/**
 * The connection's outgoing Topic Aliases (topic -> alias), made by its first PUBLISH when the client announced a
 * Topic Alias Maximum; `undefined` otherwise. They end with the connection [MQTT-3.3.2-7 (5.0)].
 */
export type OutgoingAliases = Map<string, number> | undefined;

/** Writes a QoS 0 message; false (nothing written) when it expired or is too large for the client. */
export function writeQoS0(
  link: SessionLink,
  aliases: OutgoingAliases,
  message: Message,
  retain: boolean,
  subscriptionIds: readonly number[] | undefined,
  cache: EncodeCache,
): WriteResult {
  if (aliases !== undefined) {
    return writeAliased(link, aliases, message, 0, retain, subscriptionIds, 0, false, cache.now);
  }
  const v5 = link.protocolVersion === 5;
  const form = cache.get(message, link.protocolVersion, 0, retain, v5 ? subscriptionIds : undefined);
  if (form === undefined) return DROP.expired;
  if (form.bytes.length > link.maxPacketSize) return DROP.tooLarge; // [MQTT-3.1.2-25 (5.0)]
  link.sendPublish(form.bytes, 0, 0, false);
  return WRITTEN;
}

/**
 * Writes an inflight entry; when it expired or is too large for the client, says which (then it counts as done:
 * the Server acts as if it had completed sending it [MQTT-3.1.2-25 (5.0)]).
 */
export function writeOutgoing(
  link: SessionLink,
  aliases: OutgoingAliases,
  entry: Outgoing,
  dup: boolean,
  cache: EncodeCache,
): WriteResult {
  if (aliases !== undefined) {
    return writeAliased(
      link,
      aliases,
      entry.message,
      entry.qos,
      entry.retain,
      entry.subscriptionIds,
      entry.packetId,
      dup,
      cache.now,
    );
  }
  const v5 = link.protocolVersion === 5;
  const form = cache.get(
    entry.message,
    link.protocolVersion,
    entry.qos,
    entry.retain,
    v5 ? entry.subscriptionIds : undefined,
  );
  if (form === undefined) return DROP.expired;
  if (form.bytes.length > link.maxPacketSize) return DROP.tooLarge;
  link.sendPublish(form.bytes, form.idOffset, entry.packetId, dup);
  return WRITTEN;
}

/** v5 outgoing Topic Alias: the first PUBLISH of a topic sets an alias, later ones send it with an empty topic. */
function writeAliased(
  link: SessionLink,
  aliases: Map<string, number>,
  message: Message,
  qos: QoS,
  retain: boolean,
  subscriptionIds: readonly number[] | undefined,
  packetId: number,
  dup: boolean,
  now: number,
): WriteResult {
  const plain = outgoingProperties(message, subscriptionIds, now);
  if (plain === null) return DROP.expired;
  let props = plain;
  let topic = message.topic;
  const known = aliases.get(topic);
  let assigned = false;
  if (known !== undefined) {
    props = { ...props, topicAlias: known };
    topic = "";
  } else if (aliases.size < link.topicAliasMaximum) {
    const alias = aliases.size + 1;
    aliases.set(topic, alias);
    props = { ...props, topicAlias: alias };
    assigned = true;
  }
  let bytes = encodeV5Publish(message, topic, qos, retain, dup, packetId, props);
  if (bytes.length > link.maxPacketSize) {
    if (!assigned) return DROP.tooLarge; // [MQTT-3.1.2-25 (5.0)]
    // The alias we chose to add made it too large: send it without one, as the publisher sent it.
    aliases.delete(topic);
    bytes = encodeV5Publish(message, topic, qos, retain, dup, packetId, plain);
    if (bytes.length > link.maxPacketSize) return DROP.tooLarge;
  }
  link.send(bytes);
  return WRITTEN;
}
