/**
 * PUBLISH from a client (section 3.3): limits, topic alias, topic and authorization checks, routing, and the
 * PUBACK / PUBREC that answers it once the message cannot be lost. The hot path: nothing here allocates per
 * message beyond the broker's copy of the message and the acknowledgement's bytes.
 *
 * @module
 */

import { isWellFormedUtf8 } from "../../codec/utf8.ts";
import { MqttError, protocolError } from "../../mqtt_error.ts";
import { encodePuback } from "../../packet/puback.ts";
import type { PublishPacket } from "../../packet/publish.ts";
import { encodePubrec } from "../../packet/pubrec.ts";
import { REASON_CODE } from "../../packet/reason_code.ts";
import { IncomingTopicAliases } from "../../topic/topic_alias.ts";
import { isWildcardFilter, validateTopicName } from "../../topic/topic.ts";
import type { Connection } from "../connection.ts";
import { sendAck } from "./ack_order.ts";
import { logs, printable } from "../logger.ts";
import { DENY } from "../counters.ts";

/** PUBLISH received on a connected client. */
export function onPublish(connection: Connection, packet: PublishPacket): void {
  const core = connection.core;
  const options = core.options;
  const version = connection.protocolVersion;
  const v5 = version === 5;
  const stats = core.stats;
  stats.messagesReceived++;
  stats.messagesReceivedByQos[packet.qos]!++;
  connection.msgsIn++;
  if (connection.messageRate !== undefined && !connection.messageRate.take(core.clock.monotonic())) {
    stats.publishDenied[DENY.rate]!++;
    throw new MqttError(
      REASON_CODE.MessageRateTooHigh,
      `more than ${options.messageRatePerClient} PUBLISH per second`,
    );
  }
  let topic = packet.topic;
  const props = packet.properties;
  if (v5 && props !== undefined) {
    const alias = props.topicAlias;
    if (alias !== undefined) {
      // Alias 0 or above our Topic Alias Maximum: 0x94; an unset alias with an empty topic: 0x82 (section 3.3.4).
      // Created by the first Topic Alias: most connections never use one.
      topic = (connection.topicAliases ??= new IncomingTopicAliases(options.topicAliasMaximum)).resolve(
        topic,
        alias,
      );
    }
    if (props.subscriptionIdentifiers !== undefined) {
      throw protocolError("A PUBLISH from a client carries a Subscription Identifier [MQTT-3.3.4-6 (5.0)]");
    }
    if (props.responseTopic !== undefined && isWildcardFilter(props.responseTopic)) {
      throw protocolError("A Response Topic with a wildcard [MQTT-3.3.2-14 (5.0)]");
    }
  }
  if (topic === "") {
    // v5: "a Protocol Error if the Topic Name is zero length and there is no Topic Alias" (5.0 section 3.3.2.1).
    throw protocolError("PUBLISH with an empty topic name and no Topic Alias [MQTT-4.7.3-1 (3.1.1)]");
  }
  try {
    validateTopicName(topic, options.topicLimits); // 0x90, wildcards [MQTT-3.3.2-2 (3.1.1)]
  } catch (error) {
    if (!isWildcardFilter(topic)) stats.publishDenied[DENY.topicLimits]!++; // past maxTopicLength/Depth
    throw error;
  }
  if (packet.qos > options.maxQoS) {
    throw new MqttError(
      REASON_CODE.QoSNotSupported,
      `PUBLISH QoS ${packet.qos} is above the maximum [MQTT-3.2.2-11 (5.0)]`,
    );
  }
  if (packet.retain && !options.retainAvailable) {
    throw new MqttError(
      REASON_CODE.RetainNotSupported,
      "retained PUBLISH, but retain is not available [MQTT-3.2.2-14 (5.0)]",
    );
  }
  const session = connection.session!;
  if (packet.qos === 2 && session.incoming.has(packet.packetId!)) {
    // A resent QoS 2 PUBLISH we already took: answer again, deliver nothing (section 4.3.3).
    sendAck(connection, encodePubrec({ packetId: packet.packetId!, reasonCode: 0 }, version), false, 0);
    return;
  }
  // Our Receive Maximum [MQTT-3.3.4-7 (5.0)]. A 3.1.1 client is never told it, but letting it hold up to 65,535
  // unreleased QoS 2 ids (each kept in storage) is worse: past the same limit of ids it had PUBREC for and did
  // not release, it is closed (issue #15 item 11). What still waits for a commit is not held against it: a
  // pipelining client outruns the commit, and it cannot release what it has no PUBREC for.
  if (
    packet.qos > 0 &&
    (v5
        ? connection.inboundPending + session.incoming.size
        : packet.qos === 2
        ? session.incoming.size - connection.pubrecPending
        : 0) >= options.receiveMaximum
  ) {
    throw new MqttError(
      REASON_CODE.ReceiveMaximumExceeded,
      `more than Receive Maximum (${options.receiveMaximum}) unacknowledged QoS 1/2 PUBLISH [MQTT-3.3.4-7 (5.0)]`,
    );
  }
  let reasonCode: number = REASON_CODE.Success;
  let reason: string | undefined;
  if (
    v5 && options.checkPayloadFormat && props?.payloadFormatIndicator === 1 &&
    !isWellFormedUtf8(packet.payload)
  ) {
    if (packet.qos === 0) {
      throw new MqttError(
        REASON_CODE.PayloadFormatInvalid,
        "payload is not UTF-8 as its format indicator says",
      );
    }
    reasonCode = REASON_CODE.PayloadFormatInvalid;
    reason = "payload is not UTF-8 as its format indicator says";
  } else if (
    connection.byteQuota !== undefined &&
    !connection.byteQuota.take(core.clock.monotonic(), packet.payload.length)
  ) {
    reasonCode = REASON_CODE.QuotaExceeded;
    reason = `more than ${options.publishBytesPerSecond} payload bytes per second`;
    stats.publishDenied[DENY.quota]!++;
  } else if (isSysTopic(topic)) {
    // $SYS/… is the broker's own: a client may not publish (or retain) values there that others would take
    // for the broker's (5.0 section 4.7.2: the Server SHOULD prevent Clients from using $ topics to exchange
    // messages). As an ACL denial: v5 0x87, v3 acknowledged and dropped.
    reasonCode = REASON_CODE.NotAuthorized;
    reason = `${topic} is reserved for the broker`;
    stats.publishDenied[DENY.sysTopic]!++;
    core.logger.debug(
      `denied PUBLISH to ${printable(topic)} from ${printable(connection.clientId)}: reserved`,
      { event: "publish.denied", clientId: connection.clientId, topic, reasonCode },
    );
  } else if (!core.authorizer.canPublish(connection.identity, topic)) {
    reasonCode = REASON_CODE.NotAuthorized;
    reason = `not authorized to publish to ${topic}`;
    stats.publishDenied[DENY.acl]!++;
    if (logs(core.logger, "debug")) {
      core.logger.debug(`denied PUBLISH to ${printable(topic)} from ${printable(connection.clientId)}`, {
        event: "publish.denied",
        clientId: connection.clientId,
        username: connection.identity.username,
        topic,
        reasonCode,
      });
    }
  }
  if (reasonCode !== REASON_CODE.Success && core.traces.active) {
    core.traces.rejected(topic, packet, connection.clientId, { reasonCode, reason: reason ?? "" });
  }
  const store = core.store;
  const before = store?.recorded ?? 0;
  if (reasonCode === REASON_CODE.Success) {
    const receivers = core.publish(core.messageFrom(topic, packet, connection.clientId));
    if (receivers === 0) {
      stats.messagesUnrouted++;
      if (v5) reasonCode = REASON_CODE.NoMatchingSubscribers;
    }
  }
  if (packet.qos === 0) return;
  const id = packet.packetId!;
  // A Reason String only when the client did not refuse it [MQTT-3.1.2-29 (5.0)].
  const ack = v5
    ? {
      packetId: id,
      reasonCode,
      ...(reason !== undefined && connection.problemInfo ? { properties: { reasonString: reason } } : {}),
    }
    : { packetId: id, reasonCode: 0 };
  const encode = packet.qos === 1 ? encodePuback : encodePubrec;
  let bytes = encode(ack, version);
  // ...and only when it fits the client's Maximum Packet Size [MQTT-3.4.2-2 (5.0)] [MQTT-3.5.2-2 (5.0)].
  if (bytes.length > connection.maxPacketSize) bytes = encode({ packetId: id, reasonCode }, version);
  // The ack waits for the commit holding this message's effects, if it recorded any.
  const durable = (store?.recorded ?? 0) !== before;
  if (packet.qos === 1) {
    connection.inboundPending++;
    sendAck(connection, bytes, durable, 1);
    return;
  }
  let counted: 0 | 2 = 0;
  if (reasonCode < 0x80) {
    session.addIncoming(id);
    if (session.persistent) store?.add({ kind: "putIncoming", clientId: connection.clientId, packetId: id });
    connection.pubrecPending++;
    counted = 2;
  }
  sendAck(connection, bytes, (store?.recorded ?? 0) !== before, counted);
}

/** `$SYS` or `$SYS/…`: the broker's statistics, which clients may read but not publish. */
function isSysTopic(topic: string): boolean {
  return topic.startsWith("$SYS") && (topic.length === 4 || topic.charCodeAt(4) === 0x2f);
}
