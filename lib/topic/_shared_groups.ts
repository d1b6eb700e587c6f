/**
 * Shared subscriptions in the router: a group per ShareName and filter, its members in subscription order, and
 * the pick of the member that receives each message (5.0 section 4.8.2). Private to the router.
 *
 * @module
 */

import type { Delivery, Subscription } from "./subscription.ts";
import {
  type ClientRecord,
  type Node,
  sharedDelivery,
  type SharedGroup,
  type SharedMember,
} from "./_router_nodes.ts";

/**
 * Adds `client`'s `subscription` (a `$share/{shareName}/...` filter ending at `node`) to its group, creating the
 * group on its first member.
 */
export function joinGroup(
  node: Node,
  shareName: string,
  client: ClientRecord,
  subscription: Subscription,
): SharedMember {
  node.groups ??= new Map();
  let group = node.groups.get(shareName);
  if (group === undefined) {
    group = { name: shareName, filter: subscription.filter, node, members: [], next: 0 };
    node.groups.set(shareName, group);
  }
  const delivery = sharedDelivery(client.id, subscription, group);
  const member: SharedMember = { shared: true, client, group, subscription, delivery };
  group.members.push(member);
  return member;
}

/** Takes a member out of its group, dropping the group with its last member; returns the node, for pruning. */
export function leaveGroup(member: SharedMember): Node {
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

/**
 * Picks the group member for a message to `topic`: round-robin among those who may read it (`canReceive`),
 * skipping unavailable members (`isAvailable`) when possible; undefined when no member may read it. The
 * callbacks come positionally, not in an object: this runs for each matching group of each PUBLISH.
 */
export function pickMember(
  group: SharedGroup,
  topic: string,
  isAvailable: ((clientId: string) => boolean) | undefined,
  canReceive: ((clientId: string, topic: string) => boolean) | undefined,
): Delivery | undefined {
  const members = group.members;
  const count = members.length;
  let index = group.next;
  if (isAvailable !== undefined || canReceive !== undefined) {
    let fallback = -1;
    index = -1;
    for (let i = 0; i < count; i++) {
      const candidate = (group.next + i) % count;
      const id = members[candidate]!.client.id;
      if (canReceive !== undefined && !canReceive(id, topic)) continue;
      if (isAvailable === undefined || isAvailable(id)) {
        index = candidate;
        break;
      }
      if (fallback === -1) fallback = candidate;
    }
    if (index === -1) index = fallback;
    if (index === -1) return undefined;
  }
  group.next = index + 1 === count ? 0 : index + 1;
  return members[index]!.delivery;
}
