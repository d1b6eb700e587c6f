/**
 * The trie nodes and per-session records of `TopicRouter`, the ready-made deliveries they hold, and the upkeep
 * of a node's parallel arrays of non-shared subscriptions.
 * Private to the router.
 *
 * @module
 */

import type { QoS } from "../packet/packet_type.ts";
import type { Delivery, Subscription } from "./subscription.ts";

// A direct subscription's flags (`Node.flags`): two bits, and the session's number above them. A subscription
// with neither bit set is delivered as is.
export const NO_LOCAL = 0b01;
/** Another subscription of the same session may match the same topics: match() must merge them. */
export const OVERLAPS = 0b10;
export const FLAG_BITS = 0b11;
export const CLIENT_SHIFT = 2;

const NO_IDS: readonly number[] = Object.freeze([]);

/**
 * A trie node: one topic level of one or more filters. The non-shared subscriptions that end here are stored
 * as parallel arrays holding each one's ready-made (immutable) delivery, so match() mostly copies pointers.
 */
export class Node {
  readonly parent: Node | undefined;
  readonly key: string;
  // Children by level. Most nodes have a single child, kept in two fields rather than a Map: less memory, and
  // a string comparison instead of a hash lookup. `children` takes over from the second child on.
  onlyKey: string | undefined = undefined;
  onlyChild: Node | undefined = undefined;
  children: Map<string, Node> | undefined = undefined;
  plus: Node | undefined = undefined;
  hash: Node | undefined = undefined;
  /** The deliveries of the non-shared subscriptions ending here; `undefined` when there are none. */
  deliveries: Delivery[] | undefined = undefined;
  /** Their `NO_LOCAL` and `OVERLAPS` bits and session numbers; allocated with `deliveries`. */
  flags: number[] | undefined = undefined;
  /** Their bookkeeping entries, for removal; allocated with `deliveries`. */
  entries: DirectEntry[] | undefined = undefined;
  /** How many of `flags` have a bit set; when none, match() copies `deliveries` without looking at each. */
  flagged = 0;
  /** Shared groups whose filter (after the ShareName) ends here, by ShareName. */
  groups: Map<string, SharedGroup> | undefined = undefined;

  constructor(parent: Node | undefined, key: string) {
    this.parent = parent;
    this.key = key;
  }

  isEmpty(): boolean {
    return this.deliveries === undefined && this.groups === undefined &&
      this.onlyChild === undefined &&
      this.children === undefined &&
      this.plus === undefined && this.hash === undefined;
  }
}

/** A session's entry: its subscriptions by filter. */
export class ClientRecord {
  readonly id: string;
  /** A small number naming the session in the router's per-session arrays; reused once the session is gone. */
  readonly number: number;
  readonly subscriptions = new Map<string, DirectEntry | SharedMember>();
  /** Its non-shared subscriptions, the ones compared for overlaps, and (in step) their filters and shapes. */
  readonly direct: DirectEntry[] = [];
  readonly directFilters: string[] = [];
  readonly directShapes: number[] = [];
  /** Past `OVERLAP_SCAN_LIMIT` (`_session_overlaps.ts`): every direct subscription is treated as overlapping. */
  crowded = false;

  constructor(id: string, number: number) {
    this.id = id;
    this.number = number;
  }
}

export interface DirectEntry {
  readonly shared: false;
  readonly client: ClientRecord;
  readonly node: Node;
  subscription: Subscription;
  delivery: Delivery;
  /** Position in the node's arrays, for O(1) removal. */
  index: number;
  /** Position in its session's `direct` list. */
  directIndex: number;
  /** How many other direct subscriptions of the session can match a topic this one matches. */
  overlaps: number;
}

export interface SharedMember {
  readonly shared: true;
  readonly client: ClientRecord;
  readonly group: SharedGroup;
  subscription: Subscription;
  delivery: Delivery;
}

export interface SharedGroup {
  readonly name: string;
  readonly filter: string;
  readonly node: Node;
  /** In subscription order; `next` is the member the next message goes to. */
  readonly members: SharedMember[];
  next: number;
}

export interface MutableDelivery {
  readonly clientId: string;
  qos: QoS;
  retainAsPublished: boolean;
  subscriptionIds: readonly number[];
  readonly shareGroup?: string;
  readonly filter?: string;
}

/** The ready-made delivery of a non-shared subscription; immutable, so match() can hand it out every time. */
export function directDelivery(
  clientId: string,
  subscription: Subscription,
): Delivery {
  const id = subscription.subscriptionId;
  return Object.freeze({
    clientId,
    qos: subscription.qos,
    retainAsPublished: subscription.retainAsPublished,
    subscriptionIds: id === undefined ? NO_IDS : Object.freeze([id]),
  });
}

/** The ready-made delivery of a shared group member: a direct one that also names its group. */
export function sharedDelivery(
  clientId: string,
  subscription: Subscription,
  group: SharedGroup,
): Delivery {
  return Object.freeze({
    ...directDelivery(clientId, subscription),
    shareGroup: group.name,
    filter: group.filter,
  });
}

/**
 * Appends a non-shared subscription to `node`'s parallel arrays and returns its entry, with no flag bits yet:
 * {@linkcode writeEntry} sets them once its overlaps are counted.
 */
export function addEntry(
  node: Node,
  client: ClientRecord,
  subscription: Subscription,
  delivery: Delivery,
): DirectEntry {
  if (node.deliveries === undefined) {
    node.deliveries = [];
    node.flags = [];
    node.entries = [];
  }
  const entry: DirectEntry = {
    shared: false,
    client,
    node,
    subscription,
    delivery,
    index: node.deliveries.length,
    directIndex: client.direct.length,
    overlaps: 0,
  };
  node.deliveries.push(delivery);
  node.flags!.push(client.number << CLIENT_SHIFT);
  node.entries!.push(entry);
  return entry;
}

/** Writes an entry's delivery and flags into its node's arrays. */
export function writeEntry(entry: DirectEntry): void {
  const node = entry.node;
  const flags = node.flags!;
  const before = flags[entry.index]! & FLAG_BITS;
  const after = (entry.subscription.noLocal ? NO_LOCAL : 0) |
    (entry.overlaps > 0 || entry.client.crowded ? OVERLAPS : 0);
  flags[entry.index] = (entry.client.number << CLIENT_SHIFT) | after;
  if (before === 0 && after !== 0) node.flagged++;
  else if (before !== 0 && after === 0) node.flagged--;
  node.deliveries![entry.index] = entry.delivery;
}

/** Swap-removes an entry from its node's parallel arrays; returns the node, for pruning. */
export function removeEntry(entry: DirectEntry): Node {
  const node = entry.node;
  const entries = node.entries!;
  const deliveries = node.deliveries!;
  const flags = node.flags!;
  const last = entries.length - 1;
  const index = entry.index;
  if ((flags[index]! & FLAG_BITS) !== 0) node.flagged--;
  if (index !== last) {
    const moved = entries[last]!;
    entries[index] = moved;
    deliveries[index] = deliveries[last]!;
    flags[index] = flags[last]!;
    moved.index = index;
  }
  entries.pop();
  deliveries.pop();
  flags.pop();
  if (entries.length === 0) {
    node.deliveries = undefined;
    node.flags = undefined;
    node.entries = undefined;
  }
  return node;
}
