/**
 * The contract every {@linkcode ClusterEngine} passes (the pattern of `tests/broker/persistence_contract.ts`):
 * membership and lease expiry, the route feed, forwarding order and at-least-once for the durable inbox, fencing
 * by epoch, takeover, adoption by exactly one node, retained convergence, and telling a node that the engine came
 * back without its data. `engine_contract_test.ts` runs it on the in-memory engine and on Redis.
 *
 * @module
 */

import assert from "node:assert/strict";
import type {
  ClusterEngine,
  ClusterEvent,
  ConnectionEvent,
  ForwardedMessage,
  InboxBatch,
  Membership,
  SessionOp,
} from "../../lib/cluster/engine.ts";
import type { Message, StoredSession } from "../../lib/broker/storage/persistence.ts";

/** One test's shared engine, with the faults the contract needs. */
export interface ContractCluster {
  /** An engine for one more node. */
  engine(): ClusterEngine;
  /** Makes the engine unreachable for every node (a killed Redis). */
  down(): Promise<void>;
  /** Brings it back, with its data (`keepData`, AOF) or without. */
  up(keepData: boolean): Promise<void>;
  close(): Promise<void>;
}

/** A kind of engine the contract runs on. */
export interface ContractKind {
  readonly name: string;
  /** Why it cannot run here (its tests are then skipped, saying so). */
  unavailable(): string | undefined;
  open(): Promise<ContractCluster>;
}

/** Lease of the contract's nodes, ms: short, so expiry is seen quickly. */
export const CONTRACT_LEASE_MS = 1000;
const WAIT_MS = 8_000;

/** Records a node's events and waits for them. */
export class EventLog {
  readonly events: ClusterEvent[] = [];
  #wake: (() => void) | undefined;

  readonly listener = (event: ClusterEvent): void => {
    this.events.push(event);
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  };

  /** Waits until `pick` finds something among the events so far; returns it. */
  async until<T>(what: string, pick: (events: readonly ClusterEvent[]) => T | undefined): Promise<T> {
    const deadline = Date.now() + WAIT_MS;
    while (true) {
      const found = pick(this.events);
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; events: ${describe(this.events)}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, Math.min(left, 50));
      });
      clearTimeout(timer);
    }
  }

  /** The inbox batches so far. */
  inbox(kind?: "lossy" | "durable"): InboxBatch[] {
    return this.events.flatMap((e) =>
      e.kind === "inbox" && (kind === undefined || e.batch.kind === kind) ? [e.batch] : []
    );
  }

  /** The connection states so far. */
  connection(): ConnectionEvent["state"][] {
    return this.events.flatMap((e) => e.kind === "connection" ? [e.state] : []);
  }
}

function describe(events: readonly ClusterEvent[]): string {
  return JSON.stringify(events.slice(-20), (_k, v) => v instanceof Uint8Array ? `<${v.length} bytes>` : v);
}

/** A joined node of a contract test. */
export interface ContractNode {
  readonly engine: ClusterEngine;
  readonly log: EventLog;
  readonly membership: Membership;
  readonly id: string;
}

function message(topic: string, text: string, qos: 0 | 1 | 2 = 1): Message {
  return { topic, payload: new TextEncoder().encode(text), qos, retain: false };
}

function forwarded(id: string, text: string, qos: 0 | 1 | 2 = 1): ForwardedMessage {
  return { id, message: message("t/x", text, qos), direct: true };
}

function session(clientId: string): StoredSession {
  return {
    clientId,
    protocolVersion: 5,
    expiryInterval: 300,
    subscriptions: [{ filter: "t/#", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
  };
}

function text(m: Message | undefined): string | undefined {
  return m === undefined ? undefined : new TextDecoder().decode(m.payload);
}

/** Waits (polling, up to 2 s) until `done()`. */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const put = (clientId: string): SessionOp => ({ kind: "putSession", session: session(clientId) });

/** Registers the contract's tests for `kind`, named `"<case> [<kind>]"`. */
export function engineContract(kind: ContractKind): void {
  const test = (name: string, fn: (c: Cluster) => Promise<void>): void => {
    const why = kind.unavailable();
    const full = `ClusterEngine contract [${kind.name}]: ${name}`;
    if (why !== undefined) {
      Deno.test({ name: `${full} (skipped: ${why})`, ignore: true, fn: () => {} });
      return;
    }
    Deno.test(full, async () => {
      const shared = await kind.open();
      const cluster = new Cluster(shared);
      try {
        await fn(cluster);
      } finally {
        await cluster.close();
      }
    });
  };

  test("join gives a fresh incarnation and the full route table; liveNodes lists the live ones", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    assert.match(a.id, /^a-/);
    assert.notEqual(a.id, (await c.join("a")).id, "a new incarnation per join");
    await a.engine.addRoutes(["t/+", "$share/g/t/#"]);
    const late = await c.join("late");
    await late.log.until("a's routes at join", (events) => {
      const filters = events.flatMap((e) =>
        e.kind === "route" && e.node === a.id && e.op === "add" ? [e.filter] : []
      );
      return filters.includes("t/+") && filters.includes("$share/g/t/#") ? true : undefined;
    });
    const live = await b.engine.liveNodes();
    assert.ok(live.includes(a.id) && live.includes(b.id) && live.includes(late.id), `live: ${live}`);
    assert.deepEqual([...live], [...live].sort(), "sorted");
  });

  test("every node gets the same peer secret and each one's advertised peer address", async (c) => {
    const a = await c.join("a", "127.0.0.1:4001");
    const b = await c.join("b", "[::1]:4002");
    const quiet = await c.join("quiet");
    assert.ok(a.membership.secret.length >= 32, "a secret of at least 128 bits");
    assert.equal(b.membership.secret, a.membership.secret);
    assert.equal(quiet.membership.secret, a.membership.secret);
    assert.equal(await b.engine.peerAddress(a.id), "127.0.0.1:4001");
    assert.equal(await a.engine.peerAddress(b.id), "[::1]:4002");
    assert.equal(await a.engine.peerAddress(quiet.id), undefined, "no address given");
    assert.equal(await a.engine.peerAddress("nobody-00000000"), undefined);
  });

  test("the peer secret and addresses outlive an engine outage, with or without its data", async (c) => {
    const a = await c.join("a", "127.0.0.1:4001");
    const b = await c.join("b", "127.0.0.1:4002");
    const secret = a.membership.secret;
    await c.outage(true, [a, b]);
    assert.equal(await b.engine.peerAddress(a.id), "127.0.0.1:4001");
    const late = await c.join("late");
    assert.equal(late.membership.secret, secret, "after an outage with the data");
    await c.outage(false, [a, b]);
    const later = await c.join("later");
    assert.equal(later.membership.secret, secret, "written back by the nodes that knew it");
    assert.equal(await later.engine.peerAddress(a.id), "127.0.0.1:4001");
  });

  test("route changes reach every node in version order, idempotent per filter", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    const v1 = await a.engine.addRoutes(["x/#"]);
    const v2 = await a.engine.addRoutes(["x/#", "y"]);
    const v3 = await a.engine.removeRoutes(["x/#"]);
    assert.ok(v1 < v2 && v2 < v3, `versions ${v1} ${v2} ${v3}`);
    const seen = await b.log.until("three route changes", (events) => {
      const routes = events.filter((e) => e.kind === "route" && e.node === a.id);
      return routes.length >= 3 ? routes : undefined;
    });
    assert.deepEqual(
      seen.map((e) => e.kind === "route" ? `${e.op} ${e.filter}` : ""),
      ["add x/#", "add y", "remove x/#"],
    );
    const versions = seen.map((e) => e.kind === "route" ? e.version : 0);
    assert.deepEqual(versions, [...versions].sort((x, y) => x - y));
    assert.equal(versions.at(-1), v3);
    const table = await b.engine.routes();
    assert.deepEqual(table.nodes.get(a.id), ["y"]);
    assert.ok(table.version >= v3);
  });

  test("a node that stops renewing is declared dead once its lease lapses; leave() at once", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    const d = await c.join("d");
    const started = Date.now();
    await c.crash(a);
    await b.log.until(
      "a declared dead",
      (events) => events.find((e) => e.kind === "node" && e.node === a.id && e.state === "dead"),
    );
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= CONTRACT_LEASE_MS * 0.5, `not before its lease (${elapsed} ms)`);
    assert.ok(!(await b.engine.liveNodes()).includes(a.id));
    await d.engine.leave();
    await b.log.until(
      "d gone after leave()",
      (events) => events.find((e) => e.kind === "node" && e.node === d.id && e.state === "dead"),
    );
    assert.ok(!(await b.engine.liveNodes()).includes(d.id));
  });

  test("lossy forwards arrive in order per sender", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    for (let i = 0; i < 5; i++) {
      a.engine.forwardLossy([{
        to: b.id,
        messages: [
          forwarded(`${a.id}:${2 * i}`, `m${2 * i}`, 0),
          forwarded(`${a.id}:${2 * i + 1}`, `m${2 * i + 1}`, 0),
        ],
      }]);
    }
    const ids = await b.log.until("10 lossy messages", () => {
      const got = b.log.inbox("lossy").flatMap((batch) => batch.messages.map((m) => text(m.message)));
      return got.length >= 10 ? got : undefined;
    });
    assert.deepEqual(ids, Array.from({ length: 10 }, (_, i) => `m${i}`));
    assert.ok(b.log.inbox("lossy").every((batch) => batch.from === a.id && batch.cursor === undefined));
  });

  test("durable forwards arrive in commit order; what is not committed comes again after an outage", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    for (let i = 0; i < 3; i++) {
      await a.engine.commit({
        ops: [],
        forwards: [{ to: b.id, messages: [forwarded(`${a.id}:${i}`, `d${i}`)] }],
      });
    }
    const batches = await b.log.until("3 durable batches", () => {
      const got = b.log.inbox("durable");
      return got.length >= 3 ? got : undefined;
    });
    assert.deepEqual(batches.map((batch) => text(batch.messages[0]?.message)), ["d0", "d1", "d2"]);
    assert.ok(batches.every((batch) => batch.cursor !== undefined && batch.from === a.id));
    // Only the first one's effects are committed: the other two are delivered again.
    await b.engine.commit({ ops: [], forwards: [], cursor: batches[0]!.cursor! });
    const before = b.log.inbox("durable").length;
    await c.outage(true, [a, b]);
    const again = await b.log.until("redelivery of d1 and d2", () => {
      const got = b.log.inbox("durable").slice(before).map((batch) => text(batch.messages[0]?.message));
      return got.includes("d1") && got.includes("d2") ? got : undefined;
    });
    assert.ok(!again.includes("d0"), `d0 was committed: ${again}`);
  });

  test("a dead node's uncommitted durable inbox is readable by its adopter, then forgotten", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    for (let i = 0; i < 2; i++) {
      await a.engine.commit({
        ops: [],
        forwards: [{ to: b.id, messages: [forwarded(`${a.id}:${i}`, `q${i}`)] }],
      });
    }
    const first = await b.log.until("q0", () => b.log.inbox("durable")[0]);
    await b.engine.commit({ ops: [], forwards: [], cursor: first.cursor! });
    await c.crash(b);
    await a.log.until(
      "b dead",
      (events) => events.find((e) => e.kind === "node" && e.node === b.id && e.state === "dead"),
    );
    assert.deepEqual((await a.engine.deadInbox(b.id)).map((m) => text(m.message)), ["q1"]);
    await a.engine.forget(b.id);
    assert.deepEqual(await a.engine.deadInbox(b.id), []);
  });

  test("a claim takes over from a live owner that releases; the stale owner's writes are refused", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    const first = await a.engine.claim("X");
    assert.equal(first.session, undefined);
    assert.deepEqual(
      (await a.engine.commit({ ops: [{ op: put("X"), epoch: first.epoch }], forwards: [] })).refused,
      [],
    );
    const claiming = b.engine.claim("X", { timeoutMs: 5000 });
    await a.log.until(
      "takeover of X",
      (events) => events.find((e) => e.kind === "takeover" && e.clientId === "X" && e.by === b.id),
    );
    await a.engine.release("X", first.epoch);
    const second = await claiming;
    assert.ok(second.epoch > first.epoch, `epoch ${first.epoch} -> ${second.epoch}`);
    assert.deepEqual(second.previous, { node: a.id, outcome: "released" });
    assert.equal(second.session?.clientId, "X");
    assert.deepEqual(second.session?.subscriptions.map((s) => s.filter), ["t/#"]);
    // Fencing: A's write at its old epoch is refused, B's goes through.
    const stale = await a.engine.commit({ ops: [{ op: put("X"), epoch: first.epoch }], forwards: [] });
    assert.deepEqual(stale.refused, ["X"]);
    const fresh = await b.engine.commit({ ops: [{ op: put("X"), epoch: second.epoch }], forwards: [] });
    assert.deepEqual(fresh.refused, []);
  });

  test("a claim that waits for a live owner reports the stored session record once the owner steps down", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    const none: (StoredSession | undefined)[] = [];
    const first = await a.engine.claim("E", { waiting: (stored) => none.push(stored) });
    assert.deepEqual(none, [], "nobody held it: no wait, no report");
    // Owned by a live node, no record stored: reported as none (no acknowledged message can wait for it).
    const reports: (StoredSession | undefined)[] = [];
    const claiming = b.engine.claim("E", { timeoutMs: 5000, waiting: (stored) => reports.push(stored) });
    const kicked = (events: readonly ClusterEvent[]) =>
      events.find((e) => e.kind === "takeover" && e.clientId === "E");
    await a.log.until("takeover of E", kicked);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(reports, [], "not before the owner says it steps down");
    a.engine.steppingDown("E", b.id);
    await until(() => reports.length > 0, "the report");
    assert.deepEqual(reports, [undefined], "reported before the owner released");
    await a.engine.release("E", first.epoch);
    const second = await claiming;
    assert.deepEqual(reports, [undefined], "reported once");
    // Stored by its owner: the record comes with the report, without its queues.
    await b.engine.commit({ ops: [{ op: put("E"), epoch: second.epoch }], forwards: [] });
    const again: (StoredSession | undefined)[] = [];
    const third = a.engine.claim("E", { timeoutMs: 5000, waiting: (stored) => again.push(stored) });
    await b.log.until("takeover of E", kicked);
    b.engine.steppingDown("E", a.id);
    await until(() => again.length > 0, "the report");
    assert.equal(again.length, 1);
    assert.equal(again[0]?.clientId, "E");
    assert.deepEqual(again[0]?.subscriptions.map((s) => s.filter), ["t/#"]);
    await b.engine.release("E", second.epoch);
    assert.equal((await third).session?.clientId, "E");
  });

  test("a claim while another node's claim waits is served after it: that node is asked, once it owns the id", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    const d = await c.join("d");
    const first = await a.engine.claim("N");
    const byB = b.engine.claim("N", { timeoutMs: 5000 });
    await a.log.until("a asked by b", (events) => events.find((e) => e.kind === "takeover" && e.by === b.id));
    // d's claim comes while b's waits: d asks b (the claim under way), not a.
    const byD = d.engine.claim("N", { timeoutMs: 5000 });
    await b.log.until("b asked by d", (events) => events.find((e) => e.kind === "takeover" && e.by === d.id));
    assert.equal(a.log.events.filter((e) => e.kind === "takeover").length, 1, "a is asked once");
    await a.engine.release("N", first.epoch);
    const second = await byB;
    assert.deepEqual(second.previous, { node: a.id, outcome: "released" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    let dDone = false;
    void byD.then(() => dDone = true);
    assert.equal(dDone, false, "a's release does not let d go on");
    await b.engine.release("N", second.epoch);
    const third = await byD;
    assert.deepEqual(third.previous, { node: b.id, outcome: "released" });
    assert.ok(third.epoch > second.epoch);
  });

  test("decline(): a node asked for an id it holds nothing of lets the claimer go on at once", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    const first = await a.engine.claim("D");
    const started = Date.now();
    const byB = b.engine.claim("D", { timeoutMs: 5000 });
    await a.log.until("a asked by b", (events) => events.find((e) => e.kind === "takeover" && e.by === b.id));
    a.engine.decline("D", b.id);
    const second = await byB;
    assert.deepEqual(second.previous, { node: a.id, outcome: "released" });
    assert.ok(
      Date.now() - started < 2500,
      `went on at once, not after the timeout (${Date.now() - started} ms)`,
    );
    assert.ok(second.epoch > first.epoch, "the claim took the id (a newer epoch)");
    const stale = await a.engine.commit({ ops: [{ op: put("D"), epoch: first.epoch }], forwards: [] });
    assert.deepEqual(stale.refused, ["D"], "the decliner's old epoch writes nothing");
  });

  test("a claim from an owner that does not answer times out, and its writes are refused after", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    const first = await a.engine.claim("Y");
    const second = await b.engine.claim("Y", { timeoutMs: 300 });
    assert.deepEqual(second.previous, { node: a.id, outcome: "timeout" });
    const outcome = await a.engine.commit({
      ops: [{ op: put("Y"), epoch: first.epoch }, { op: put("Z-never-claimed"), epoch: 1 }],
      forwards: [],
    });
    assert.deepEqual([...outcome.refused].sort(), ["Y", "Z-never-claimed"]);
  });

  test("a session's queues and will come back with the claim, in seq order", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    const claim = await a.engine.claim("Q");
    const will = { clientId: "Q", message: message("will/Q", "bye"), sendAt: 1234 };
    const ops: SessionOp[] = [
      put("Q"),
      {
        kind: "putOutgoing",
        clientId: "Q",
        entry: { seq: 2, message: message("t/2", "two"), qos: 1, retain: false, state: "queued" },
      },
      {
        kind: "putOutgoing",
        clientId: "Q",
        entry: { seq: 1, message: message("t/1", "one"), qos: 2, retain: true, state: "sent", packetId: 7 },
      },
      {
        kind: "putOutgoing",
        clientId: "Q",
        entry: { seq: 3, message: message("t/3", "three"), qos: 1, retain: false, state: "queued" },
      },
      { kind: "deleteOutgoing", clientId: "Q", seq: 3 },
      { kind: "putIncoming", clientId: "Q", packetId: 9 },
      { kind: "putWill", will },
    ];
    await a.engine.commit({ ops: ops.map((op) => ({ op, epoch: claim.epoch })), forwards: [] });
    await a.engine.release("Q", claim.epoch);
    const taken = await b.engine.claim("Q", { timeoutMs: 300 });
    assert.deepEqual(
      taken.session?.outgoing.map((o) => [o.seq, text(o.message), o.qos, o.state, o.packetId]),
      [
        [1, "one", 2, "sent", 7],
        [2, "two", 1, "queued", undefined],
      ],
    );
    assert.equal(taken.session?.outgoing[0]?.retain, true);
    assert.deepEqual(taken.session?.incoming, [9]);
    assert.equal(text(taken.will?.message), "bye");
    assert.equal(taken.will?.sendAt, 1234);
    // deleteSession gives up ownership and everything of the session.
    await b.engine.commit({
      ops: [{ op: { kind: "deleteSession", clientId: "Q" }, epoch: taken.epoch }],
      forwards: [],
    });
    const empty = await a.engine.claim("Q", { timeoutMs: 300 });
    assert.equal(empty.session, undefined);
    assert.equal(empty.will, undefined);
    assert.equal(empty.previous, undefined);
  });

  test("a claim with a will answers the stored will and stores the new one, which the next claim reads", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    const old = { clientId: "W", message: message("will/W", "old"), sendAt: 0 };
    const first = await a.engine.claim("W", { will: old });
    assert.equal(first.will, undefined, "nothing stored before");
    await a.engine.release("W", first.epoch);
    const fresh = { clientId: "W", message: message("will/W", "new"), sendAt: -5000 };
    const second = await b.engine.claim("W", { timeoutMs: 300, will: fresh });
    assert.equal(text(second.will?.message), "old", "the will stored before this claim");
    const third = await a.engine.claim("W", { timeoutMs: 300 });
    assert.equal(text(third.will?.message), "new", "stored by the second claim");
    assert.equal(third.will?.sendAt, -5000);
  });

  test("a dead node's sessions are adopted by exactly one node each", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    const d = await c.join("d");
    for (const id of ["S1", "S2", "S3"]) {
      const claim = await a.engine.claim(id);
      await a.engine.commit({ ops: [{ op: put(id), epoch: claim.epoch }], forwards: [] });
    }
    assert.deepEqual([...await b.engine.owned(a.id)].sort(), ["S1", "S2", "S3"]);
    await c.crash(a);
    await b.log.until(
      "a dead",
      (events) => events.find((e) => e.kind === "node" && e.node === a.id && e.state === "dead"),
    );
    for (const id of ["S1", "S2", "S3"]) {
      const [fromB, fromD] = await Promise.all([b.engine.adopt(id, a.id), d.engine.adopt(id, a.id)]);
      assert.equal([fromB, fromD].filter((x) => x !== undefined).length, 1, `${id} adopted once`);
      const winner = (fromB ?? fromD)!;
      assert.equal(winner.session?.clientId, id);
    }
    assert.deepEqual(await b.engine.owned(a.id), []);
    assert.equal((await b.engine.owned(b.id)).length + (await d.engine.owned(d.id)).length, 3);
    assert.equal(await b.engine.adopt("S1", a.id), undefined, "not twice");
  });

  test("a live node's sessions cannot be adopted", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    await a.engine.claim("L");
    assert.equal(await b.engine.adopt("L", a.id), undefined);
  });

  test("retained writes converge: every node sees the same last write as loadRetained", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    await Promise.all([
      a.engine.retain({ ...message("r/1", "from-a"), retain: true }),
      b.engine.retain({ ...message("r/1", "from-b"), retain: true }),
      a.engine.retain({ ...message("r/2", "kept"), retain: true }),
    ]);
    await b.engine.retain({ ...message("r/3", "gone"), retain: true });
    await a.engine.retain({ ...message("r/3", ""), retain: true });
    const stored = new Map((await a.engine.loadRetained()).map((m) => [m.topic, text(m)]));
    assert.deepEqual([...stored.keys()].sort(), ["r/1", "r/2"]);
    for (const node of [a, b]) {
      const last = await node.log.until("all retained events", (events) => {
        const latest = new Map<string, string | undefined>();
        let count = 0;
        for (const e of events) {
          if (e.kind !== "retained") continue;
          count++;
          latest.set(e.topic, text(e.message));
        }
        return count >= 5 ? latest : undefined;
      });
      assert.equal(last.get("r/1"), stored.get("r/1"), `${node.id} converged on r/1`);
      assert.equal(last.get("r/3"), undefined);
    }
  });

  test("an outage is reported down then up; lost data is reported as reset and reseed restores it", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    await a.engine.addRoutes(["keep/#"]);
    await a.engine.retain({ ...message("ret", "r"), retain: true });
    const claim = await a.engine.claim("P");
    await a.engine.commit({ ops: [{ op: put("P"), epoch: claim.epoch }], forwards: [] });
    await c.outage(true, [a, b]);
    assert.deepEqual(a.log.connection().slice(-2), ["down", "up"]);
    assert.equal((await b.engine.routes()).nodes.get(a.id)?.[0], "keep/#", "data kept");
    await c.outage(false, [a, b]);
    assert.deepEqual(a.log.connection().slice(-2), ["down", "reset"]);
    assert.deepEqual(await b.engine.loadRetained(), [], "data gone");
    await a.engine.reseed({
      routes: ["keep/#"],
      retained: [{ ...message("ret", "r"), retain: true }],
      sessions: [{
        clientId: "P",
        epoch: claim.epoch,
        session: { ...session("P"), outgoing: [], incoming: [] },
      }],
    });
    assert.deepEqual((await b.engine.loadRetained()).map(text), ["r"]);
    assert.deepEqual((await b.engine.routes()).nodes.get(a.id), ["keep/#"]);
    // Still the owner, at the same epoch: its next write goes through.
    assert.deepEqual(
      (await a.engine.commit({ ops: [{ op: put("P"), epoch: claim.epoch }], forwards: [] })).refused,
      [],
    );
    assert.deepEqual([...await b.engine.liveNodes()].sort(), [a.id, b.id].sort());
  });

  test("calls reject with ClusterUnavailableError while the engine is down", async (c) => {
    const a = await c.join("a");
    await c.shared.down();
    await a.log.until("down", () => a.log.connection().includes("down") ? true : undefined);
    const started = Date.now();
    await assert.rejects(() => a.engine.addRoutes(["z"]), { name: "ClusterUnavailableError" });
    await assert.rejects(() => a.engine.claim("C"), { name: "ClusterUnavailableError" });
    await assert.rejects(() => a.engine.commit({ ops: [], forwards: [] }), {
      name: "ClusterUnavailableError",
    });
    assert.ok(Date.now() - started < CONTRACT_LEASE_MS * 2, "bounded, not hanging");
    a.engine.forwardLossy([{ to: a.id, messages: [forwarded("x:1", "lost", 0)] }]);
    await c.shared.up(true);
    await a.log.until("up", () => a.log.connection().at(-1) === "up" ? true : undefined);
  });

  test("stats of live nodes", async (c) => {
    const a = await c.join("a");
    const b = await c.join("b");
    await a.engine.putStats({
      node: a.id,
      clientsConnected: 3,
      messagesReceived: 10,
      messagesSent: 20,
      subscriptions: 4,
    });
    await b.engine.putStats({
      node: b.id,
      clientsConnected: 1,
      messagesReceived: 1,
      messagesSent: 2,
      subscriptions: 0,
    });
    const stats = [...await a.engine.stats()].sort((x, y) => x.node.localeCompare(y.node));
    assert.deepEqual(
      stats.map((s) => [s.node, s.clientsConnected, s.messagesReceived, s.messagesSent, s.subscriptions]),
      [
        [a.id, 3, 10, 20, 4],
        [b.id, 1, 1, 2, 0],
      ].sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );
  });
}

/** The nodes of one contract test. */
class Cluster {
  readonly shared: ContractCluster;
  readonly #nodes: ContractNode[] = [];

  constructor(shared: ContractCluster) {
    this.shared = shared;
  }

  async join(name: string, address?: string): Promise<ContractNode> {
    const engine = this.shared.engine();
    const log = new EventLog();
    const membership = await engine.join({
      node: name,
      leaseMs: CONTRACT_LEASE_MS,
      listener: log.listener,
      ...(address === undefined ? {} : { address }),
    });
    const node = { engine, log, membership, id: membership.incarnation };
    this.#nodes.push(node);
    return node;
  }

  /** Stops a node without leaving (a SIGKILL): its lease lapses. */
  async crash(node: ContractNode): Promise<void> {
    await node.engine.close();
  }

  /** Takes the engine down and up again, and waits until each of `nodes` has heard both. */
  async outage(keepData: boolean, nodes: readonly ContractNode[]): Promise<void> {
    const counts = nodes.map((n) => n.log.connection().length);
    await this.shared.down();
    await Promise.all(
      nodes.map((n, i) =>
        n.log.until("down", () => n.log.connection().slice(counts[i]).includes("down") ? true : undefined)
      ),
    );
    await this.shared.up(keepData);
    const wanted = keepData ? "up" : "reset";
    await Promise.all(
      nodes.map((n, i) =>
        n.log.until(wanted, () => n.log.connection().slice(counts[i]).includes(wanted) ? true : undefined)
      ),
    );
  }

  async close(): Promise<void> {
    for (const node of this.#nodes) await node.engine.close();
    await this.shared.close();
  }
}
