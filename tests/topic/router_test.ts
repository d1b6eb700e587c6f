import assert from "node:assert/strict";
import { MqttError } from "../../lib/mqtt_error.ts";
import { REASON_CODE } from "../../lib/packet/reason_code.ts";
import { NaiveRouter } from "./_naive_router.ts";
import {
  type Delivery,
  type MatchOptions,
  type QoS,
  type Subscription,
  type SubscriptionRouter,
  TopicRouter,
} from "../../lib/topic/router.ts";
import { mulberry32 } from "../_prng.ts";
import { matchesFilter } from "../../lib/topic/topic.ts";
import { filterShape, filtersOverlap, shapesMayOverlap } from "../../lib/topic/_filter_overlap.ts";
import { allTopics, randomFilter as randomMatcherFilter } from "./_matcher_cases.ts";

type Extra = Partial<Omit<Subscription, "filter" | "qos">>;

function sub(filter: string, qos: QoS = 0, extra: Extra = {}): Subscription {
  return {
    filter,
    qos,
    noLocal: false,
    retainAsPublished: false,
    retainHandling: 0,
    ...extra,
  };
}

/** Deliveries in a stable order with sorted identifiers, for comparison. */
function normalize(deliveries: readonly Delivery[]): Delivery[] {
  return deliveries
    .map((d) => ({
      ...d,
      subscriptionIds: [...d.subscriptionIds].sort((a, b) => a - b),
    }))
    .sort((a, b) => key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
}

function key(d: Delivery): string {
  return `${d.filter ?? ""}\u0000${d.clientId}`;
}

/** The client ids a topic reaches directly (not through a shared group), sorted. */
function clients(
  router: SubscriptionRouter,
  topic: string,
  options?: MatchOptions,
): string[] {
  return router.match(topic, options).filter((d) => d.shareGroup === undefined)
    .map((d) => d.clientId).sort();
}

/** The contract every {@linkcode SubscriptionRouter} must meet. */
function routerContract(name: string, create: () => SubscriptionRouter): void {
  Deno.test(`${name}: match() delivers an exact filter to its topic only`, () => {
    const router = create();
    router.subscribe("a", sub("sport/tennis/player1"));
    assert.deepEqual(clients(router, "sport/tennis/player1"), ["a"]);
    assert.deepEqual(clients(router, "sport/tennis/player2"), []);
    assert.deepEqual(clients(router, "sport/tennis"), []);
    assert.deepEqual(clients(router, "sport/tennis/player1/ranking"), []);
  });

  Deno.test(`${name}: match() matches "+" to exactly one level, empty ones too [MQTT-4.7.1-3 (3.1.1)]`, () => {
    const router = create();
    router.subscribe("a", sub("sport/+/player1"));
    router.subscribe("b", sub("+"));
    router.subscribe("c", sub("+/+"));
    assert.deepEqual(clients(router, "sport/tennis/player1"), ["a"]);
    assert.deepEqual(clients(router, "sport//player1"), ["a"]);
    assert.deepEqual(clients(router, "sport"), ["b"]);
    assert.deepEqual(clients(router, "/finance"), ["c"]);
    assert.deepEqual(clients(router, "sport/tennis/player1/x"), []);
  });

  Deno.test(`${name}: match() matches "#" to every level below [MQTT-4.7.1-2 (3.1.1)]`, () => {
    const router = create();
    router.subscribe("a", sub("sport/tennis/player1/#"));
    router.subscribe("b", sub("#"));
    router.subscribe("c", sub("+/tennis/#"));
    assert.deepEqual(clients(router, "sport/tennis/player1/ranking"), [
      "a",
      "b",
      "c",
    ]);
    assert.deepEqual(clients(router, "sport/tennis/player1/score/wimbledon"), [
      "a",
      "b",
      "c",
    ]);
    assert.deepEqual(clients(router, "sport/tennisx/player1"), ["b"]);
    assert.deepEqual(clients(router, "/finance"), ["b"]);
  });

  Deno.test(`${name}: match() matches "sport/#" to the parent level "sport" [MQTT-4.7.1-2 (3.1.1)]`, () => {
    const router = create();
    router.subscribe("a", sub("sport/#"));
    router.subscribe("b", sub("sport/tennis/#"));
    assert.deepEqual(clients(router, "sport"), ["a"]);
    assert.deepEqual(clients(router, "sport/tennis"), ["a", "b"]);
    assert.deepEqual(clients(router, "sports"), []);
  });

  Deno.test(`${name}: match() keeps "$" topics from wildcard-first filters [MQTT-4.7.2-1 (5.0)]`, () => {
    const router = create();
    router.subscribe("hash", sub("#"));
    router.subscribe("plus", sub("+/monitor/Clients"));
    router.subscribe("sys", sub("$SYS/#"));
    router.subscribe("sysPlus", sub("$SYS/monitor/+"));
    router.subscribe("shared", sub("$share/g/#"));
    const deliveries = router.match("$SYS/monitor/Clients");
    assert.deepEqual(deliveries.map((d) => d.clientId).sort(), [
      "sys",
      "sysPlus",
    ]);
    assert.deepEqual(clients(router, "a/$SYS"), ["hash"]);
  });

  Deno.test(`${name}: match() returns each session once, highest QoS, every identifier [MQTT-3.3.4-2 (5.0)] [MQTT-3.3.4-3 (5.0)]`, () => {
    const router = create();
    router.subscribe("a", sub("sport/#", 0, { subscriptionId: 1 }));
    router.subscribe("a", sub("sport/+/player1", 2, { subscriptionId: 2 }));
    router.subscribe(
      "a",
      sub("sport/tennis/player1", 1, { retainAsPublished: true }),
    );
    router.subscribe("a", sub("#", 0, { subscriptionId: 7 }));
    router.subscribe("b", sub("sport/tennis/+", 1));
    const deliveries = normalize(router.match("sport/tennis/player1"));
    assert.deepEqual(deliveries, [
      {
        clientId: "a",
        qos: 2,
        retainAsPublished: true,
        subscriptionIds: [1, 2, 7],
      },
      { clientId: "b", qos: 1, retainAsPublished: false, subscriptionIds: [] },
    ]);
    assert.deepEqual(normalize(router.match("sport")), [
      {
        clientId: "a",
        qos: 0,
        retainAsPublished: false,
        subscriptionIds: [1, 7],
      },
    ]);
  });

  Deno.test(`${name}: match() skips the publisher's No Local subscriptions [MQTT-3.8.3-3 (5.0)]`, () => {
    const router = create();
    router.subscribe("a", sub("chat/#", 1, { noLocal: true }));
    router.subscribe("b", sub("chat/#", 1, { noLocal: true }));
    router.subscribe("c", sub("chat/room", 1));
    assert.deepEqual(clients(router, "chat/room", { publisherId: "a" }), [
      "b",
      "c",
    ]);
    assert.deepEqual(clients(router, "chat/room", { publisherId: "c" }), [
      "a",
      "b",
      "c",
    ]);
    assert.deepEqual(clients(router, "chat/room"), ["a", "b", "c"]);
    // An overlapping subscription without No Local still delivers.
    router.subscribe("a", sub("chat/+", 0, { subscriptionId: 5 }));
    assert.deepEqual(
      normalize(router.match("chat/room", { publisherId: "a" })).filter((d) => d.clientId === "a"),
      [
        {
          clientId: "a",
          qos: 0,
          retainAsPublished: false,
          subscriptionIds: [5],
        },
      ],
    );
  });

  Deno.test(`${name}: subscribe() replaces a subscription with the same filter [MQTT-3.8.4-3 (5.0)]`, () => {
    const router = create();
    assert.equal(router.subscribe("a", sub("a/+", 0)), false);
    assert.equal(router.subscribe("a", sub("a/b", 0)), false);
    assert.equal(
      router.subscribe("a", sub("a/+", 2, { subscriptionId: 9 })),
      true,
    );
    assert.equal(router.size, 2);
    assert.deepEqual(
      router.subscriptionsOf("a").map((s) => [s.filter, s.qos]),
      [["a/+", 2], ["a/b", 0]],
    );
    assert.deepEqual(normalize(router.match("a/x")), [
      { clientId: "a", qos: 2, retainAsPublished: false, subscriptionIds: [9] },
    ]);
    assert.equal(
      router.subscribe("b", sub("a/+", 1)),
      false,
      "another session's filter is a new subscription",
    );
    assert.equal(router.size, 3);
  });

  Deno.test(`${name}: subscribe() refuses a malformed filter with 0x8f [MQTT-4.7.1-2 (3.1.1)]`, () => {
    const router = create();
    for (const filter of ["a/#/b", "a+", "", "$share//a", "$share/g"]) {
      assert.throws(
        () => router.subscribe("a", sub(filter)),
        (e: unknown) =>
          e instanceof MqttError &&
          e.reasonCode === REASON_CODE.TopicFilterInvalid,
        filter,
      );
    }
    assert.equal(router.size, 0);
    assert.deepEqual(router.subscriptionsOf("a"), []);
  });

  Deno.test(`${name}: unsubscribe() reports whether the subscription existed`, () => {
    const router = create();
    router.subscribe("a", sub("a/+"));
    router.subscribe("a", sub("$share/g/a/+"));
    assert.equal(router.unsubscribe("a", "a/b"), false);
    assert.equal(router.unsubscribe("b", "a/+"), false);
    assert.equal(router.unsubscribe("a", "a/+"), true);
    assert.equal(router.unsubscribe("a", "a/+"), false);
    assert.deepEqual(clients(router, "a/b"), []);
    assert.equal(router.unsubscribe("a", "$share/g/a/+"), true);
    assert.equal(router.size, 0);
    assert.deepEqual(router.match("a/b"), []);
  });

  Deno.test(`${name}: match() gives each shared group's messages to one member in turn [MQTT-4.8.2-1 (5.0)]`, () => {
    const router = create();
    router.subscribe(
      "w1",
      sub("$share/workers/jobs/+", 1, { subscriptionId: 3 }),
    );
    router.subscribe("w2", sub("$share/workers/jobs/+", 2));
    router.subscribe("w3", sub("$share/workers/jobs/+", 0));
    router.subscribe("audit", sub("$share/audit/jobs/#", 0));
    router.subscribe("w1", sub("jobs/#", 0));
    const picks: string[] = [];
    for (let i = 0; i < 6; i++) {
      const deliveries = router.match("jobs/build");
      assert.equal(
        deliveries.length,
        3,
        "w1 directly, one worker, the audit group",
      );
      const worker = deliveries.find((d) => d.shareGroup === "workers")!;
      assert.equal(worker.filter, "$share/workers/jobs/+");
      assert.equal(
        worker.qos,
        ({ w1: 1, w2: 2, w3: 0 } as Record<string, number>)[worker.clientId],
      );
      assert.deepEqual(
        worker.subscriptionIds,
        worker.clientId === "w1" ? [3] : [],
      );
      picks.push(worker.clientId);
      const audit = deliveries.find((d) => d.shareGroup === "audit")!;
      assert.deepEqual([audit.clientId, audit.filter], [
        "audit",
        "$share/audit/jobs/#",
      ]);
      const direct = deliveries.find((d) => d.shareGroup === undefined)!;
      assert.deepEqual([direct.clientId, direct.filter], ["w1", undefined]);
    }
    assert.deepEqual(picks, ["w1", "w2", "w3", "w1", "w2", "w3"]);
    // The same filter in another group is another group.
    router.subscribe("x", sub("$share/other/jobs/+"));
    assert.equal(
      router.match("jobs/build").filter((d) => d.shareGroup !== undefined)
        .length,
      3,
    );
  });

  Deno.test(`${name}: match() skips unavailable shared members, or takes the next when none is available`, () => {
    const router = create();
    for (const id of ["m1", "m2", "m3"]) {
      router.subscribe(id, sub("$share/g/t"));
    }
    const offline = new Set(["m2"]);
    const options: MatchOptions = { isAvailable: (id) => !offline.has(id) };
    const pick = (): string => router.match("t", options)[0]!.clientId;
    assert.deepEqual([pick(), pick(), pick(), pick()], [
      "m1",
      "m3",
      "m1",
      "m3",
    ]);
    offline.add("m1").add("m3");
    assert.deepEqual([pick(), pick(), pick()], ["m1", "m2", "m3"]);
    offline.clear();
    assert.deepEqual([pick(), pick()], ["m1", "m2"]);
  });

  Deno.test(`${name}: unsubscribe() of a shared member keeps the rotation going`, () => {
    const router = create();
    for (const id of ["m1", "m2", "m3"]) {
      router.subscribe(id, sub("$share/g/t"));
    }
    const pick = (): string => router.match("t")[0]!.clientId;
    assert.equal(pick(), "m1");
    router.unsubscribe("m1", "$share/g/t");
    assert.deepEqual([pick(), pick(), pick()], ["m2", "m3", "m2"]);
    router.unsubscribe("m3", "$share/g/t");
    assert.deepEqual([pick(), pick()], ["m2", "m2"]);
  });

  Deno.test(`${name}: shared subscriptions ignore No Local [MQTT-3.8.3-4 (5.0)]`, () => {
    const router = create();
    router.subscribe("a", sub("$share/g/t", 0, { noLocal: true }));
    assert.deepEqual(
      router.match("t", { publisherId: "a" }).map((d) => d.clientId),
      ["a"],
    );
  });

  Deno.test(`${name}: unsubscribeAll() removes direct and shared subscriptions`, () => {
    const router = create();
    router.subscribe("a", sub("a/#"));
    router.subscribe("a", sub("$share/g/a/+"));
    router.subscribe("a", sub("b"));
    router.subscribe("b", sub("a/#"));
    router.unsubscribeAll("a");
    router.unsubscribeAll("nobody");
    assert.equal(router.size, 1);
    assert.deepEqual(router.subscriptionsOf("a"), []);
    assert.deepEqual(router.match("a/b").map((d) => d.clientId), ["b"]);
    assert.deepEqual(router.match("b"), []);
  });

  Deno.test(`${name}: subscriptionsOf() lists a session's subscriptions in subscription order`, () => {
    const router = create();
    const subscriptions = [
      sub("z"),
      sub("$share/g/y", 1),
      sub("a/+", 2, { subscriptionId: 4 }),
    ];
    for (const s of subscriptions) router.subscribe("c", s);
    assert.deepEqual(router.subscriptionsOf("c"), subscriptions);
    assert.deepEqual(router.subscriptionsOf("other"), []);
  });

  Deno.test(`${name}: subscriptionCount() and hasSubscription() follow subscribe, replace and unsubscribe`, () => {
    const router = create();
    assert.equal(router.subscriptionCount("c"), 0);
    assert.equal(router.hasSubscription("c", "a/+"), false);
    router.subscribe("c", sub("a/+"));
    router.subscribe("c", sub("$share/g/y", 1));
    router.subscribe("c", sub("a/+", 2)); // a replacement, not a new one [MQTT-3.8.4-3 (5.0)]
    router.subscribe("d", sub("a/+"));
    assert.equal(router.subscriptionCount("c"), 2);
    assert.equal(router.hasSubscription("c", "a/+"), true);
    assert.equal(router.hasSubscription("c", "$share/g/y"), true);
    assert.equal(router.hasSubscription("c", "y"), false, "the shared one is known by its full filter");
    router.unsubscribe("c", "a/+");
    assert.equal(router.subscriptionCount("c"), 1);
    assert.equal(router.hasSubscription("c", "a/+"), false);
    assert.equal(router.hasSubscription("d", "a/+"), true);
    router.unsubscribeAll("c");
    assert.equal(router.subscriptionCount("c"), 0);
  });
}

routerContract("TopicRouter", () => new TopicRouter());
routerContract("NaiveRouter", () => new NaiveRouter());

function pickOne<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

const TOPIC_LEVELS = ["a", "b", "c", "$SYS", ""];
const FILTER_LEVELS = [...TOPIC_LEVELS, "+", "+", "#"];

function randomTopic(random: () => number): string {
  const depth = 1 + Math.floor(random() * 4);
  const levels: string[] = [];
  for (let i = 0; i < depth; i++) levels.push(pickOne(random, TOPIC_LEVELS));
  const topic = levels.join("/");
  return topic === "" ? "a" : topic;
}

function randomFilter(random: () => number): string {
  const depth = 1 + Math.floor(random() * 4);
  const levels: string[] = [];
  for (let i = 0; i < depth; i++) {
    const level = pickOne(random, FILTER_LEVELS);
    levels.push(level);
    if (level === "#") break;
  }
  const filter = levels.join("/");
  if (filter === "") return "#";
  return random() < 0.15 ? `$share/${pickOne(random, ["g1", "g2"])}/${filter}` : filter;
}

Deno.test("TopicRouter.match() agrees with NaiveRouter on seeded random filters and topics", () => {
  const random = mulberry32(0x5eed);
  const trie = new TopicRouter();
  const naive = new NaiveRouter();
  const clientIds = ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"];
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 100; i++) {
      const clientId = pickOne(random, clientIds);
      const roll = random();
      if (roll < 0.75) {
        const filter = randomFilter(random);
        const extra: Extra = {
          noLocal: !filter.startsWith("$share/") && random() < 0.2,
          retainAsPublished: random() < 0.3,
        };
        const subscription = random() < 0.5
          ? sub(filter, pickOne(random, [0, 1, 2] as const), {
            ...extra,
            subscriptionId: 1 + Math.floor(random() * 50),
          })
          : sub(filter, pickOne(random, [0, 1, 2] as const), extra);
        assert.equal(
          trie.subscribe(clientId, subscription),
          naive.subscribe(clientId, subscription),
        );
      } else if (roll < 0.97) {
        const existing = naive.subscriptionsOf(clientId);
        const filter = existing.length > 0 && random() < 0.9
          ? pickOne(random, existing).filter
          : randomFilter(random);
        assert.equal(
          trie.unsubscribe(clientId, filter),
          naive.unsubscribe(clientId, filter),
        );
      } else {
        trie.unsubscribeAll(clientId);
        naive.unsubscribeAll(clientId);
      }
    }
    assert.equal(trie.size, naive.size);
    let shared = 0;
    for (const clientId of clientIds) {
      assert.deepEqual(
        trie.subscriptionsOf(clientId),
        naive.subscriptionsOf(clientId),
      );
      shared += naive.subscriptionsOf(clientId).filter((s) => s.filter.startsWith("$share/")).length;
    }
    assert.equal(trie.sharedSize, shared, "sharedSize counts the shared subscriptions");
    const available = new Set(clientIds.filter(() => random() < 0.6));
    const isAvailable = (id: string): boolean => available.has(id);
    for (let i = 0; i < 100; i++) {
      const topic = randomTopic(random);
      const options: MatchOptions = random() < 0.5
        ? { publisherId: pickOne(random, clientIds), isAvailable }
        : { publisherId: pickOne(random, clientIds) };
      // Both keep the same round-robin state, so even the shared picks agree.
      assert.deepEqual(
        normalize(trie.match(topic, options)),
        normalize(naive.match(topic, options)),
        topic,
      );
    }
  }
});

Deno.test("TopicRouter.match() agrees with NaiveRouter for a session with hundreds of overlapping filters", () => {
  const random = mulberry32(7);
  const trie = new TopicRouter();
  const naive = new NaiveRouter();
  const compare = (): void => {
    assert.equal(trie.size, naive.size);
    for (let i = 0; i < 300; i++) {
      const topic = randomTopic(random);
      assert.deepEqual(
        normalize(trie.match(topic)),
        normalize(naive.match(topic)),
        topic,
      );
    }
  };
  const filters = new Set<string>();
  while (filters.size < 400) filters.add(randomFilter(random));
  let id = 0;
  for (const filter of filters) {
    const subscription = sub(filter, pickOne(random, [0, 1, 2] as const), {
      subscriptionId: ++id,
    });
    trie.subscribe("big", subscription);
    naive.subscribe("big", subscription);
    trie.subscribe("small", sub("a/+"));
    naive.subscribe("small", sub("a/+"));
  }
  compare();
  // Down to a few dozen: the overlaps are counted afresh.
  const list = [...filters];
  for (const filter of list.slice(0, 360)) {
    assert.equal(
      trie.unsubscribe("big", filter),
      naive.unsubscribe("big", filter),
    );
  }
  compare();
  for (const filter of list.slice(0, 30)) {
    trie.subscribe("big", sub(filter, 1));
    naive.subscribe("big", sub(filter, 1));
  }
  compare();
});

Deno.test("TopicRouter prunes its trie: 10,000 subscribes then unsubscribes leave no nodes", () => {
  const random = mulberry32(42);
  const router = new TopicRouter();
  const levels = [
    "site",
    "device",
    "temp",
    "",
    "+",
    "x1",
    "x2",
    "x3",
    "$SYS",
    "#",
  ];
  const made: [string, string][] = [];
  while (made.length < 10_000) {
    const depth = 1 + Math.floor(random() * 6);
    const parts: string[] = [];
    for (let i = 0; i < depth; i++) {
      const level = random() < 0.3 ? String(Math.floor(random() * 1000)) : pickOne(random, levels);
      parts.push(level);
      if (level === "#") break;
    }
    let filter = parts.join("/");
    if (filter === "") continue;
    if (random() < 0.1) {
      filter = `$share/g${Math.floor(random() * 3)}/${filter}`;
    }
    const clientId = `c${Math.floor(random() * 200)}`;
    if (!router.subscribe(clientId, sub(filter))) made.push([clientId, filter]);
  }
  assert.equal(router.size, 10_000);
  assert.ok(router.nodeCount > 1_000);
  // Unsubscribe in a shuffled order, half one by one and half through unsubscribeAll().
  for (let i = made.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [made[i], made[j]] = [made[j]!, made[i]!];
  }
  for (const [clientId, filter] of made.slice(0, 5_000)) {
    assert.equal(router.unsubscribe(clientId, filter), true);
  }
  for (let c = 0; c < 200; c++) router.unsubscribeAll(`c${c}`);
  assert.equal(router.size, 0);
  assert.equal(router.nodeCount, 0);
  assert.deepEqual(router.match("site/1/device/2/temp"), []);
});

Deno.test("filtersOverlap() is true exactly when some topic matches both filters (the $ rule aside)", () => {
  const random = mulberry32(0x0e1a);
  const topics = allTopics(5, ["a", "b", "", "$SYS", "$", "a$", "z"]);
  for (let round = 0; round < 300; round++) {
    const a = randomMatcherFilter(random);
    const b = random() < 0.1 ? a : randomMatcherFilter(random);
    const both = topics.some((t) => matchesFilter(a, t) && matchesFilter(b, t));
    const overlap = filtersOverlap(a, b);
    assert.equal(filtersOverlap(b, a), overlap, `${b} vs ${a}: not symmetric`);
    // It must never miss an overlap (match() would then send a session two copies); it may report one that only
    // "$" topics would witness, which costs a merge and nothing else.
    if (both) assert.ok(overlap, `${a} and ${b} both match some topic`);
    else if (!a.startsWith("$") && !b.startsWith("$")) {
      assert.ok(!overlap, `${a} and ${b} match no common topic`);
    }
    // The shape test is a first filter for two different filters (a session never holds one twice).
    if (overlap && a !== b) {
      assert.ok(shapesMayOverlap(filterShape(a), filterShape(b)), `${a} vs ${b}: shapes rule it out`);
    }
  }
});
