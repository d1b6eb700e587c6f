/**
 * A linear-scan {@linkcode SubscriptionRouter}: every match() tests every subscription with
 * {@linkcode matchesFilter}. Too slow for a broker; kept as the oracle the trie router is tested against.
 *
 * @module
 */

import { matchesFilter, parseSharedFilter, validateTopicFilter } from "../../lib/topic/topic.ts";
import type {
  Delivery,
  MatchOptions,
  QoS,
  Subscription,
  SubscriptionRouter,
} from "../../lib/topic/router.ts";

interface Entry {
  subscription: Subscription;
}

interface Group {
  readonly name: string;
  readonly filter: string;
  /** The filter after the ShareName. */
  readonly inner: string;
  /** Client ids in subscription order; `next` is the one the next message goes to. */
  readonly members: string[];
  next: number;
}

interface MutableDelivery {
  readonly clientId: string;
  qos: QoS;
  retainAsPublished: boolean;
  subscriptionIds: number[];
}

/**
 * The reference router: simple enough to be obviously right.
 *
 * @example
 * ```ts
 * import { NaiveRouter } from "./_naive_router.ts";
 * const router = new NaiveRouter();
 * router.subscribe("a", { filter: "a/#", qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 });
 * console.assert(router.match("a/b").length === 1);
 * ```
 */
export class NaiveRouter implements SubscriptionRouter {
  #clients = new Map<string, Map<string, Entry>>();
  /** Shared groups by their full `$share/...` filter. */
  #groups = new Map<string, Group>();
  #size = 0;

  /** The number of subscriptions. */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds or replaces (same clientId and filter) a subscription.
   *
   * @returns true when it replaced an existing one [MQTT-3.8.4-3 (5.0)].
   * @throws {MqttError} Topic Filter invalid (0x8F) for a malformed filter.
   */
  subscribe(clientId: string, subscription: Subscription): boolean {
    const filter = subscription.filter;
    const existing = this.#clients.get(clientId)?.get(filter);
    if (existing !== undefined) {
      existing.subscription = subscription;
      return true;
    }
    const shared = parseSharedFilter(filter);
    if (shared === undefined) validateTopicFilter(filter);
    let subscriptions = this.#clients.get(clientId);
    if (subscriptions === undefined) {
      subscriptions = new Map();
      this.#clients.set(clientId, subscriptions);
    }
    subscriptions.set(filter, { subscription });
    if (shared !== undefined) {
      let group = this.#groups.get(filter);
      if (group === undefined) {
        group = { name: shared.group, filter, inner: shared.filter, members: [], next: 0 };
        this.#groups.set(filter, group);
      }
      group.members.push(clientId);
    }
    this.#size++;
    return false;
  }

  /** Removes a subscription; returns false when no such subscription existed. */
  unsubscribe(clientId: string, filter: string): boolean {
    const subscriptions = this.#clients.get(clientId);
    if (subscriptions === undefined || !subscriptions.delete(filter)) return false;
    if (subscriptions.size === 0) this.#clients.delete(clientId);
    this.#size--;
    const group = this.#groups.get(filter);
    if (group !== undefined) {
      const index = group.members.indexOf(clientId);
      group.members.splice(index, 1);
      if (index < group.next) group.next--;
      if (group.next >= group.members.length) group.next = 0;
      if (group.members.length === 0) this.#groups.delete(filter);
    }
    return true;
  }

  /** Removes every subscription of a session. */
  unsubscribeAll(clientId: string): void {
    for (const filter of [...(this.#clients.get(clientId)?.keys() ?? [])]) this.unsubscribe(clientId, filter);
  }

  /** How many subscriptions a session has. */
  subscriptionCount(clientId: string): number {
    return this.#clients.get(clientId)?.size ?? 0;
  }

  /** Whether a session has a subscription to exactly `filter`. */
  hasSubscription(clientId: string, filter: string): boolean {
    return this.#clients.get(clientId)?.has(filter) ?? false;
  }

  /** A session's subscriptions, in the order they were first made. */
  subscriptionsOf(clientId: string): readonly Subscription[] {
    return Array.from(this.#clients.get(clientId)?.values() ?? [], (entry) => entry.subscription);
  }

  /** The sessions that receive a PUBLISH to `topic`; see {@linkcode SubscriptionRouter.match}. */
  match(topic: string, options?: MatchOptions): Delivery[] {
    const direct = new Map<string, MutableDelivery>();
    for (const [clientId, subscriptions] of this.#clients) {
      for (const [filter, { subscription }] of subscriptions) {
        if (this.#groups.has(filter) || !matchesFilter(filter, topic)) continue;
        if (subscription.noLocal && clientId === options?.publisherId) continue;
        const id = subscription.subscriptionId;
        const delivery = direct.get(clientId);
        if (delivery === undefined) {
          direct.set(clientId, {
            clientId,
            qos: subscription.qos,
            retainAsPublished: subscription.retainAsPublished,
            subscriptionIds: id === undefined ? [] : [id],
          });
        } else {
          delivery.qos = Math.max(delivery.qos, subscription.qos) as QoS;
          delivery.retainAsPublished ||= subscription.retainAsPublished;
          if (id !== undefined) delivery.subscriptionIds.push(id);
        }
      }
    }
    const out: Delivery[] = [...direct.values()];
    for (const group of this.#groups.values()) {
      if (!matchesFilter(group.inner, topic)) continue;
      const picked = this.#pick(group, topic, options);
      if (picked !== undefined) out.push(picked);
    }
    return out;
  }

  #pick(group: Group, topic: string, options: MatchOptions | undefined): Delivery | undefined {
    const count = group.members.length;
    // Members who may read the topic, in round-robin order from `next`; the first available one, else the first.
    const readers = [...Array(count).keys()]
      .map((i) => (group.next + i) % count)
      .filter((i) => options?.canReceive?.(group.members[i]!, topic) ?? true);
    if (readers.length === 0) return undefined;
    const available = options?.isAvailable;
    const index = readers.find((i) => available === undefined || available(group.members[i]!)) ?? readers[0]!;
    group.next = (index + 1) % count;
    const clientId = group.members[index]!;
    const subscription = this.#clients.get(clientId)!.get(group.filter)!.subscription;
    const id = subscription.subscriptionId;
    return {
      clientId,
      qos: subscription.qos,
      retainAsPublished: subscription.retainAsPublished,
      subscriptionIds: id === undefined ? [] : [id],
      shareGroup: group.name,
      filter: group.filter,
    };
  }
}
