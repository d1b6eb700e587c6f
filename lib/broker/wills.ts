/**
 * Wills: a will is scheduled when its connection is lost, waits out its Will Delay, and is published unless the
 * client came back first; wills armed when the broker stopped are published after the next start.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import type { WillMessage } from "../packet/connect.ts";
import type { Properties } from "../packet/properties.ts";
import type { Authorizer, ClientIdentity } from "./auth/auth.ts";
import { type Logger, printable } from "./logger.ts";
import type { CommitQueue } from "./storage/commit_queue.ts";
import type { BrokerCounters } from "./counters.ts";
import type { Message, PendingWill as StoredWill } from "./storage/persistence.ts";

/** Makes the message a will is published as: owned payload, absolute expiry, no Will Delay. */
export function messageFromWill(will: WillMessage, origin: string, now: number): Message {
  let properties: Properties | undefined;
  let expiresAt: number | undefined;
  if (will.properties !== undefined) {
    const { willDelayInterval: _delay, messageExpiryInterval, ...rest } = will.properties;
    if (messageExpiryInterval !== undefined) expiresAt = now + messageExpiryInterval * 1000;
    properties = Object.keys(rest).length === 0 ? undefined : rest;
  }
  return {
    topic: will.topic,
    payload: will.payload.slice(),
    qos: will.qos,
    retain: will.retain,
    origin,
    ...(properties === undefined ? {} : { properties }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
  };
}

/** A will as the store keeps it, with its owner's user name. */
export function storedWill(identity: ClientIdentity, message: Message, sendAt: number): StoredWill {
  const will = { clientId: identity.clientId, message, sendAt };
  return identity.username === undefined ? will : { ...will, username: identity.username };
}

interface PendingWill {
  readonly message: Message;
  readonly identity: ClientIdentity;
  timer: TimerId | undefined;
  /** When the will started to wait (`monotonic()`): its message expiry is moved on by the time it waited. */
  readonly since?: number;
}

/** What {@linkcode Wills} needs from the broker. */
export interface WillsOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly authorizer: Authorizer;
  /** Pending wills are stored here so a restart still sends them. */
  readonly store: CommitQueue | undefined;
  /** Routes a will that is due. */
  readonly publish: (message: Message) => number;
  /** Counts the wills published. */
  readonly counters?: Pick<BrokerCounters, "willsPublished">;
}

/** The wills waiting for their delay (at most one per client). */
export class Wills {
  readonly #clock: Clock;
  readonly #logger: Logger;
  #authorizer: Authorizer;
  readonly #store: CommitQueue | undefined;
  readonly #publish: (message: Message) => number;
  readonly #counters: Pick<BrokerCounters, "willsPublished"> | undefined;
  readonly #pending = new Map<string, PendingWill>();
  /** After {@linkcode Wills.close}: wills installed later stay pending (stored) and arm no timer. */
  #closed = false;

  /** Holds no will until {@linkcode Wills.schedule} or {@linkcode Wills.restore}. */
  constructor(options: WillsOptions) {
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#authorizer = options.authorizer;
    this.#store = options.store;
    this.#publish = options.publish;
    this.#counters = options.counters;
  }

  /** The write rules changed (a reload): wills published from now on are checked against `authorizer`. */
  setAuthorizer(authorizer: Authorizer): void {
    this.#authorizer = authorizer;
  }

  /** Whether the client has a will waiting. */
  has(clientId: string): boolean {
    return this.#pending.has(clientId);
  }

  /**
   * The connection is lost: publishes the will after `delaySeconds` (v5 Will Delay Interval), at once for 0. `now`
   * is the wall clock's time, stored so a restart still knows when to send it.
   */
  schedule(identity: ClientIdentity, message: Message, delaySeconds: number, now: number): void {
    const clientId = identity.clientId;
    this.cancel(clientId);
    const pending: PendingWill = { message, identity, timer: undefined, since: this.#clock.monotonic() };
    this.#pending.set(clientId, pending);
    if (delaySeconds === 0) {
      this.publish(clientId);
      return;
    }
    this.#store?.add({ kind: "putWill", will: storedWill(identity, message, now + delaySeconds * 1000) });
    if (this.#closed) return;
    pending.timer = this.#clock.setTimeout(() => this.publish(clientId), delaySeconds * 1000);
  }

  /** The client came back within the delay: its will is not sent [MQTT-3.1.3-9 (5.0)]. */
  cancel(clientId: string): void {
    const pending = this.#pending.get(clientId);
    if (pending === undefined) return;
    if (pending.timer !== undefined) this.#clock.clearTimeout(pending.timer);
    this.#pending.delete(clientId);
    this.#store?.add({ kind: "deleteWill", clientId });
  }

  /** Publishes the client's waiting will now (its delay passed, or its session ended). */
  publish(clientId: string): void {
    const pending = this.#pending.get(clientId);
    if (pending === undefined) return;
    if (pending.timer !== undefined) this.#clock.clearTimeout(pending.timer);
    this.#pending.delete(clientId);
    this.#store?.add({ kind: "deleteWill", clientId });
    if (!this.#authorizer.canPublish(pending.identity, pending.message.topic)) {
      this.#logger.info(
        `will of ${printable(clientId)} to ${printable(pending.message.topic)} not published: not authorized`,
        { event: "publish.denied", clientId, topic: pending.message.topic, reason: "will" },
      );
      return;
    }
    this.#logger.debug(`publishing will of ${printable(clientId)} to ${printable(pending.message.topic)}`, {
      event: "will.published",
      clientId,
      topic: pending.message.topic,
    });
    let message = pending.message;
    if (message.expiresAt !== undefined && pending.since !== undefined) {
      // The will's Message Expiry Interval starts when it is published (section 3.1.3.2.4), not at the disconnect.
      const waited = Math.max(0, this.#clock.monotonic() - pending.since);
      message = { ...message, expiresAt: message.expiresAt + waited };
    }
    if (this.#counters !== undefined) this.#counters.willsPublished++;
    this.#publish(message);
  }

  /** Wills stored by the previous run: armed for connections that are gone now, they go out when due. */
  restore(wills: readonly StoredWill[], now: number): void {
    for (const will of wills) {
      // Authorized as the user it was stored with (an anonymous client's will has none).
      const identity: ClientIdentity = will.username === undefined
        ? { clientId: will.clientId }
        : { clientId: will.clientId, username: will.username };
      const pending: PendingWill = { message: will.message, identity, timer: undefined };
      this.#pending.set(will.clientId, pending);
      if (this.#closed) continue;
      pending.timer = this.#clock.setTimeout(
        () => this.publish(will.clientId),
        Math.max(0, will.sendAt - now),
      );
    }
  }

  /**
   * Stops every will timer and arms none from now on (the broker is closing; stored wills are sent at the next
   * start).
   */
  close(): void {
    this.#closed = true;
    for (const pending of this.#pending.values()) {
      if (pending.timer !== undefined) this.#clock.clearTimeout(pending.timer);
    }
  }
}
