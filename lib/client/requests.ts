/**
 * The client's requests that wait for one answer: SUBSCRIBE (SUBACK), UNSUBSCRIBE (UNSUBACK) and PINGREQ
 * (PINGRESP). A request made while disconnected goes out once connected; one sent on a lost connection goes out
 * again on the next. Granted subscriptions are remembered, so a reconnect without a session can subscribe again.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { MqttError, protocolError } from "../mqtt_error.ts";
import { PACKET_TYPE, packetName, type ProtocolVersion } from "../packet/packet_type.ts";
import { PINGREQ } from "../packet/pingreq.ts";
import type { Properties } from "../packet/properties.ts";
import { REASON_CODE } from "../packet/reason_code.ts";
import type { SubackPacket } from "../packet/suback.ts";
import type { SubscriptionRequest } from "../packet/subscribe.ts";
import type { UnsubackPacket } from "../packet/unsuback.ts";
import { validateTopicFilter } from "../topic/topic.ts";
import type { Connection } from "./connection.ts";
import type { SubscribeOptions, SubscribeResult, TopicSubscription, UnsubscribeOptions } from "./options.ts";
import type { PacketIds } from "./packet_id.ts";

type RequestSpec =
  | {
    readonly kind: "subscribe";
    readonly subscriptions: readonly SubscriptionRequest[];
    readonly properties?: Properties;
  }
  | { readonly kind: "unsubscribe"; readonly filters: readonly string[]; readonly properties?: Properties };

interface PendingRequest {
  readonly packetId: number;
  readonly spec: RequestSpec;
  readonly deferred: PromiseWithResolvers<SubscribeResult>;
  sent: boolean;
  settled: boolean;
  cleanup: (() => void) | undefined;
}

interface RecordedSubscription {
  readonly request: SubscriptionRequest;
  readonly properties: Properties | undefined;
}

/** Pending SUBSCRIBE, UNSUBSCRIBE and PINGREQ requests, and the subscriptions granted so far. */
export class Requests {
  #version: ProtocolVersion;
  #ids: PacketIds;
  #clock: Clock;
  #pending = new Map<number, PendingRequest>();
  #subscriptions = new Map<string, RecordedSubscription>();
  #pings: { start: number; deferred: PromiseWithResolvers<number> }[] = [];

  /** `ids` is shared with the outgoing QoS flows; `clock` times pings. */
  constructor(version: ProtocolVersion, ids: PacketIds, clock: Clock) {
    this.#version = version;
    this.#ids = ids;
    this.#clock = clock;
  }

  /** Filters granted so far, subscribed again after a reconnect that lost the session. */
  get subscriptions(): string[] {
    return [...this.#subscriptions.keys()];
  }

  /** Sends SUBSCRIBE on `conn` (or once connected); resolves with the SUBACK's reason codes. */
  subscribe(
    conn: Connection | undefined,
    filters: string | TopicSubscription | readonly (string | TopicSubscription)[],
    options: SubscribeOptions,
  ): Promise<SubscribeResult> {
    const list = typeof filters === "string" || !Array.isArray(filters)
      ? [filters as string | TopicSubscription]
      : filters as readonly (string | TopicSubscription)[];
    if (list.length === 0) throw new TypeError("subscribe() needs at least one filter [MQTT-3.8.3-2 (5.0)]");
    const subscriptions = list.map((item): SubscriptionRequest => {
      const sub: TopicSubscription = typeof item === "string" ? { filter: item } : item;
      validateTopicFilter(sub.filter);
      return {
        filter: sub.filter,
        qos: sub.qos ?? options.qos ?? 0,
        noLocal: sub.noLocal ?? options.noLocal ?? false,
        retainAsPublished: sub.retainAsPublished ?? options.retainAsPublished ?? false,
        retainHandling: sub.retainHandling ?? options.retainHandling ?? 0,
      };
    });
    const properties: Properties = {
      ...(options.subscriptionIdentifier === undefined
        ? {}
        : { subscriptionIdentifiers: [options.subscriptionIdentifier] }),
      ...(options.userProperties === undefined ? {} : { userProperties: options.userProperties }),
    };
    const hasProperties = this.#version === 5 && Object.keys(properties).length > 0;
    return this.#request(
      conn,
      { kind: "subscribe", subscriptions, ...(hasProperties ? { properties } : {}) },
      options.signal,
    );
  }

  /** Sends UNSUBSCRIBE on `conn` (or once connected); resolves with the UNSUBACK's reason codes. */
  unsubscribe(
    conn: Connection | undefined,
    filters: string | readonly string[],
    options: UnsubscribeOptions,
  ): Promise<SubscribeResult> {
    const list = typeof filters === "string" ? [filters] : filters;
    if (list.length === 0) {
      throw new TypeError("unsubscribe() needs at least one filter [MQTT-3.10.3-2 (5.0)]");
    }
    for (const filter of list) validateTopicFilter(filter);
    const hasProperties = this.#version === 5 && options.userProperties !== undefined;
    return this.#request(
      conn,
      {
        kind: "unsubscribe",
        filters: list,
        ...(hasProperties ? { properties: { userProperties: options.userProperties! } } : {}),
      },
      options.signal,
    );
  }

  /** Sends PINGREQ on `conn`; resolves with the round trip in ms, on monotonic time, when the PINGRESP comes. */
  ping(conn: Connection): Promise<number> {
    const deferred = Promise.withResolvers<number>();
    this.#pings.push({ start: this.#clock.monotonic(), deferred });
    conn.send(PINGREQ);
    return deferred.promise;
  }

  /** A PINGRESP answers the oldest PINGREQ. */
  onPingresp(): void {
    const ping = this.#pings.shift();
    ping?.deferred.resolve(this.#clock.monotonic() - ping.start);
  }

  /** Subscribes again to every granted filter, grouped by the properties they were subscribed with. */
  resubscribe(conn: Connection): void {
    const groups = new Map<Properties | undefined, SubscriptionRequest[]>();
    for (const { request, properties } of this.#subscriptions.values()) {
      const group = groups.get(properties);
      if (group === undefined) groups.set(properties, [request]);
      else group.push(request);
    }
    for (const [properties, subscriptions] of groups) {
      this.#request(conn, {
        kind: "subscribe",
        subscriptions,
        ...(properties === undefined ? {} : { properties }),
      }, undefined).catch(() => {});
    }
  }

  /** Sends every request not yet sent on this connection. */
  resume(conn: Connection): void {
    for (const request of this.#pending.values()) {
      if (!request.sent) this.#send(conn, request);
    }
  }

  /** The connection is gone: requests go out again on the next one; pings fail with `error`. */
  disconnected(error: Error): void {
    for (const request of this.#pending.values()) request.sent = false;
    const pings = this.#pings;
    this.#pings = [];
    for (const ping of pings) ping.deferred.reject(error);
  }

  /** Fails everything pending with `error` (the client closed). */
  close(error: Error): void {
    for (const request of this.#pending.values()) this.#settle(request, error);
    this.#pending.clear();
    for (const ping of this.#pings) ping.deferred.reject(error);
    this.#pings = [];
  }

  /** SUBACK or UNSUBACK: settles the request with that packet identifier. */
  onAck(packet: SubackPacket | UnsubackPacket): void {
    const { type, packetId } = packet;
    const request = this.#pending.get(packetId);
    const expected = type === PACKET_TYPE.SUBACK ? "subscribe" : "unsubscribe";
    if (request === undefined || request.spec.kind !== expected || !request.sent) {
      throw protocolError(
        `${packetName(type)} for packet identifier ${packetId}, which has no ${expected} pending`,
      );
    }
    const spec = request.spec;
    const count = spec.kind === "subscribe" ? spec.subscriptions.length : spec.filters.length;
    // MQTT 3.1.1 UNSUBACK carries no reason codes: every filter reports Success.
    const reasonCodes = type === PACKET_TYPE.UNSUBACK && this.#version < 5
      ? new Array<number>(count).fill(0)
      : packet.reasonCodes;
    if (reasonCodes.length !== count) {
      throw protocolError(
        `${
          packetName(type)
        } has ${reasonCodes.length} reason codes for ${count} filters [MQTT-3.9.3-1 (5.0)]`,
      );
    }
    this.#pending.delete(packetId);
    this.#ids.release(packetId);
    if (spec.kind === "subscribe") {
      spec.subscriptions.forEach((request, i) => {
        if (reasonCodes[i]! < 0x80) {
          this.#subscriptions.set(request.filter, { request, properties: spec.properties });
        } else this.#subscriptions.delete(request.filter);
      });
    } else {
      spec.filters.forEach((filter, i) => {
        if (reasonCodes[i]! < 0x80) this.#subscriptions.delete(filter);
      });
    }
    const properties = packet.properties;
    this.#settle(request, { reasonCodes, ...(properties === undefined ? {} : { properties }) });
  }

  #request(
    conn: Connection | undefined,
    spec: RequestSpec,
    signal: AbortSignal | undefined,
  ): Promise<SubscribeResult> {
    signal?.throwIfAborted();
    const packetId = this.#ids.allocate();
    if (packetId === undefined) {
      return Promise.reject(
        new MqttError(REASON_CODE.QuotaExceeded, "All 65,535 packet identifiers are in use"),
      );
    }
    const request: PendingRequest = {
      packetId,
      spec,
      deferred: Promise.withResolvers<SubscribeResult>(),
      sent: false,
      settled: false,
      cleanup: undefined,
    };
    if (signal !== undefined) {
      const onAbort = (): void => {
        if (!request.sent) {
          this.#pending.delete(packetId);
          this.#ids.release(packetId);
        }
        this.#settle(
          request,
          signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)),
        );
      };
      signal.addEventListener("abort", onAbort, { once: true });
      request.cleanup = () => signal.removeEventListener("abort", onAbort);
    }
    this.#pending.set(packetId, request);
    if (conn !== undefined) this.#send(conn, request);
    return request.deferred.promise;
  }

  #send(conn: Connection, request: PendingRequest): void {
    const spec = request.spec;
    const properties = spec.properties === undefined ? {} : { properties: spec.properties };
    conn.send(
      spec.kind === "subscribe"
        ? {
          type: PACKET_TYPE.SUBSCRIBE,
          packetId: request.packetId,
          subscriptions: spec.subscriptions,
          ...properties,
        }
        : { type: PACKET_TYPE.UNSUBSCRIBE, packetId: request.packetId, filters: spec.filters, ...properties },
    );
    request.sent = true;
  }

  #settle(request: PendingRequest, outcome: SubscribeResult | Error): void {
    if (request.settled) return;
    request.settled = true;
    request.cleanup?.();
    if (outcome instanceof Error) request.deferred.reject(outcome);
    else request.deferred.resolve(outcome);
  }
}
