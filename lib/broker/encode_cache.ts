/**
 * The encoded forms of one message for a fan-out: each wire form (protocol, QoS, RETAIN, Subscription
 * Identifiers) is encoded once and shared by every receiver that needs it; the per-receiver packet identifier is
 * patched into a copy on write.
 *
 * @module
 */

import type { ProtocolVersion, QoS } from "../packet/packet_type.ts";
import type { Properties } from "../packet/properties.ts";
import { encodePublish, publishPacketIdOffset } from "../packet/publish.ts";
import type { Message } from "./storage/persistence.ts";

/**
 * Encoded forms of a message, shared by all receivers of one fan-out. It holds the forms of one message at a
 * time: asked for another message, it starts over (callers that walk many messages can share one cache).
 */
export class EncodeCache {
  // Most fan-outs need one form: it lives in two fields, and a Map is made only for a second form.
  #key0: number | string | undefined;
  #form0: EncodedForm | undefined;
  #more: Map<number | string, EncodedForm> | undefined;
  #message: Message | undefined;
  /** The time of the fan-out (ms since the epoch): every receiver gets the same remaining expiry. */
  readonly now: number;

  /** `now` is the clock's time when the fan-out starts. */
  constructor(now: number) {
    this.now = now;
  }

  /** The encoding of `message` for one wire form; built once per form and reused. */
  get(
    message: Message,
    version: ProtocolVersion,
    qos: QoS,
    retain: boolean,
    subscriptionIds: readonly number[] | undefined,
  ): EncodedForm | undefined {
    if (message !== this.#message) {
      this.#message = message;
      this.#key0 = undefined;
      this.#form0 = undefined;
      this.#more?.clear();
    }
    const v5 = version === 5;
    // A small integer for the common forms (no string built per message); a string with Subscription Identifiers.
    const key = v5 && subscriptionIds !== undefined
      ? `${qos}${retain ? 1 : 0}${subscriptionIds.join(",")}`
      : (v5 ? 8 : 0) + qos * 2 + (retain ? 1 : 0);
    if (key === this.#key0) return this.#form0;
    let form = this.#more?.get(key);
    if (form === undefined) {
      const properties = v5 ? outgoingProperties(message, subscriptionIds, this.now) : undefined;
      if (properties === null) return undefined; // expired
      const bytes = encodePublish(
        {
          type: 3,
          topic: message.topic,
          payload: message.payload,
          qos,
          retain,
          dup: false,
          ...(properties === undefined ? {} : { properties }),
        },
        version,
      );
      form = { bytes, idOffset: qos > 0 ? publishPacketIdOffset(bytes) : 0 };
      if (this.#key0 === undefined) {
        this.#key0 = key;
        this.#form0 = form;
      } else {
        (this.#more ??= new Map()).set(key, form);
      }
    }
    return form;
  }
}

/** A PUBLISH encoded for one wire form, and where its packet identifier goes (0 for QoS 0). */
export interface EncodedForm {
  /** The whole PUBLISH, shared by its receivers (never written into). */
  readonly bytes: Uint8Array;
  /** Offset of the packet identifier in `bytes`, for the per-receiver copy to patch; 0 for QoS 0. */
  readonly idOffset: number;
}

/** One receiver's v5 PUBLISH of `message` (its own topic or alias, packet identifier and properties). */
export function encodeV5Publish(
  message: Message,
  topic: string,
  qos: QoS,
  retain: boolean,
  dup: boolean,
  packetId: number,
  properties: Properties | undefined,
): Uint8Array {
  return encodePublish(
    {
      type: 3,
      topic,
      payload: message.payload,
      qos,
      retain,
      dup,
      ...(qos > 0 ? { packetId } : {}),
      ...(properties === undefined ? {} : { properties }),
    },
    5,
  );
}

/**
 * The v5 properties of an outgoing PUBLISH: the publisher's, with the remaining Message Expiry Interval
 * [MQTT-3.3.2-6 (5.0)] and this receiver's Subscription Identifiers [MQTT-3.3.4-3 (5.0)]. Null when the message
 * expired.
 */
export function outgoingProperties(
  message: Message,
  subscriptionIds: readonly number[] | undefined,
  now: number,
): Properties | undefined | null {
  let props = message.properties;
  if (message.expiresAt !== undefined) {
    // Expired only once its time has passed: a Message Expiry Interval of 0 still reaches the subscribers it is
    // routed to as it arrives (onward delivery starts at once), with 0 left [MQTT-3.3.2-5 (5.0)] [MQTT-3.3.2-6 (5.0)];
    // it is never delivered from a queue later.
    const left = message.expiresAt - now;
    if (left < 0) return null;
    props = { ...props, messageExpiryInterval: Math.ceil(left / 1000) };
  }
  if (subscriptionIds !== undefined && subscriptionIds.length > 0) {
    props = { ...props, subscriptionIdentifiers: subscriptionIds };
  }
  return props;
}
