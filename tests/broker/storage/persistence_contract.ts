/**
 * The contract every {@linkcode Persistence} must meet: what one commit writes, a reopened store loads back,
 * exactly. Each store's test file calls {@linkcode persistenceContract} with a factory.
 *
 * @module
 */

import assert from "node:assert/strict";
import type {
  LoadedSession,
  Message,
  OutgoingMessage,
  PendingWill,
  PersistedState,
  Persistence,
  PersistenceOp,
  StoredSession,
} from "../../../lib/broker/storage/persistence.ts";
import type { Subscription } from "../../../lib/topic/router.ts";

/** A fresh, empty store, how to open the same data again (a restart), and how to remove it all. */
export interface PersistenceFixture {
  readonly store: Persistence;
  /** A store over the same data, as a restarted broker would open it (after `store.close()`). */
  readonly reopen: () => Promise<Persistence>;
  /** Closes whatever is still open and removes the data. */
  readonly cleanup: () => Promise<void>;
}

/** Options for {@linkcode persistenceContract}. */
export interface PersistenceContractOptions {
  /** When set, every test is registered as ignored, with this reason appended to its name. */
  readonly ignoreBecause?: string;
}

const encoder = new TextEncoder();

/** Every byte value once, so a store that treats payloads as text fails. */
const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);

function message(topic: string, extra: Partial<Message> = {}): Message {
  return { topic, payload: encoder.encode(`payload of ${topic}`), qos: 1, retain: false, ...extra };
}

/** A message with every field and every forwardable v5 property set. */
const FULL_MESSAGE: Message = {
  topic: "sensors/ünïcode/temp",
  payload: ALL_BYTES,
  qos: 2,
  retain: true,
  properties: {
    payloadFormatIndicator: 1,
    messageExpiryInterval: 3600,
    contentType: "application/octet-stream",
    responseTopic: "replies/42",
    correlationData: Uint8Array.from([0x00, 0xff, 0x10, 0x00]),
    userProperties: [["z", "1"], ["a", "2"], ["z", "3"], ["", ""]],
  },
  expiresAt: 1_900_000_000_123,
  origin: "publisher-1",
};

function sub(filter: string, extra: Partial<Subscription> = {}): Subscription {
  return { filter, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, ...extra };
}

function session(clientId: string, extra: Partial<StoredSession> = {}): StoredSession {
  return { clientId, protocolVersion: 5, expiryInterval: 3600, subscriptions: [], ...extra };
}

function entry(seq: number, msg: Message, extra: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return { seq, message: msg, qos: msg.qos, retain: false, state: "queued", ...extra };
}

function putSession(s: StoredSession): PersistenceOp {
  return { kind: "putSession", session: s };
}

function putOutgoing(clientId: string, e: OutgoingMessage): PersistenceOp {
  return { kind: "putOutgoing", clientId, entry: e };
}

/** The state in a canonical order (stores may return sessions, retained messages and wills in any order). */
function canonical(state: PersistedState): PersistedState {
  const by = <T>(key: (item: T) => string) => (a: T, b: T): number =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
  return {
    retained: [...state.retained].sort(by((m) => m.topic)),
    sessions: [...state.sessions].sort(by((s) => s.clientId)),
    wills: [...state.wills].sort(by((w) => w.clientId)),
  };
}

function loaded(s: StoredSession, outgoing: OutgoingMessage[] = [], incoming: number[] = []): LoadedSession {
  return { ...s, outgoing, incoming };
}

/** What a contract test works with: the current store, which changes at each restart. */
interface StoreUnderTest {
  /** The store as of now (a new object after each restart, for stores that reopen). */
  readonly store: Persistence;
  /** Commits each batch as one commit, in order. */
  commit(...batches: PersistenceOp[][]): Promise<void>;
  /** Closes the store, opens the same data again, and returns what it loads (in a canonical order). */
  restart(): Promise<PersistedState>;
}

/** Commits `batches` one commit each, restarts, and returns what was loaded. */
async function commitAndRestart(t: StoreUnderTest, ...batches: PersistenceOp[][]): Promise<PersistedState> {
  await t.commit(...batches);
  return t.restart();
}

/**
 * Registers the persistence contract tests for one implementation.
 *
 * @param name shown before every test name, e.g. `"MemoryPersistence"`.
 * @param factory makes a fresh, empty store for each test.
 */
export function persistenceContract(
  name: string,
  factory: () => Promise<PersistenceFixture>,
  options: PersistenceContractOptions = {},
): void {
  const suffix = options.ignoreBecause === undefined ? "" : ` ${options.ignoreBecause}`;

  /** Runs `body` on a loaded fresh store. */
  function test(title: string, body: (t: StoreUnderTest) => Promise<void>): void {
    Deno.test({
      name: `${name}: ${title}${suffix}`,
      ignore: options.ignoreBecause !== undefined,
      fn: async () => {
        const fixture = await factory();
        let current = fixture.store;
        try {
          assert.deepEqual(await current.load(), { retained: [], sessions: [], wills: [] });
          await body({
            get store() {
              return current;
            },
            async commit(...batches) {
              for (const ops of batches) await current.commit(ops);
            },
            async restart() {
              await current.close();
              current = await fixture.reopen();
              return canonical(await current.load());
            },
          });
          await current.close();
        } finally {
          await fixture.cleanup();
        }
      },
    });
  }

  test("an empty commit is fine and changes nothing", async (t) => {
    await t.store.commit([]);
    assert.deepEqual(await commitAndRestart(t, []), { retained: [], sessions: [], wills: [] });
  });

  test("putRetained round-trips payload bytes, flags, expiry, origin and every v5 property", async (t) => {
    const plain = message("plain", { qos: 0, retain: true });
    const empty = message("empty", { payload: new Uint8Array(0), properties: {} });
    const state = await commitAndRestart(t, [
      { kind: "putRetained", message: FULL_MESSAGE },
      { kind: "putRetained", message: plain },
      { kind: "putRetained", message: empty },
    ]);
    assert.deepEqual(state.retained, [empty, plain, FULL_MESSAGE]);
    const userProperties = state.retained[2]!.properties!.userProperties;
    assert.deepEqual(
      userProperties,
      [["z", "1"], ["a", "2"], ["z", "3"], ["", ""]],
      "User Property order kept",
    );
    assert.ok(state.retained[2]!.payload instanceof Uint8Array);
  });

  test("putRetained stores only the bytes of a payload view", async (t) => {
    const buffer = Uint8Array.from([9, 9, 1, 2, 3, 9, 9]);
    const state = await commitAndRestart(t, [
      { kind: "putRetained", message: message("view", { payload: buffer.subarray(2, 5) }) },
    ]);
    assert.deepEqual([...state.retained[0]!.payload], [1, 2, 3]);
  });

  test("putRetained round-trips a 1 MiB payload", async (t) => {
    const payload = new Uint8Array(1 << 20);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    const state = await commitAndRestart(t, [
      { kind: "putRetained", message: message("big", { payload }) },
    ]);
    assert.deepEqual(state.retained[0]!.payload, payload);
  });

  test("putRetained replaces by topic and deleteRetained removes", async (t) => {
    const first = message("a/b", { payload: Uint8Array.of(1) });
    const second = message("a/b", { payload: Uint8Array.of(2), qos: 0 });
    const state = await commitAndRestart(
      t,
      [{ kind: "putRetained", message: first }, { kind: "putRetained", message: message("c") }],
      [{ kind: "putRetained", message: second }, { kind: "deleteRetained", topic: "c" }],
      [{ kind: "deleteRetained", topic: "never/stored" }],
    );
    assert.deepEqual(state.retained, [second]);
  });

  test("putSession round-trips subscriptions with every option, in order", async (t) => {
    const subscriptions = [
      sub("z/#", { qos: 0 }),
      sub("a/+/c", {
        qos: 2,
        noLocal: true,
        retainAsPublished: true,
        retainHandling: 2,
        subscriptionId: 268_435_455,
      }),
      sub("$share/group/x", { qos: 1, retainHandling: 1, subscriptionId: 1 }),
      sub("ünïcode/☃"),
    ];
    const v5 = session("v5", {
      subscriptions,
      expiryInterval: 0xffff_ffff,
      disconnectedAt: 1_700_000_000_000,
    });
    const v4 = session("v4", { protocolVersion: 4, expiryInterval: 0 });
    const v3 = session("v3", { protocolVersion: 3, subscriptions: [sub("t")] });
    const state = await commitAndRestart(t, [putSession(v5), putSession(v4), putSession(v3)]);
    assert.deepEqual(state.sessions, [loaded(v3), loaded(v4), loaded(v5)]);
  });

  test("putSession replaces the session but keeps its queues", async (t) => {
    const m = message("q");
    const before = session("c", { subscriptions: [sub("a"), sub("b")], disconnectedAt: 5 });
    const after = session("c", { subscriptions: [sub("b", { qos: 2 })], expiryInterval: 60 });
    const state = await commitAndRestart(
      t,
      [putSession(before), putOutgoing("c", entry(1, m)), {
        kind: "putIncoming",
        clientId: "c",
        packetId: 7,
      }],
      [putSession(after)],
    );
    assert.deepEqual(state.sessions, [loaded(after, [entry(1, m)], [7])]);
    assert.equal("disconnectedAt" in state.sessions[0]!, false, "disconnectedAt cleared");
  });

  test("putOutgoing round-trips every field and loads ordered by seq", async (t) => {
    const entries = [
      entry(30, message("c", { qos: 0 }), { qos: 0, retain: true }),
      entry(2, FULL_MESSAGE, {
        qos: 1,
        subscriptionIds: [3, 1, 268_435_455],
        packetId: 65535,
        state: "sent",
      }),
      entry(2 ** 40, message("big seq", { qos: 2 }), {
        qos: 2,
        packetId: 1,
        state: "released",
        subscriptionIds: [],
      }),
      entry(7, message("d"), { subscriptionIds: [5] }),
    ];
    const state = await commitAndRestart(t, [
      putSession(session("c")),
      ...entries.map((e) => putOutgoing("c", e)),
    ]);
    assert.deepEqual(state.sessions[0]!.outgoing, [...entries].sort((a, b) => a.seq - b.seq));
  });

  test("putOutgoing upserts by seq: state and packetId follow the flow", async (t) => {
    const m = message("flow", { qos: 2 });
    const queued = entry(1, m, { qos: 2 });
    const sent = entry(1, m, { qos: 2, packetId: 10, state: "sent" });
    const released = entry(1, m, { qos: 2, packetId: 10, state: "released" });
    const next = entry(2, m, { qos: 2 });
    let state = await commitAndRestart(
      t,
      [putSession(session("c")), putOutgoing("c", queued), putOutgoing("c", next)],
      [putOutgoing("c", sent)],
    );
    assert.deepEqual(state.sessions[0]!.outgoing, [sent, next]);
    await t.store.commit([putOutgoing("c", released)]);
    state = await t.restart();
    assert.deepEqual(state.sessions[0]!.outgoing, [released, next]);
  });

  test("putOutgoing upsert may change the message", async (t) => {
    const first = message("first");
    const second = message("second", { qos: 2 });
    const state = await commitAndRestart(
      t,
      [putSession(session("c")), putOutgoing("c", entry(1, first))],
      [putOutgoing("c", entry(1, second, { qos: 2 }))],
    );
    assert.deepEqual(state.sessions[0]!.outgoing, [entry(1, second, { qos: 2 })]);
  });

  test("deleteOutgoing removes one entry; a missing one is fine", async (t) => {
    const m = message("x");
    const state = await commitAndRestart(
      t,
      [putSession(session("c")), putOutgoing("c", entry(1, m)), putOutgoing("c", entry(2, m))],
      [
        { kind: "deleteOutgoing", clientId: "c", seq: 1 },
        { kind: "deleteOutgoing", clientId: "c", seq: 99 },
        { kind: "deleteOutgoing", clientId: "nobody", seq: 1 },
      ],
    );
    assert.deepEqual(state.sessions[0]!.outgoing, [entry(2, m)]);
  });

  test("one message queued to many sessions loads whole for each, and outlives partial deletes", async (t) => {
    const m = message("fan/out", { properties: { userProperties: [["k", "v"]] } });
    const clients = ["a", "b", "c", "d"];
    await t.store.commit([
      ...clients.map((c) => putSession(session(c))),
      ...clients.map((c, i) => putOutgoing(c, entry(i + 1, m, { packetId: i + 1 }))),
    ]);
    // Every session but "d" is done with it; later the same object is queued again (a new id after cleanup).
    await t.store.commit([
      { kind: "deleteOutgoing", clientId: "a", seq: 1 },
      { kind: "deleteSession", clientId: "b" },
      { kind: "deleteOutgoing", clientId: "c", seq: 3 },
    ]);
    await t.store.commit([{ kind: "deleteOutgoing", clientId: "d", seq: 4 }]);
    await t.store.commit([putOutgoing("a", entry(10, m)), putOutgoing("d", entry(11, m))]);
    const state = await t.restart();
    assert.deepEqual(state.sessions.map((s) => [s.clientId, s.outgoing]), [
      ["a", [entry(10, m)]],
      ["c", []],
      ["d", [entry(11, m)]],
    ]);
  });

  test("a message loaded after a restart can be queued again", async (t) => {
    const m = message("again");
    let state = await commitAndRestart(t, [
      putSession(session("a")),
      putSession(session("b")),
      putOutgoing("a", entry(1, m)),
    ]);
    const loadedMessage = state.sessions[0]!.outgoing[0]!.message;
    await t.store.commit([putOutgoing("b", entry(1, loadedMessage)), {
      kind: "deleteOutgoing",
      clientId: "a",
      seq: 1,
    }]);
    await t.store.commit([putOutgoing("a", entry(2, loadedMessage))]);
    state = await t.restart();
    assert.deepEqual(state.sessions.map((s) => s.outgoing), [[entry(2, m)], [entry(1, m)]]);
  });

  test("putIncoming and deleteIncoming round-trip QoS 2 packet ids", async (t) => {
    const state = await commitAndRestart(
      t,
      [
        putSession(session("c")),
        { kind: "putIncoming", clientId: "c", packetId: 65535 },
        { kind: "putIncoming", clientId: "c", packetId: 1 },
        { kind: "putIncoming", clientId: "c", packetId: 300 },
        { kind: "putIncoming", clientId: "c", packetId: 1 },
      ],
      [
        { kind: "deleteIncoming", clientId: "c", packetId: 300 },
        { kind: "deleteIncoming", clientId: "c", packetId: 2 },
        { kind: "deleteIncoming", clientId: "nobody", packetId: 1 },
      ],
    );
    assert.deepEqual([...state.sessions[0]!.incoming].sort((a, b) => a - b), [1, 65535]);
  });

  test("putWill round-trips, replaces by client, needs no session; deleteWill removes", async (t) => {
    // The owner's user name goes with the will: the restored will is authorized as that user.
    const w1: PendingWill = {
      clientId: "w1",
      message: FULL_MESSAGE,
      sendAt: 1_700_000_000_000,
      username: "alice",
    };
    const w2: PendingWill = { clientId: "w2", message: message("will/2"), sendAt: 1 };
    const w2b: PendingWill = { clientId: "w2", message: message("will/2b", { qos: 0 }), sendAt: 2 };
    const w3: PendingWill = { clientId: "w3", message: message("will/3"), sendAt: 3 };
    const state = await commitAndRestart(
      t,
      [{ kind: "putWill", will: w1 }, { kind: "putWill", will: w2 }, { kind: "putWill", will: w3 }],
      [{ kind: "putWill", will: w2b }, { kind: "deleteWill", clientId: "w3" }, {
        kind: "deleteWill",
        clientId: "x",
      }],
    );
    assert.deepEqual(state.wills, [w1, w2b]);
    assert.deepEqual(state.sessions, []);
  });

  test("putSession keeps the owner's user name; a session without one has none", async (t) => {
    const owned = session("owned", { username: "alice" });
    const anonymous = session("anonymous");
    const state = await commitAndRestart(t, [
      { kind: "putSession", session: owned },
      { kind: "putSession", session: anonymous },
    ]);
    assert.equal(state.sessions.find((s) => s.clientId === "owned")?.username, "alice");
    assert.equal(state.sessions.find((s) => s.clientId === "anonymous")?.username, undefined);
    assert.ok(!("username" in state.sessions.find((s) => s.clientId === "anonymous")!));
  });

  test("deleteSession removes the session, its outgoing, incoming and will, and nothing else", async (t) => {
    const m = message("shared");
    const keep = session("keep", { subscriptions: [sub("a")] });
    const keepWill: PendingWill = { clientId: "keep", message: message("will/keep"), sendAt: 1 };
    let state = await commitAndRestart(
      t,
      [
        putSession(keep),
        putSession(session("gone", { subscriptions: [sub("a"), sub("b")] })),
        putOutgoing("keep", entry(1, m)),
        putOutgoing("gone", entry(1, m)),
        putOutgoing("gone", entry(2, message("own"))),
        { kind: "putIncoming", clientId: "gone", packetId: 5 },
        { kind: "putIncoming", clientId: "keep", packetId: 5 },
        { kind: "putWill", will: { clientId: "gone", message: message("will/gone"), sendAt: 1 } },
        { kind: "putWill", will: keepWill },
      ],
      [{ kind: "deleteSession", clientId: "gone" }, { kind: "deleteSession", clientId: "never" }],
    );
    assert.deepEqual(state, {
      retained: [],
      sessions: [loaded(keep, [entry(1, m)], [5])],
      wills: [keepWill],
    });
    // A session created again under the same id starts empty.
    await t.store.commit([putSession(session("gone"))]);
    state = await t.restart();
    assert.deepEqual(state.sessions.map((s) => [s.clientId, s.outgoing, s.incoming, s.subscriptions]), [
      ["gone", [], [], []],
      ["keep", [entry(1, m)], [5], [sub("a")]],
    ]);
  });

  test("ops in one commit apply in order", async (t) => {
    const m = message("order");
    const state = await commitAndRestart(t, [
      { kind: "putRetained", message: message("r1") },
      { kind: "deleteRetained", topic: "r1" },
      { kind: "deleteRetained", topic: "r2" },
      { kind: "putRetained", message: message("r2") },
      putSession(session("gone")),
      putOutgoing("gone", entry(1, m)),
      { kind: "deleteSession", clientId: "gone" },
      { kind: "deleteSession", clientId: "back" },
      putSession(session("back")),
      putOutgoing("back", entry(1, m)),
      { kind: "deleteOutgoing", clientId: "back", seq: 1 },
      putOutgoing("back", entry(2, m)),
      { kind: "putIncoming", clientId: "back", packetId: 9 },
      { kind: "deleteIncoming", clientId: "back", packetId: 9 },
      { kind: "putWill", will: { clientId: "w", message: m, sendAt: 1 } },
      { kind: "deleteWill", clientId: "w" },
    ]);
    assert.deepEqual(state, {
      retained: [message("r2")],
      sessions: [loaded(session("back"), [entry(2, m)])],
      wills: [],
    });
  });

  test("a commit that fails applies none of its ops, and the store keeps working", async (t) => {
    await t.store.commit([putSession(session("c")), { kind: "putRetained", message: message("kept") }]);
    await assert.rejects(
      t.store.commit([
        { kind: "putRetained", message: message("rolled/back") },
        { kind: "deleteRetained", topic: "kept" },
        putOutgoing("c", entry(1, message("rolled/back"))),
        { kind: "deleteSession", clientId: "c" },
        putOutgoing("no-such-session", entry(1, message("x"))),
      ]),
      /no-such-session.*no stored session/,
    );
    await assert.rejects(
      t.store.commit([{ kind: "putIncoming", clientId: "nobody", packetId: 1 }]),
      /nobody/,
    );
    await t.store.commit([putOutgoing("c", entry(2, message("after")))]);
    const state = await t.restart();
    assert.deepEqual(state, {
      retained: [message("kept")],
      sessions: [loaded(session("c"), [entry(2, message("after"))])],
      wills: [],
    });
  });

  test("many commits of queue traffic leave exactly what was not deleted", async (t) => {
    const clients = ["a", "b", "c"];
    await t.store.commit(clients.map((c) => putSession(session(c))));
    const expected = new Map<string, OutgoingMessage[]>(clients.map((c) => [c, []]));
    for (let seq = 1; seq <= 200; seq++) {
      const m = message(`t/${seq}`, { payload: Uint8Array.of(seq & 0xff) });
      const ops: PersistenceOp[] = [];
      for (const c of clients) {
        const e = entry(seq, m, { packetId: seq });
        ops.push(putOutgoing(c, e));
        expected.get(c)!.push(e);
        if (seq % 3 !== 0) {
          ops.push({ kind: "deleteOutgoing", clientId: c, seq });
          expected.get(c)!.pop();
        }
      }
      await t.store.commit(ops);
    }
    const state = await t.restart();
    assert.deepEqual(state.sessions.map((s) => s.outgoing), clients.map((c) => expected.get(c)));
    assert.equal(state.sessions[0]!.outgoing.length, 66);
  });
}
