/**
 * Retained messages (section 3.3.1.3), kept in a trie of topic levels so a wildcard subscribe visits only the
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

/** The retained message store. */
export class RetainedStore {
  readonly #root: Node = newNode();
  #bytes = 0;

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

  /** Stores `message` as the retained message of its topic, replacing any [MQTT-3.3.1-5]. */
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

  /** Removes the retained message of `topic` (a retained PUBLISH with an empty payload) [MQTT-3.3.1-6]. */
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

  /** Every retained message whose topic matches `filter` (a valid, non-shared filter). */
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
    // "#" matches the parent level too [MQTT-4.7.1-2]; wildcards at the root skip "$" topics [MQTT-4.7.2-1].
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
