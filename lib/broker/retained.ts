/**
 * Retained messages (5.0 section 3.3.1.3), kept in a trie of topic levels so a wildcard subscribe visits only the
 * branches its filter can reach.
 *
 * @module
 */

import type { Message } from "./storage/persistence.ts";

interface Node {
  readonly children: Map<string, Node>;
  message: Message | undefined;
  /** Messages in this subtree, this node included (lets empty branches be pruned). */
  count: number;
}

function newNode(): Node {
  return { children: new Map(), message: undefined, count: 0 };
}

/** Options for {@linkcode RetainedStore}. */
export interface RetainedStoreOptions {
  /**
   * Most retained messages held; a message for a new topic past it is dropped (replacing stays possible).
   *
   * @default {Infinity}
   */
  readonly maxCount?: number;
  /**
   * Most payload bytes held; a message that would grow the total past it is dropped.
   *
   * @default {Infinity}
   */
  readonly maxBytes?: number;
}

/**
 * The retained message store.
 *
 * @example
 * ```ts
 * import { RetainedStore } from "./retained.ts";
 * const store = new RetainedStore({ maxCount: 1000 });
 * const payload = new TextEncoder().encode("21.5");
 * store.retain({ topic: "sensors/kitchen/temp", payload, qos: 1, retain: true });
 * console.assert(store.match("sensors/+/temp").length === 1);
 * store.retain({ topic: "sensors/kitchen/temp", payload: new Uint8Array(0), qos: 0, retain: true });
 * console.assert(store.size === 0);
 * ```
 */
export class RetainedStore {
  readonly #root: Node = newNode();
  #bytes = 0;
  readonly #maxCount: number;
  readonly #maxBytes: number;

  /** An empty store with the given limits. */
  constructor(options: RetainedStoreOptions = {}) {
    this.#maxCount = options.maxCount ?? Infinity;
    this.#maxBytes = options.maxBytes ?? Infinity;
  }

  /** Number of retained messages. */
  get size(): number {
    return this.#root.count;
  }

  /** Payload bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The retained message of `topic`. */
  get(topic: string): Message | undefined {
    let node: Node | undefined = this.#root;
    for (const level of topic.split("/")) {
      node = node.children.get(level);
      if (node === undefined) return undefined;
    }
    return node.message;
  }

  /**
   * Handles a retained PUBLISH: an empty payload deletes the topic's retained message and is not stored
   * [MQTT-3.3.1-6 (5.0)] [MQTT-3.3.1-7 (5.0)]; any other replaces it [MQTT-3.3.1-5 (5.0)], unless that would
   * pass the count or byte limit. `message` is kept as given (not copied).
   *
   * @returns what was done: stored (new or replacing), deleted, nothing (an empty payload for a topic without a
   * retained message), or dropped at the count or byte limit.
   */
  retain(message: Message): "stored" | "deleted" | "unchanged" | "count-limit" | "byte-limit" {
    if (message.payload.length === 0) return this.delete(message.topic) ? "deleted" : "unchanged";
    const existing = this.get(message.topic);
    if (existing === undefined && this.size >= this.#maxCount) return "count-limit";
    const growth = message.payload.length - (existing?.payload.length ?? 0);
    if (growth > 0 && this.#bytes + growth > this.#maxBytes) return "byte-limit";
    this.set(message);
    return "stored";
  }

  /**
   * Removes the messages whose Message Expiry Interval has passed at `now` (ms since the epoch)
   * (5.0 section 3.3.2.3.3).
   *
   * @returns the topics removed.
   */
  sweepExpired(now: number): string[] {
    const expired: string[] = [];
    for (const message of this.all()) {
      if (message.expiresAt !== undefined && message.expiresAt <= now) expired.push(message.topic);
    }
    for (const topic of expired) this.delete(topic);
    return expired;
  }

  /**
   * Stores `message` as the retained message of its topic, replacing any [MQTT-3.3.1-5 (5.0)], whatever its
   * payload and the limits (restoring from storage; {@linkcode RetainedStore.retain} applies both).
   */
  set(message: Message): void {
    const path: Node[] = [this.#root];
    let node = this.#root;
    for (const level of message.topic.split("/")) {
      let child = node.children.get(level);
      if (child === undefined) {
        child = newNode();
        node.children.set(level, child);
      }
      node = child;
      path.push(node);
    }
    const previous = node.message;
    node.message = message;
    this.#bytes += message.payload.length - (previous?.payload.length ?? 0);
    if (previous === undefined) { for (const n of path) n.count++; }
  }

  /** Removes the retained message of `topic`; returns false when it had none. */
  delete(topic: string): boolean {
    const path: [Node, string][] = [];
    let node = this.#root;
    for (const level of topic.split("/")) {
      const child = node.children.get(level);
      if (child === undefined) return false;
      path.push([node, level]);
      node = child;
    }
    const previous = node.message;
    if (previous === undefined) return false;
    node.message = undefined;
    this.#bytes -= previous.payload.length;
    this.#root.count--;
    for (const [parent, level] of path) {
      const child = parent.children.get(level)!;
      child.count--;
      if (child.count === 0) {
        parent.children.delete(level);
        break;
      }
    }
    return true;
  }

  /**
   * Every retained message whose topic matches `filter` (a valid, non-shared filter), by the rules of
   * `matchesFilter` (tests/topic/matcher_contract_test.ts holds it to them).
   */
  match(filter: string): Message[] {
    const out: Message[] = [];
    collect(this.#root, filter.split("/"), 0, true, out);
    return out;
  }

  /** Every retained message. */
  *all(): IterableIterator<Message> {
    const stack: Node[] = [this.#root];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (node.message !== undefined) yield node.message;
      for (const child of node.children.values()) stack.push(child);
    }
  }
}

function collect(node: Node, levels: readonly string[], index: number, root: boolean, out: Message[]): void {
  if (index === levels.length) {
    if (node.message !== undefined) out.push(node.message);
    return;
  }
  const level = levels[index]!;
  if (level === "#") {
    // "#" matches the parent level too [MQTT-4.7.1-2 (3.1.1)]; wildcards at the root skip "$" topics
    // [MQTT-4.7.2-1 (5.0)].
    if (!root && node.message !== undefined) out.push(node.message);
    const stack: Node[] = [];
    for (const [name, child] of node.children) if (!(root && name.startsWith("$"))) stack.push(child);
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (n.message !== undefined) out.push(n.message);
      for (const child of n.children.values()) stack.push(child);
    }
    return;
  }
  if (level === "+") {
    for (const [name, child] of node.children) {
      if (root && name.startsWith("$")) continue;
      collect(child, levels, index + 1, false, out);
    }
    return;
  }
  const child = node.children.get(level);
  if (child !== undefined) collect(child, levels, index + 1, false, out);
}
