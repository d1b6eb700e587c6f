/**
 * SUBSCRIBE and UNSUBSCRIBE (sections 3.8, 3.10): each filter checked, granted or refused in its SUBACK slot,
 * and the retained messages a new subscription is owed, sent as the client takes them (`retained_backlog.ts`).
 *
 * A filter that is not a filter at all (empty, `#/x`, `a+`) is a Protocol Error (5.0 section 4.7.1, 3.1.1
 * section 4.8), not a refusal: 0x8F (v3 0x80) is for a well-formed filter the broker will not take, such as one
 * past its length or depth limits.
 *
 * @module
 */

import { MqttError, protocolError } from "../../mqtt_error.ts";
import type { QoS } from "../../packet/packet_type.ts";
import { REASON_CODE, subackCodeV3 } from "../../packet/reason_code.ts";
import { encodeSuback } from "../../packet/suback.ts";
import type { SubscribePacket } from "../../packet/subscribe.ts";
import { encodeUnsuback } from "../../packet/unsuback.ts";
import type { UnsubscribePacket } from "../../packet/unsubscribe.ts";
import { parseSharedFilter, validateTopicFilter } from "../../topic/topic.ts";
import type { Connection } from "../connection.ts";
import { logs, printable } from "../logger.ts";
import { countDrop, DENY, DROP } from "../counters.ts";
import { RetainedBacklog, type RetainedHost } from "../retained_backlog.ts";
import { EncodeCache, type Session } from "../session.ts";
import type { Message } from "../storage/persistence.ts";

/** SUBSCRIBE received on a connected client. */
export function onSubscribe(connection: Connection, packet: SubscribePacket): void | Promise<void> {
  const core = connection.core;
  const options = core.options;
  const v5 = connection.protocolVersion === 5;
  const failure: number = v5 ? REASON_CODE.UnspecifiedError : subackCodeV3(REASON_CODE.UnspecifiedError);
  const subscriptionId = packet.properties?.subscriptionIdentifiers?.[0];
  if (subscriptionId !== undefined && !options.subscriptionIdentifiersAvailable) {
    throw new MqttError(
      REASON_CODE.SubscriptionIdentifiersNotSupported,
      "Subscription Identifiers are not supported",
    );
  }
  const session = connection.session!;
  const clientId = connection.clientId;
  const codes: number[] = [];
  const retained: { filter: string; qos: QoS }[] = [];
  let count = core.router.subscriptionCount(clientId);
  for (const request of packet.subscriptions) {
    const filter = request.filter;
    checkFilterSyntax(filter, "SUBSCRIBE");
    let shared;
    try {
      validateTopicFilter(filter, options.topicLimits);
      shared = parseSharedFilter(filter);
    } catch (error) {
      core.logger.debug(`client ${printable(clientId)}: ${printable((error as Error).message)}`);
      core.stats.subscribeDenied[DENY.topicLimits]!++;
      codes.push(v5 ? REASON_CODE.TopicFilterInvalid : failure);
      continue;
    }
    if (shared !== undefined && request.noLocal) {
      throw protocolError("No Local on a shared subscription [MQTT-3.8.3-4 (5.0)]");
    }
    if (shared !== undefined && !options.sharedSubscriptionsAvailable) {
      codes.push(v5 ? REASON_CODE.SharedSubscriptionsNotSupported : failure);
      continue;
    }
    if (!options.wildcardSubscriptionsAvailable && (filter.includes("+") || filter.includes("#"))) {
      codes.push(v5 ? REASON_CODE.WildcardSubscriptionsNotSupported : failure);
      continue;
    }
    if (!core.authorizer.canSubscribe(connection.identity, filter)) {
      core.stats.subscribeDenied[DENY.acl]!++;
      if (logs(core.logger, "debug")) {
        core.logger.debug(`denied SUBSCRIBE to ${printable(filter)} from ${printable(clientId)}`, {
          event: "subscribe.denied",
          clientId,
          username: connection.identity.username,
          topic: filter,
        });
      }
      codes.push(v5 ? REASON_CODE.NotAuthorized : failure);
      continue;
    }
    // Only replacing an existing subscription is still allowed past the limit.
    if (count >= options.maxSubscriptionsPerClient && !core.router.hasSubscription(clientId, filter)) {
      core.stats.subscribeDenied[DENY.quota]!++;
      codes.push(v5 ? REASON_CODE.QuotaExceeded : failure);
      continue;
    }
    const qos = Math.min(request.qos, options.maxQoS) as QoS;
    const existed = core.router.subscribe(clientId, {
      filter,
      qos,
      noLocal: request.noLocal,
      retainAsPublished: request.retainAsPublished,
      retainHandling: request.retainHandling,
      ...(subscriptionId === undefined ? {} : { subscriptionId }),
    });
    if (!existed) count++;
    codes.push(qos);
    // Retained messages are not sent for a shared subscription (5.0 section 4.8.2).
    if (
      shared === undefined && (request.retainHandling === 0 || (request.retainHandling === 1 && !existed))
    ) {
      retained.push({ filter, qos });
    }
  }
  core.sessionChanged(session);
  const suback = encodeSuback({ packetId: packet.packetId, reasonCodes: codes }, connection.protocolVersion);
  // In a cluster the SUBACK waits for the new routes to be stored (packets read after it wait too).
  const stored = core.cluster?.routesStored();
  if (stored !== undefined) {
    return stored.then(() => {
      if (!connection.isClosed) acknowledge(connection, session, suback, retained, subscriptionId);
    });
  }
  acknowledge(connection, session, suback, retained, subscriptionId);
}

/** Sends the SUBACK, then the retained messages the new subscriptions are owed. */
function acknowledge(
  connection: Connection,
  session: Session,
  suback: Uint8Array,
  retained: readonly { filter: string; qos: QoS }[],
  subscriptionId: number | undefined,
): void {
  connection.send(suback);
  if (retained.length > 0) sendRetained(connection, session, retained, subscriptionId);
}

/** UNSUBSCRIBE received on a connected client. */
export function onUnsubscribe(connection: Connection, packet: UnsubscribePacket): void {
  const core = connection.core;
  const codes: number[] = [];
  for (const filter of packet.filters) {
    checkFilterSyntax(filter, "UNSUBSCRIBE");
    try {
      validateTopicFilter(filter, core.options.topicLimits);
    } catch {
      codes.push(REASON_CODE.TopicFilterInvalid);
      continue;
    }
    codes.push(
      core.router.unsubscribe(connection.clientId, filter)
        ? REASON_CODE.Success
        : REASON_CODE.NoSubscriptionExisted,
    );
  }
  connection.send(
    encodeUnsuback({ packetId: packet.packetId, reasonCodes: codes }, connection.protocolVersion),
  );
  core.sessionChanged(connection.session!);
}

/**
 * Throws a Protocol Error for a malformed filter [MQTT-4.7.1-1 (3.1.1)] [MQTT-4.7.1-2 (3.1.1)]
 * [MQTT-4.7.3-1 (3.1.1)] [MQTT-4.8.0-1 (3.1.1)]; the broker's own limits are checked after, per filter.
 */
function checkFilterSyntax(filter: string, packet: string): void {
  // A badly formed `$share/…` filter keeps its 0x8F slot (5.0 section 4.8.2 names no Protocol Error for it).
  if (filter.startsWith("$share/")) return;
  try {
    validateTopicFilter(filter);
  } catch (error) {
    throw protocolError(`${packet} with a malformed Topic Filter: ${(error as Error).message}`);
  }
}

/** Queues the retained messages the new subscriptions are owed and starts sending them. */
function sendRetained(
  connection: Connection,
  session: Session,
  retained: readonly { filter: string; qos: QoS }[],
  subscriptionId: number | undefined,
): void {
  const core = connection.core;
  const ids = subscriptionId === undefined ? undefined : [subscriptionId];
  const backlog = connection.retainedBacklog ??= new RetainedBacklog(retainedHost(connection, session));
  // A client that re-subscribes without taking what it is owed could make the backlog grow without end:
  // it holds at most one copy of the store (plus 1,000); past that a SUBSCRIBE's retained messages drop.
  const limit = core.retained.size + 1000;
  for (const { filter, qos } of retained) {
    let messages = core.retained.match(filter);
    const room = Math.max(0, limit - backlog.size); // the store may have shrunk since the backlog grew
    if (messages.length > room) {
      core.logger.warn(
        `client ${printable(connection.clientId)}: ${messages.length - room} retained message(s) for ` +
          `${printable(filter)} dropped: ${backlog.size} still owed to it`,
        {
          event: "messages.dropped",
          clientId: connection.clientId,
          topic: filter,
          reason: "retained_backlog",
        },
      );
      session.dropped += messages.length - room;
      countDrop(core.stats, DROP.retainedBacklog, messages.length - room);
      messages = messages.slice(0, room);
    }
    backlog.add({ messages, qos, subscriptionIds: ids });
  }
  // Sent as the client takes them: past the output limit or the queue they would be dropped.
  backlog.pump();
}

/** What a {@linkcode RetainedBacklog} needs from the connection (made once, on the first use). */
function retainedHost(connection: Connection, session: Session): RetainedHost {
  const core = connection.core;
  return {
    isClosed: () => connection.state === "closed",
    isCongested: () => connection.congested,
    // Retained QoS 1/2 messages enter only while the window has room, so they never fill the queue that live
    // messages need.
    isQueueFull: () => session.queued > 0 || session.inflight.size >= connection.sendWindow,
    drained: () => connection.drained(),
    current: (topic) => core.retained.get(topic),
    send: (message, qos, subscriptionIds) =>
      deliverRetained(connection, session, message, qos, subscriptionIds),
  };
}

/** Gives `session` one retained message at `qos`, unless it expired or the client may not receive it. */
function deliverRetained(
  connection: Connection,
  session: Session,
  message: Message,
  qos: QoS,
  subscriptionIds: readonly number[] | undefined,
): void {
  const core = connection.core;
  const now = core.clock.now();
  if (message.expiresAt !== undefined && message.expiresAt <= now) return;
  if (!core.authorizer.canReceive(connection.identity, message.topic)) return;
  // Sent with RETAIN set [MQTT-3.3.1-9 (5.0)] [MQTT-3.3.1-8 (3.1.1)]. An EncodeCache holds the forms of ONE
  // message, so each retained message gets its own.
  session.deliver(message, qos, true, subscriptionIds, new EncodeCache(now));
}

/**
 * The connection closed with retained messages still owed: the QoS 1/2 ones go to the session's queue if the
 * session lives on (they would have been queued had they been sent at the SUBSCRIBE); QoS 0 ones go.
 */
export function queueOwedRetained(connection: Connection, session: Session): void {
  const owed = connection.retainedBacklog?.abandon();
  connection.retainedBacklog = undefined;
  if (owed === undefined || owed.length === 0) return;
  if (!session.persistent && session.link === undefined) return; // the session ended with the connection
  for (const { message, qos, subscriptionIds } of owed) {
    deliverRetained(connection, session, message, qos, subscriptionIds);
  }
}
