/**
 * Acknowledgements go out in the order their packets came: PUBACK and PUBREC in the order of their PUBLISH
 * [MQTT-4.6.0-2 (5.0)] [MQTT-4.6.0-3 (5.0)], PUBCOMP with them. One whose message was stored goes out only after
 * the commit that holds it: a QoS 1/2 message is acknowledged only once it cannot be lost.
 *
 * The acks waiting on one commit form one group, sent together in one write once the commit (and the group
 * before) is done; an ack that waits on nothing joins the last group if one is still waiting. One promise link
 * per ack instead sent one to three PUBACKs per write, the output flushing between links (bench/results/
 * 2026-12-07-cluster.md, "(d)"): cross-node QoS 1 ran at 22-35k msgs/s, with groups 41-92k.
 *
 * @module
 */

import { MqttError } from "../../mqtt_error.ts";
import { REASON_CODE } from "../../packet/reason_code.ts";
import type { Connection } from "../connection.ts";

/** Acks that leave together: the ones waiting on one commit, and the plain ones that came after them. */
class AckGroup {
  readonly connection: Connection;
  /** The commit this group waits for (`CommitQueue.settled()` when its first ack came). */
  readonly commit: Promise<void>;
  readonly #acks: Uint8Array[] = [];
  /** How many acks of {@linkcode Connection.inboundPending} and {@linkcode Connection.pubrecPending} it holds. */
  #inbound = 0;
  #pubrec = 0;

  constructor(connection: Connection, commit: Promise<void>) {
    this.connection = connection;
    this.commit = commit;
  }

  add(bytes: Uint8Array, counted: 0 | 1 | 2): void {
    this.#acks.push(bytes);
    if (counted === 1) this.#inbound++;
    else if (counted === 2) this.#pubrec++;
  }

  /** Sends every ack of the group; called once, when the commit and the group before are done. */
  readonly send = (): void => {
    const connection = this.connection;
    // The last group out leaves nothing waiting: later acks may go straight out again.
    if (open.get(connection) === this) {
      open.delete(connection);
      connection.ackChain = undefined;
    }
    for (const bytes of this.#acks) connection.send(bytes);
    connection.inboundPending -= this.#inbound;
    connection.pubrecPending -= this.#pubrec;
  };

  readonly fail = (error: unknown): void => {
    this.connection.fail(new MqttError(REASON_CODE.UnspecifiedError, "storage failed", { cause: error }));
  };
}

/**
 * The last group of each connection whose acks have not gone out yet. Beside `Connection.ackChain` (its promise)
 * rather than in it, and only while acks wait: an idle connection holds none.
 */
const open = new WeakMap<Connection, AckGroup>();

/**
 * Sends `bytes` in order with earlier acknowledgements; when `durable`, only after the commit holding this
 * message's effects. `counted`: the ack of a PUBLISH counted in {@linkcode Connection.inboundPending} (1) or
 * {@linkcode Connection.pubrecPending} (2), released once sent; 0 for none.
 */
export function sendAck(
  connection: Connection,
  bytes: Uint8Array,
  durable: boolean,
  counted: 0 | 1 | 2,
): void {
  const previous = connection.ackChain;
  if (!durable && previous === undefined) {
    connection.send(bytes);
    if (counted === 1) connection.inboundPending--;
    else if (counted === 2) connection.pubrecPending--;
    return;
  }
  const commit = durable ? connection.core.store!.settled() : undefined;
  const last = open.get(connection);
  if (last !== undefined && (commit === undefined || commit === last.commit)) {
    last.add(bytes, counted);
    return;
  }
  // A new commit: a new group, behind the one before if any. (Without a commit there is always an open group
  // here, as a group is open exactly while `ackChain` is set; `previous` stands in to keep the types honest.)
  const wait = commit ?? previous!;
  const group = new AckGroup(connection, wait);
  group.add(bytes, counted);
  const ready = previous === undefined ? wait : previous.then(() => wait);
  const chain = ready.then(group.send);
  chain.catch(group.fail);
  open.set(connection, group);
  connection.ackChain = chain;
}
