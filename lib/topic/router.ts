/**
 * The subscription router: which sessions receive a PUBLISH. {@linkcode TopicRouter} is a trie keyed by topic
 * level with dedicated `+` and `#` branches, so matching costs time in proportion to the topic's depth rather
 * than the number of subscriptions.
 *
 * @module
 */

import { parseSharedFilter, validateTopicFilter } from "./topic.ts";

/** A Quality of Service level. */
export type QoS = 0 | 1 | 2;

/** One subscription of a session, as granted. */
export interface Subscription {
  /** The Topic Filter exactly as subscribed, e.g. `a/+` or `$share/g/a/+`. */
  readonly filter: string;
  /** The granted maximum QoS. */
  readonly qos: QoS;
  /** Do not deliver the client's own PUBLISHes to it [MQTT-3.8.3-3]. */
  readonly noLocal: boolean;
  /** Keep the RETAIN flag of forwarded PUBLISHes [MQTT-3.3.1-12]. */
  readonly retainAsPublished: boolean;
  /** When retained messages are sent on subscribe (0 always, 1 if new, 2 never). */
  readonly retainHandling: 0 | 1 | 2;
  /** The v5 Subscription Identifier, 1 to 268,435,455. */
  readonly subscriptionId?: number;
}

/** One session that receives a PUBLISH. */
export interface Delivery {
  /** The receiving session. */
  readonly clientId: string;
  /** Highest QoS of the session's matching non-shared subscriptions [MQTT-3.3.4-2]; for a shared one, its QoS. */
  readonly qos: QoS;
  /** True if any matching subscription has Retain As Published set. */
  readonly retainAsPublished: boolean;
  /** Every matching subscription's identifier [MQTT-3.3.4-3] [MQTT-3.3.4-5]; empty when none has one. */
  readonly subscriptionIds: readonly number[];
  /** The ShareName, when this delivery comes from a shared subscription. */
  readonly shareGroup?: string;
  /** For a shared delivery: the full `$share/...` filter that matched. */
  readonly filter?: string;
}

/** Options for {@linkcode SubscriptionRouter.match}. */
export interface MatchOptions {
  /** The publishing client: its subscriptions with No Local set are skipped [MQTT-3.8.3-3]. */
  readonly publisherId?: string;
  /**
   * Whether a shared group member can take a message now (online, not full). Members for which it returns
   * false are skipped; when none is available, the next member is picked anyway and the message queues in its
   * session. It must not call back into the router.
   *
   * @default {() => true}
   */
  readonly isAvailable?: (clientId: string) => boolean;
}

/** What the broker needs from a subscription store; {@linkcode TopicRouter} and `NaiveRouter` implement it. */
export interface SubscriptionRouter {
  /**
   * Adds or replaces (same clientId and filter) a subscription.
   *
   * @returns true when it replaced an existing one [MQTT-3.8.4-3].
   * @throws {MqttError} Topic Filter invalid (0x8F) for a malformed filter.
   */
  subscribe(clientId: string, subscription: Subscription): boolean;
  /** Removes a subscription; returns false when no such subscription existed. */
  unsubscribe(clientId: string, filter: string): boolean;
  /** Removes every subscription of a session. */
  unsubscribeAll(clientId: string): void;
  /** A session's subscriptions, in the order they were first made. */
  subscriptionsOf(clientId: string): readonly Subscription[];
  /**
   * The sessions that receive a PUBLISH to `topic`: each session once for its non-shared subscriptions, plus
   * one entry per matching shared group with the member picked (round-robin) for this message.
   */
  match(topic: string, options?: MatchOptions): Delivery[];
  /** The number of subscriptions. */
  readonly size: number;
}

const DOLLAR = 0x24; // "$"
const NO_IDS: readonly number[] = Object.freeze([]);
/** Stands in for the output list between match() calls, so the router does not hold on to the caller's. */
const IDLE: Delivery[] = [];

/** A trie node: one topic level of one or more filters. */
class Node {
  readonly parent: Node | undefined;
  readonly key: string;
  children: Map<string, Node> | undefined = undefined;
  plus: Node | undefined = undefined;
  hash: Node | undefined = undefined;
  /** Non-shared subscriptions whose filter ends here. */
  direct: DirectEntry[] | undefined = undefined;
  /** Shared groups whose filter (after the ShareName) ends here, by ShareName. */
  groups: Map<string, SharedGroup> | undefined = undefined;

  constructor(parent: Node | undefined, key: string) {
    this.parent = parent;
    this.key = key;
  }

  isEmpty(): boolean {
    return this.direct === undefined && this.groups === undefined && this.children === undefined &&
      this.plus === undefined && this.hash === undefined;
  }
}

/** A session's entry: its subscriptions by filter, and scratch state for one match() call. */
class ClientRecord {
  readonly id: string;
  readonly subscriptions = new Map<string, DirectEntry | SharedMember>();
  /** The match() call that last produced a delivery for this session. */
  stamp = 0;
  delivery: MutableDelivery | undefined = undefined;

  constructor(id: string) {
    this.id = id;
  }
}

interface DirectEntry {
  readonly shared: false;
  readonly client: ClientRecord;
  readonly node: Node;
  subscription: Subscription;
  /** Position in `node.direct`, for O(1) removal. */
  index: number;
}

interface SharedMember {
  readonly shared: true;
  readonly client: ClientRecord;
  readonly group: SharedGroup;
  subscription: Subscription;
}

interface SharedGroup {
  readonly name: string;
  readonly filter: string;
  readonly node: Node;
  /** In subscription order; `next` is the member the next message goes to. */
  readonly members: SharedMember[];
  next: number;
}

interface MutableDelivery {
  readonly clientId: string;
  qos: QoS;
  retainAsPublished: boolean;
  subscriptionIds: readonly number[];
  readonly shareGroup?: string;
  readonly filter?: string;
}

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
  // State of the match() call in progress, kept here so the recursive walk passes only what changes.
  #stamp = 0;
  #out: Delivery[] = IDLE;
  #publisherId: string | undefined = undefined;
  #isAvailable: ((clientId: string) => boolean) | undefined = undefined;

  /** The number of subscriptions. */
  get size(): number {
    return this.#size;
  }

  /** The number of trie nodes, not counting the root; 0 once every subscription is gone. */
  get nodeCount(): number {
    return this.#nodeCount;
  }

  /**
   * Adds or replaces (same clientId and filter) a subscription.
   *
   * @returns true when it replaced an existing one [MQTT-3.8.4-3].
   * @throws {MqttError} Topic Filter invalid (0x8F) for a malformed filter.
   */
  subscribe(clientId: string, subscription: Subscription): boolean {
    const filter = subscription.filter;
    const existing = this.#clients.get(clientId)?.subscriptions.get(filter);
    if (existing !== undefined) {
      existing.subscription = subscription; // [MQTT-3.8.4-3]
      return true;
    }
    const shared = parseSharedFilter(filter);
    if (shared === undefined) validateTopicFilter(filter);
    let client = this.#clients.get(clientId);
    if (client === undefined) {
      client = new ClientRecord(clientId);
      this.#clients.set(clientId, client);
    }
    if (shared === undefined) {
      const node = this.#nodeFor(filter, 0);
      node.direct ??= [];
      const entry: DirectEntry = { shared: false, client, node, subscription, index: node.direct.length };
      node.direct.push(entry);
      client.subscriptions.set(filter, entry);
    } else {
      const node = this.#nodeFor(filter, filter.length - shared.filter.length);
      node.groups ??= new Map();
      let group = node.groups.get(shared.group);
      if (group === undefined) {
        group = { name: shared.group, filter, node, members: [], next: 0 };
        node.groups.set(shared.group, group);
      }
      const member: SharedMember = { shared: true, client, group, subscription };
      group.members.push(member);
      client.subscriptions.set(filter, member);
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
    if (client.subscriptions.size === 0) this.#clients.delete(clientId);
    this.#size--;
    this.#prune(entry.shared ? this.#removeMember(entry) : this.#removeDirect(entry));
    return true;
  }

  /** Removes every subscription of a session. */
  unsubscribeAll(clientId: string): void {
    const client = this.#clients.get(clientId);
    if (client === undefined) return;
    for (const filter of [...client.subscriptions.keys()]) this.unsubscribe(clientId, filter);
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
    // Filters starting with a wildcard do not match topics starting with "$" [MQTT-4.7.2-1].
    this.#visit(this.#root, topic, 0, topic.charCodeAt(0) !== DOLLAR);
    this.#out = IDLE;
    this.#isAvailable = undefined;
    return out;
  }

  /**
   * Visits `node`, reached by the topic's levels before index `t` (`t > topic.length` once every level is
   * consumed). `wild` says whether the wildcard branches may be followed at this level.
   */
  #visit(node: Node, topic: string, t: number, wild: boolean): void {
    if (wild && node.hash !== undefined) this.#collect(node.hash); // "#" also matches the parent level
    const length = topic.length;
    if (t > length) {
      this.#collect(node);
      return;
    }
    let end = topic.indexOf("/", t);
    if (end === -1) end = length;
    const children = node.children;
    if (children !== undefined) {
      const child = children.get(topic.slice(t, end));
      if (child !== undefined) this.#visit(child, topic, end + 1, true);
    }
    if (wild && node.plus !== undefined) this.#visit(node.plus, topic, end + 1, true);
  }

  /** Adds the subscriptions that end at `node` to the current match's output. */
  #collect(node: Node): void {
    const direct = node.direct;
    if (direct !== undefined) {
      const stamp = this.#stamp;
      const publisherId = this.#publisherId;
      for (let i = 0; i < direct.length; i++) {
        const entry = direct[i]!;
        const subscription = entry.subscription;
        const client = entry.client;
        if (subscription.noLocal && client.id === publisherId) continue; // [MQTT-3.8.3-3]
        const id = subscription.subscriptionId;
        if (client.stamp !== stamp) {
          client.stamp = stamp;
          const delivery: MutableDelivery = {
            clientId: client.id,
            qos: subscription.qos,
            retainAsPublished: subscription.retainAsPublished,
            subscriptionIds: id === undefined ? NO_IDS : [id],
          };
          client.delivery = delivery;
          this.#out.push(delivery);
        } else {
          // One delivery per session with the highest QoS and every identifier [MQTT-3.3.4-2] [MQTT-3.3.4-3]
          const delivery = client.delivery!;
          if (subscription.qos > delivery.qos) delivery.qos = subscription.qos;
          if (subscription.retainAsPublished) delivery.retainAsPublished = true;
          if (id !== undefined) delivery.subscriptionIds = delivery.subscriptionIds.concat(id);
        }
      }
    }
    if (node.groups !== undefined) {
      for (const group of node.groups.values()) this.#out.push(this.#pick(group));
    }
  }

  /** Picks the group member for this message: round-robin, skipping unavailable members when possible. */
  #pick(group: SharedGroup): Delivery {
    const members = group.members;
    const count = members.length;
    let index = group.next;
    const isAvailable = this.#isAvailable;
    if (isAvailable !== undefined) {
      for (let i = 0; i < count; i++) {
        const candidate = (group.next + i) % count;
        if (isAvailable(members[candidate]!.client.id)) {
          index = candidate;
          break;
        }
      }
    }
    group.next = index + 1 === count ? 0 : index + 1;
    const subscription = members[index]!.subscription;
    const id = subscription.subscriptionId;
    return {
      clientId: members[index]!.client.id,
      qos: subscription.qos,
      retainAsPublished: subscription.retainAsPublished,
      subscriptionIds: id === undefined ? NO_IDS : [id],
      shareGroup: group.name,
      filter: group.filter,
    };
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
    node.children ??= new Map();
    let child = node.children.get(level);
    if (child === undefined) {
      child = this.#newNode(node, level);
      node.children.set(level, child);
    }
    return child;
  }

  #newNode(parent: Node, key: string): Node {
    this.#nodeCount++;
    return new Node(parent, key);
  }

  #removeDirect(entry: DirectEntry): Node {
    const node = entry.node;
    const direct = node.direct!;
    const last = direct.pop()!;
    if (last !== entry) {
      direct[entry.index] = last;
      last.index = entry.index;
    }
    if (direct.length === 0) node.direct = undefined;
    return node;
  }

  #removeMember(member: SharedMember): Node {
    const group = member.group;
    const members = group.members;
    const index = members.indexOf(member);
    members.splice(index, 1);
    // Keep the round-robin position on the member that was next.
    if (index < group.next) group.next--;
    if (group.next >= members.length) group.next = 0;
    const node = group.node;
    if (members.length === 0) {
      node.groups!.delete(group.name);
      if (node.groups!.size === 0) node.groups = undefined;
    }
    return node;
  }

  /** Removes empty nodes from `node` up towards the root. */
  #prune(node: Node): void {
    let current = node;
    for (;;) {
      const parent = current.parent;
      if (parent === undefined || !current.isEmpty()) return;
      if (current === parent.plus) parent.plus = undefined;
      else if (current === parent.hash) parent.hash = undefined;
      else {
        parent.children!.delete(current.key);
        if (parent.children!.size === 0) parent.children = undefined;
      }
      this.#nodeCount--;
      current = parent;
    }
  }
}
