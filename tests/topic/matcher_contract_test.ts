/**
 * One topic matcher: {@linkcode matchesFilter} is the rule, and every component that matches topics on its own
 * (the router trie, the naive router, the retained store's trie, the ACL's filter set) must agree with it on
 * the spec's examples and on seeded random filters and topics.
 *
 * @module
 */

import assert from "node:assert/strict";
import { matchesFilter } from "../../lib/topic/topic.ts";
import { type Subscription, type SubscriptionRouter, TopicRouter } from "../../lib/topic/router.ts";
import { RetainedStore } from "../../lib/broker/retained.ts";
import { FilterSet } from "../../lib/broker/auth/acl_filters.ts";
import { NaiveRouter } from "./_naive_router.ts";
import { allTopics, type MatchCase, randomFilter, randomTopic, SPEC_MATCHES } from "./_matcher_cases.ts";
import { mulberry32 } from "../_prng.ts";

/** How a component answers "which of these filters match which of these topics". */
interface Matcher {
  readonly name: string;
  /** Every `filter\ttopic` pair of `filters` x `topics` that the component matches. */
  pairs(filters: readonly string[], topics: readonly string[]): Set<string>;
}

const pair = (filter: string, topic: string): string => `${filter}\t${topic}`;

function sub(filter: string): Subscription {
  return { filter, qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 };
}

/** A router with one session per filter, plus a one-member shared group per filter: both must match alike. */
function routerMatcher(name: string, create: () => SubscriptionRouter): Matcher {
  return {
    name,
    pairs(filters, topics) {
      const router = create();
      filters.forEach((filter, i) => {
        router.subscribe(`c${i}`, sub(filter));
        router.subscribe(`s${i}`, sub(`$share/g/${filter}`));
      });
      const out = new Set<string>();
      for (const topic of topics) {
        const direct = new Set<string>();
        const shared = new Set<string>();
        for (const delivery of router.match(topic)) {
          const i = Number(delivery.clientId.slice(1));
          (delivery.shareGroup === undefined ? direct : shared).add(filters[i]!);
        }
        assert.deepEqual(shared, direct, `${name}: shared and direct subscriptions disagree on ${topic}`);
        for (const filter of direct) out.add(pair(filter, topic));
      }
      return out;
    },
  };
}

const RETAINED: Matcher = {
  name: "RetainedStore.match()",
  pairs(filters, topics) {
    const store = new RetainedStore();
    for (const topic of topics) {
      store.set({ topic, payload: Uint8Array.of(1), qos: 0, retain: true });
    }
    const out = new Set<string>();
    for (const filter of filters) {
      for (const message of store.match(filter)) out.add(pair(filter, message.topic));
    }
    return out;
  },
};

const FILTER_SET: Matcher = {
  name: "FilterSet.matches()",
  pairs(filters, topics) {
    const out = new Set<string>();
    for (const filter of filters) {
      const set = new FilterSet([filter]);
      for (const topic of topics) if (set.matches(topic)) out.add(pair(filter, topic));
    }
    return out;
  },
};

const MATCHERS: readonly Matcher[] = [
  routerMatcher("TopicRouter.match()", () => new TopicRouter()),
  routerMatcher("NaiveRouter.match()", () => new NaiveRouter()),
  RETAINED,
  FILTER_SET,
];

/** The pairs matchesFilter() matches: the oracle. */
function expected(filters: readonly string[], topics: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const filter of filters) {
    for (const topic of topics) if (matchesFilter(filter, topic)) out.add(pair(filter, topic));
  }
  return out;
}

/** Fails with the first few pairs on which `got` and `want` differ. */
function assertSamePairs(got: Set<string>, want: Set<string>, what: string): void {
  const extra = [...got].filter((p) => !want.has(p)).slice(0, 5);
  const missing = [...want].filter((p) => !got.has(p)).slice(0, 5);
  assert.deepEqual({ extra, missing }, { extra: [], missing: [] }, what);
}

function cite(rule: string): string {
  return rule.startsWith("MQTT-") ? `[${rule}]` : `(${rule})`;
}

for (const [filter, topic, matches, rule] of SPEC_MATCHES) {
  Deno.test(
    `matchesFilter() ${matches ? "matches" : "does not match"} "${filter}" to "${topic}" ${cite(rule)}`,
    () => {
      assert.equal(matchesFilter(filter, topic), matches);
    },
  );
}

for (const matcher of MATCHERS) {
  Deno.test(`${matcher.name} agrees with matchesFilter() on the spec's examples`, () => {
    const failures: MatchCase[] = [];
    for (const c of SPEC_MATCHES) {
      const [filter, topic, matches] = c;
      if (matcher.pairs([filter], [topic]).has(pair(filter, topic)) !== matches) failures.push(c);
    }
    assert.deepEqual(failures, []);
  });

  Deno.test(`${matcher.name} agrees with matchesFilter() on every topic of 1-4 levels, seeded random filters`, () => {
    const random = mulberry32(0x70bc);
    const topics = allTopics();
    for (let round = 0; round < 20; round++) {
      const filters = [...new Set(Array.from({ length: 40 }, () => randomFilter(random)))];
      assertSamePairs(matcher.pairs(filters, topics), expected(filters, topics), `round ${round}`);
    }
  });

  Deno.test(`${matcher.name} agrees with matchesFilter() on seeded random filters and topics`, () => {
    const random = mulberry32(0x5eed + matcher.name.length);
    for (let round = 0; round < 20; round++) {
      const filters = [...new Set(Array.from({ length: 60 }, () => randomFilter(random)))];
      const topics = [...new Set(Array.from({ length: 200 }, () => randomTopic(random)))];
      assertSamePairs(matcher.pairs(filters, topics), expected(filters, topics), `round ${round}`);
    }
  });
}
