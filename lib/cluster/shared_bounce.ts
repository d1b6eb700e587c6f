/**
 * A `$share` message forwarded to a node that has no member of the group any more: its last member left while
 * the publisher's node still routed by a table that did not know (route changes travel through the engine). A
 * QoS 1/2 message goes on once to another node that has a member (CLUSTER.md §3.6), in this node's next commit
 * together with the inbox cursor that covers it, so it is not lost in between. QoS 0 is dropped, as any QoS 0
 * message may be; a message bounced once is not bounced again (no ping-pong while tables disagree).
 *
 * @module
 */

import type { Delivery } from "../topic/router.ts";
import type { ForwardedMessage, Incarnation } from "./engine.ts";
import type { ClusterNode } from "./node.ts";

/** Marks a bounced forward's id: `<origin id>^<bouncing node>` (a new id, so no node takes it for a duplicate). */
const BOUNCED = "^";

/** Passes on the groups of `forwarded` that no local delivery of `deliveries` served. */
export function bounceShared(
  node: ClusterNode,
  forwarded: ForwardedMessage,
  deliveries: readonly Delivery[],
): void {
  const groups = forwarded.shared;
  if (groups === undefined || forwarded.message.qos === 0 || forwarded.id.includes(BOUNCED)) return;
  let missing: string[] | undefined;
  for (const filter of groups) {
    if (!deliveries.some((delivery) => delivery.filter === filter)) (missing ??= []).push(filter);
  }
  if (missing === undefined) return;
  const remote = node.remote.router.match(forwarded.message.topic);
  const targets = new Map<Incarnation, string[]>();
  for (const filter of missing) {
    const pick = remote.find((delivery) => delivery.filter === filter); // one node per group, round robin
    if (pick === undefined) continue; // no member anywhere now
    let list = targets.get(pick.clientId);
    if (list === undefined) targets.set(pick.clientId, list = []);
    list.push(filter);
  }
  const id = `${forwarded.id}${BOUNCED}${node.incarnation}`;
  for (const [to, shared] of targets) {
    node.forwarder.add(to, { id, message: forwarded.message, direct: false, shared }, true);
  }
}
