/**
 * What a subscription store is to the broker: a session's granted {@linkcode Subscription}s, the
 * {@linkcode Delivery} a PUBLISH makes to each receiving session, and the {@linkcode SubscriptionRouter} contract
 * that the trie router (and the tests' naive oracle) implement.
 *
 * @module
 */

import type { QoS } from "../packet/packet_type.ts";

/** One subscription of a session, as granted. */
export interface Subscription {
  /** The Topic Filter exactly as subscribed, e.g. `a/+` or `$share/g/a/+`. */
  readonly filter: string;
  /** The granted maximum QoS. */
  readonly qos: QoS;
  /** Do not deliver the client's own PUBLISHes to it [MQTT-3.8.3-3 (5.0)]. */
  readonly noLocal: boolean;
  /** Keep the RETAIN flag of forwarded PUBLISHes [MQTT-3.3.1-13 (5.0)]. */
  readonly retainAsPublished: boolean;
  /** When retained messages are sent on subscribe (0 always, 1 if new, 2 never). */
  readonly retainHandling: 0 | 1 | 2;
  /** The v5 Subscription Identifier, 1 to 268,435,455. */
  readonly subscriptionId?: number;
}

/**
 * One session that receives a PUBLISH. The router hands out frozen deliveries and may return the same object
 * from several match() calls; copy one to change it.
 */
export interface Delivery {
  /** The receiving session. */
  readonly clientId: string;
  /**
   * Highest QoS of the session's matching non-shared subscriptions [MQTT-3.3.4-2 (5.0)]; for a shared one, its
   * QoS.
   */
  readonly qos: QoS;
  /** True if any matching subscription has Retain As Published set. */
  readonly retainAsPublished: boolean;
  /**
   * Every matching subscription's identifier [MQTT-3.3.4-3 (5.0)] [MQTT-3.3.4-5 (5.0)]; empty when none has
   * one.
   */
  readonly subscriptionIds: readonly number[];
  /** The ShareName, when this delivery comes from a shared subscription. */
  readonly shareGroup?: string;
  /** For a shared delivery: the full `$share/...` filter that matched. */
  readonly filter?: string;
}

/** Options for {@linkcode SubscriptionRouter.match}. */
export interface MatchOptions {
  /** The publishing client: its subscriptions with No Local set are skipped [MQTT-3.8.3-3 (5.0)]. */
  readonly publisherId?: string;
  /**
   * Whether a shared group member can take a message now (online, not full). Members for which it returns
   * false are skipped; when none is available, the next member is picked anyway and the message queues in its
   * session. It must not call back into the router.
   *
   * @default {() => true}
   */
  readonly isAvailable?: (clientId: string) => boolean;
  /**
   * Whether a shared group member may read the topic. Members for which it returns false are never picked; a
   * group with no such member delivers to none (a member that may not read would drop the message). It must not
   * call back into the router.
   *
   * @default {() => true}
   */
  readonly canReceive?: (clientId: string, topic: string) => boolean;
}

/** What the broker needs from a subscription store; `TopicRouter` and the tests' `NaiveRouter` implement it. */
export interface SubscriptionRouter {
  /**
   * Adds or replaces (same clientId and filter) a subscription.
   *
   * @returns true when it replaced an existing one [MQTT-3.8.4-3 (5.0)].
   * @throws {MqttError} Topic Filter invalid (0x8F) for a malformed filter.
   */
  subscribe(clientId: string, subscription: Subscription): boolean;
  /** Removes a subscription; returns false when no such subscription existed. */
  unsubscribe(clientId: string, filter: string): boolean;
  /** Removes every subscription of a session. */
  unsubscribeAll(clientId: string): void;
  /** A session's subscriptions, in the order they were first made. */
  subscriptionsOf(clientId: string): readonly Subscription[];
  /** How many subscriptions a session has (without listing them). */
  subscriptionCount(clientId: string): number;
  /** Whether a session has a subscription to exactly `filter`. */
  hasSubscription(clientId: string, filter: string): boolean;
  /**
   * The sessions that receive a PUBLISH to `topic`: each session once for its non-shared subscriptions, plus
   * one entry per matching shared group with the member picked (round-robin) for this message.
   */
  match(topic: string, options?: MatchOptions): Delivery[];
  /** The number of subscriptions. */
  readonly size: number;
}
