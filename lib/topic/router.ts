/**
 * The subscription router: which sessions receive a PUBLISH. {@linkcode TopicRouter} is a trie keyed by topic
 * level with dedicated `+` and `#` branches, so matching costs time in proportion to the topic's depth rather
 * than the number of subscriptions.
 *
 * This file walks the trie and merges a session's deliveries; the nodes and their arrays are in
 * `_router_nodes.ts`, the per-session overlap counts that decide what needs merging in `_session_overlaps.ts`,
 * and shared groups with their member pick in `_shared_groups.ts`.
 *
 * @module
 */

import type { QoS } from "../packet/packet_type.ts";
import { parseSharedFilter, validateTopicFilter } from "./topic.ts";
import type { Delivery, MatchOptions, Subscription, SubscriptionRouter } from "./subscription.ts";
import {
  addEntry,
  CLIENT_SHIFT,
  ClientRecord,
  directDelivery,
  FLAG_BITS,
  type MutableDelivery,
  NO_LOCAL,
  Node,
  OVERLAPS,
  removeEntry,
  sharedDelivery,
  writeEntry,
} from "./_router_nodes.ts";
import { clearOverlaps, trackOverlaps, untrackOverlaps } from "./_session_overlaps.ts";
import { joinGroup, leaveGroup, pickMember } from "./_shared_groups.ts";

// Re-exported for the router's users and tests, which import them from here.
export type { Delivery, MatchOptions, QoS, Subscription, SubscriptionRouter };

const DOLLAR = 0x24; // "$"

/** Stands in for the output list between match() calls, so the router does not hold on to the caller's. */
const IDLE: Delivery[] = [];

/**
 * The trie-based {@linkcode SubscriptionRouter}. Removing the last subscription of a branch prunes it, so
 * memory follows the live subscriptions, not their history.
 *
 * @example
 * ```ts
 * import { TopicRouter } from "./router.ts";
 * const router = new TopicRouter();
 * const options = { noLocal: false, retainAsPublished: false, retainHandling: 0 } as const;
 * router.subscribe("a", { ...options, filter: "sport/#", qos: 1 });
 * router.subscribe("a", { ...options, filter: "sport/+/player1", qos: 2 });
 * const [delivery] = router.match("sport/tennis/player1");
 * console.assert(delivery?.clientId === "a" && delivery.qos === 2);
 * ```
 */
export class TopicRouter implements SubscriptionRouter {
  #root = new Node(undefined, "");
  #clients = new Map<string, ClientRecord>();
  #size = 0;
  #nodeCount = 0;
  #sharedSize = 0;
  #freeNumbers: number[] = [];
  #nextNumber = 0;
  // Per session number: the match() call that last delivered to it through an `OVERLAPS` subscription, where in
  // that call's output the delivery is, and the call in which that delivery became a merged copy.
  #stamps = new Float64Array(64);
  #slots = new Int32Array(64);
  #mergedStamps = new Float64Array(64);
  // State of the match() call in progress, kept here so the recursive walk passes only what changes.
  #stamp = 0;
  #out: Delivery[] = IDLE;
  #publisherId: string | undefined = undefined;
  #isAvailable: ((clientId: string) => boolean) | undefined = undefined;
  #canReceive: ((clientId: string, topic: string) => boolean) | undefined = undefined;
  #topic = "";
  /** The topic's levels, split once per match() into this reused array; `#depth` of them are current. */
  #levels: string[] = [];
  #depth = 0;

  /** The number of subscriptions. */
  get size(): number {
    return this.#size;
  }

  /** The number of shared (`$share/…`) subscriptions among them, kept as they come and go (a gauge reads it). */
  get sharedSize(): number {
    return this.#sharedSize;
  }

  /** The number of trie nodes, not counting the root; 0 once every subscription is gone. */
  get nodeCount(): number {
    return this.#nodeCount;
  }

  /**
   * Adds or replaces (same clientId and filter) a subscription.
   *
   * @returns true when it replaced an existing one [MQTT-3.8.4-3 (5.0)].
   * @throws {MqttError} Topic Filter invalid (0x8F) for a malformed filter.
   */
  subscribe(clientId: string, subscription: Subscription): boolean {
    const filter = subscription.filter;
    let client = this.#clients.get(clientId);
    const existing = client?.subscriptions.get(filter);
    if (existing !== undefined) {
      existing.subscription = subscription; // [MQTT-3.8.4-3 (5.0)]
      if (existing.shared) {
        existing.delivery = sharedDelivery(clientId, subscription, existing.group);
      } else {
        existing.delivery = directDelivery(clientId, subscription);
        writeEntry(existing);
      }
      return true;
    }
    const shared = parseSharedFilter(filter);
    if (shared === undefined) validateTopicFilter(filter);
    if (client === undefined) {
      client = new ClientRecord(clientId, this.#takeNumber());
      this.#clients.set(clientId, client);
    }
    if (shared === undefined) {
      const entry = addEntry(
        this.#nodeFor(filter, 0),
        client,
        subscription,
        directDelivery(clientId, subscription),
      );
      trackOverlaps(entry);
      client.subscriptions.set(filter, entry);
      writeEntry(entry);
    } else {
      const node = this.#nodeFor(filter, filter.length - shared.filter.length);
      client.subscriptions.set(filter, joinGroup(node, shared.group, client, subscription));
      this.#sharedSize++;
    }
    this.#size++;
    return false;
  }

  /** Removes a subscription; returns false when no such subscription existed. */
  unsubscribe(clientId: string, filter: string): boolean {
    const client = this.#clients.get(clientId);
    const entry = client?.subscriptions.get(filter);
    if (client === undefined || entry === undefined) return false;
    client.subscriptions.delete(filter);
    if (client.subscriptions.size === 0) this.#dropClient(client);
    this.#size--;
    if (entry.shared) {
      this.#sharedSize--;
      this.#prune(leaveGroup(entry));
    } else {
      untrackOverlaps(entry);
      this.#prune(removeEntry(entry));
    }
    return true;
  }

  /** Removes every subscription of a session. */
  unsubscribeAll(clientId: string): void {
    const client = this.#clients.get(clientId);
    if (client === undefined) return;
    this.#dropClient(client);
    // The session goes away whole, so its overlap counts need no upkeep.
    for (const entry of client.subscriptions.values()) {
      this.#size--;
      if (entry.shared) this.#sharedSize--;
      this.#prune(entry.shared ? leaveGroup(entry) : removeEntry(entry));
    }
    client.subscriptions.clear();
    clearOverlaps(client);
  }

  /** How many subscriptions a session has (without listing them). */
  subscriptionCount(clientId: string): number {
    return this.#clients.get(clientId)?.subscriptions.size ?? 0;
  }

  /** Whether a session has a subscription to exactly `filter`. */
  hasSubscription(clientId: string, filter: string): boolean {
    return this.#clients.get(clientId)?.subscriptions.has(filter) ?? false;
  }

  /** A session's subscriptions, in the order they were first made. */
  subscriptionsOf(clientId: string): readonly Subscription[] {
    const client = this.#clients.get(clientId);
    if (client === undefined) return [];
    return Array.from(client.subscriptions.values(), (entry) => entry.subscription);
  }

  /**
   * The sessions that receive a PUBLISH to `topic` (a valid Topic Name): each session once for its non-shared
   * subscriptions, plus one entry per matching shared group with the member picked for this message.
   */
  match(topic: string, options?: MatchOptions): Delivery[] {
    const out: Delivery[] = [];
    this.#out = out;
    this.#stamp++;
    this.#publisherId = options?.publisherId;
    this.#isAvailable = options?.isAvailable;
    this.#canReceive = options?.canReceive;
    this.#topic = topic;
    const levels = this.#levels;
    let depth = 0;
    for (let t = 0;;) {
      const end = topic.indexOf("/", t);
      if (end === -1) {
        levels[depth++] = t === 0 ? topic : topic.slice(t);
        break;
      }
      levels[depth++] = topic.slice(t, end);
      t = end + 1;
    }
    this.#depth = depth;
    // Filters starting with a wildcard do not match topics starting with "$" [MQTT-4.7.2-1 (5.0)].
    this.#visit(this.#root, 0, topic.charCodeAt(0) !== DOLLAR);
    this.#out = IDLE;
    this.#isAvailable = undefined;
    this.#canReceive = undefined;
    return out;
  }

  /**
   * Visits `node`, reached by the topic's first `level` levels. `wild` says whether the wildcard branches may
   * be followed at this level.
   */
  #visit(node: Node, level: number, wild: boolean): void {
    if (wild && node.hash !== undefined) this.#collect(node.hash); // "#" also matches the parent level
    if (level === this.#depth) {
      this.#collect(node);
      return;
    }
    if (node.onlyChild !== undefined) {
      if (node.onlyKey === this.#levels[level]) {
        this.#visit(node.onlyChild, level + 1, true);
      }
    } else if (node.children !== undefined) {
      const child = node.children.get(this.#levels[level]!);
      if (child !== undefined) this.#visit(child, level + 1, true);
    }
    if (wild && node.plus !== undefined) {
      this.#visit(node.plus, level + 1, true);
    }
  }

  /** Adds the subscriptions that end at `node` to the current match's output. */
  #collect(node: Node): void {
    const deliveries = node.deliveries;
    if (deliveries !== undefined) {
      const out = this.#out;
      if (node.flagged === 0) {
        for (let i = 0; i < deliveries.length; i++) out.push(deliveries[i]!);
      } else {
        const flags = node.flags!;
        for (let i = 0; i < deliveries.length; i++) {
          const flag = flags[i]!;
          const delivery = deliveries[i]!;
          if ((flag & FLAG_BITS) === 0) out.push(delivery);
          else if ((flag & NO_LOCAL) !== 0 && delivery.clientId === this.#publisherId) continue; // [MQTT-3.8.3-3 (5.0)]
          else if ((flag & OVERLAPS) === 0) out.push(delivery);
          else this.#merge(flag >>> CLIENT_SHIFT, delivery);
        }
      }
    }
    if (node.groups !== undefined) {
      for (const group of node.groups.values()) {
        const picked = pickMember(group, this.#topic, this.#isAvailable, this.#canReceive);
        if (picked !== undefined) this.#out.push(picked);
      }
    }
  }

  /**
   * Adds the delivery of a subscription flagged `OVERLAPS`, merging it into the session's delivery if it already
   * has one in this call: one delivery per session with the highest QoS and every identifier
   * [MQTT-3.3.4-2 (5.0)] [MQTT-3.3.4-3 (5.0)].
   */
  #merge(client: number, delivery: Delivery): void {
    const out = this.#out;
    const stamp = this.#stamp;
    if (this.#stamps[client] !== stamp) {
      this.#stamps[client] = stamp;
      this.#slots[client] = out.length;
      out.push(delivery);
      return;
    }
    const slot = this.#slots[client]!;
    let merged = out[slot]!;
    if (this.#mergedStamps[client] !== stamp) {
      // The first delivery is a shared, frozen one: merge into a copy.
      this.#mergedStamps[client] = stamp;
      merged = { ...merged };
      out[slot] = merged;
    }
    const target = merged as MutableDelivery; // a copy made above, in this call
    if (delivery.qos > target.qos) target.qos = delivery.qos;
    if (delivery.retainAsPublished) target.retainAsPublished = true;
    if (delivery.subscriptionIds.length > 0) {
      target.subscriptionIds = target.subscriptionIds.concat(delivery.subscriptionIds);
    }
  }

  /** A free session number, growing the per-session arrays when all are taken. */
  #takeNumber(): number {
    const reused = this.#freeNumbers.pop();
    if (reused !== undefined) return reused;
    const number = this.#nextNumber++;
    if (number === this.#stamps.length) {
      const stamps = new Float64Array(number * 2);
      stamps.set(this.#stamps);
      this.#stamps = stamps;
      const slots = new Int32Array(number * 2);
      slots.set(this.#slots);
      this.#slots = slots;
      const mergedStamps = new Float64Array(number * 2);
      mergedStamps.set(this.#mergedStamps);
      this.#mergedStamps = mergedStamps;
    }
    return number;
  }

  #dropClient(client: ClientRecord): void {
    this.#clients.delete(client.id);
    this.#freeNumbers.push(client.number);
  }

  /** The node for the filter that starts at `start`, creating missing levels. */
  #nodeFor(filter: string, start: number): Node {
    let node = this.#root;
    let t = start;
    for (;;) {
      let end = filter.indexOf("/", t);
      if (end === -1) end = filter.length;
      node = this.#child(node, filter.slice(t, end));
      if (end === filter.length) return node;
      t = end + 1;
    }
  }

  #child(node: Node, level: string): Node {
    if (level === "+") return node.plus ??= this.#newNode(node, level);
    if (level === "#") return node.hash ??= this.#newNode(node, level);
    if (node.children !== undefined) {
      let child = node.children.get(level);
      if (child === undefined) {
        child = this.#newNode(node, level);
        node.children.set(level, child);
      }
      return child;
    }
    if (node.onlyChild === undefined) {
      node.onlyKey = level;
      return node.onlyChild = this.#newNode(node, level);
    }
    if (node.onlyKey === level) return node.onlyChild;
    const child = this.#newNode(node, level);
    node.children = new Map();
    node.children.set(node.onlyKey!, node.onlyChild);
    node.children.set(level, child);
    node.onlyKey = undefined;
    node.onlyChild = undefined;
    return child;
  }

  #newNode(parent: Node, key: string): Node {
    this.#nodeCount++;
    return new Node(parent, key);
  }

  /** Removes empty nodes from `node` up towards the root. */
  #prune(node: Node): void {
    let current = node;
    for (;;) {
      const parent = current.parent;
      if (parent === undefined || !current.isEmpty()) return;
      if (current === parent.plus) parent.plus = undefined;
      else if (current === parent.hash) parent.hash = undefined;
      else if (current === parent.onlyChild) {
        parent.onlyKey = undefined;
        parent.onlyChild = undefined;
      } else {
        // A Map stays until its last child goes, so that churn around two children does not convert back and
        // forth.
        parent.children!.delete(current.key);
        if (parent.children!.size === 0) parent.children = undefined;
      }
      this.#nodeCount--;
      current = parent;
    }
  }
}
