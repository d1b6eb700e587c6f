/**
 * What every topic matcher is held to: the spec's matching examples as a table, and seeded random filters and
 * topics (with `$` topics, empty levels, `+` and `#`). {@linkcode matchesFilter} is the rule; the router, the
 * retained store and the ACL's filter set are each compared with it in `matcher_contract_test.ts`.
 *
 * @module
 */

/** One example: `[filter, topic, matches, rule]`; a section where the spec has no numbered rule. */
export type MatchCase = readonly [filter: string, topic: string, matches: boolean, rule: string];

/** The spec's examples (3.1.1 and 5.0 section 4.7) and the edges around them. */
export const SPEC_MATCHES: readonly MatchCase[] = [
  ["sport/tennis/player1/#", "sport/tennis/player1", true, "MQTT-4.7.1-2 (3.1.1)"],
  ["sport/tennis/player1/#", "sport/tennis/player1/ranking", true, "MQTT-4.7.1-2 (3.1.1)"],
  ["sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true, "MQTT-4.7.1-2 (3.1.1)"],
  ["sport/#", "sport", true, "MQTT-4.7.1-2 (3.1.1)"],
  ["sport/#", "sport/", true, "MQTT-4.7.1-2 (3.1.1)"],
  ["sport/tennis/#", "sport/tennisx", false, "MQTT-4.7.1-2 (3.1.1)"],
  ["#", "a/b/c", true, "MQTT-4.7.1-2 (3.1.1)"],
  ["#", "/finance", true, "MQTT-4.7.1-2 (3.1.1)"],
  ["+/#", "a", true, "MQTT-4.7.1-2 (3.1.1)"],
  ["sport/tennis/+", "sport/tennis/player1", true, "MQTT-4.7.1-3 (3.1.1)"],
  ["sport/tennis/+", "sport/tennis/player1/ranking", false, "MQTT-4.7.1-3 (3.1.1)"],
  ["sport/+", "sport", false, "MQTT-4.7.1-3 (3.1.1)"],
  ["sport/+", "sport/", true, "MQTT-4.7.1-3 (3.1.1)"],
  ["+/+", "/finance", true, "MQTT-4.7.1-3 (3.1.1)"],
  ["/+", "/finance", true, "MQTT-4.7.1-3 (3.1.1)"],
  ["+", "/finance", false, "MQTT-4.7.1-3 (3.1.1)"],
  ["a/+/b", "a//b", true, "MQTT-4.7.1-3 (3.1.1)"],
  ["+", "a", true, "MQTT-4.7.1-3 (3.1.1)"],
  ["#", "$SYS/uptime", false, "MQTT-4.7.2-1 (5.0)"],
  ["+/monitor/Clients", "$SYS/monitor/Clients", false, "MQTT-4.7.2-1 (5.0)"],
  ["+", "$", false, "MQTT-4.7.2-1 (5.0)"],
  ["+/#", "$SYS", false, "MQTT-4.7.2-1 (5.0)"],
  ["$SYS/#", "$SYS/monitor/Clients", true, "MQTT-4.7.2-1 (5.0)"],
  ["$SYS/#", "$SYS", true, "MQTT-4.7.2-1 (5.0)"],
  ["$SYS/monitor/+", "$SYS/monitor/Clients", true, "MQTT-4.7.2-1 (5.0)"],
  ["#", "a/$SYS", true, "MQTT-4.7.2-1 (5.0)"],
  ["a/+", "a/$SYS", true, "MQTT-4.7.2-1 (5.0)"],
  ["a//b", "a//b", true, "MQTT-4.7.3-1 (5.0)"],
  ["a//b", "a/b", false, "MQTT-4.7.3-1 (5.0)"],
  ["/", "/", true, "MQTT-4.7.3-1 (5.0)"],
  ["+/+", "/", true, "MQTT-4.7.3-1 (5.0)"],
  ["a/b", "a/bc", false, "5.0 section 4.7"],
  ["a/bc", "a/b", false, "5.0 section 4.7"],
  ["a", "a/", false, "5.0 section 4.7"],
  ["a/", "a", false, "5.0 section 4.7"],
  ["Sport", "sport", false, "5.0 section 4.7.3"],
];

/** Levels the random topics are made of: a `$` first level, empty levels, and a level no filter names. */
const TOPIC_LEVELS: readonly string[] = ["a", "b", "", "$SYS", "$", "a$", "z"];
/** Filter levels: the topic levels but "z", and wildcards. */
const FILTER_LEVELS: readonly string[] = ["a", "b", "", "$SYS", "$", "a$", "+", "+", "#"];

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/** A random valid Topic Name of 1 to 5 levels. */
export function randomTopic(random: () => number): string {
  const depth = 1 + Math.floor(random() * 5);
  const levels: string[] = [];
  for (let i = 0; i < depth; i++) levels.push(pick(random, TOPIC_LEVELS));
  const topic = levels.join("/");
  return topic === "" ? "z" : topic;
}

/** A random valid, non-shared Topic Filter of 1 to 5 levels ("#" only last). */
export function randomFilter(random: () => number): string {
  const depth = 1 + Math.floor(random() * 5);
  const levels: string[] = [];
  for (let i = 0; i < depth; i++) {
    const level = pick(random, FILTER_LEVELS);
    levels.push(level);
    if (level === "#") break;
  }
  const filter = levels.join("/");
  return filter === "" ? "#" : filter;
}

/** Every Topic Name of 1 to `maxDepth` levels over `levels` (the universe a filter is compared on). */
export function allTopics(maxDepth = 4, levels: readonly string[] = ["a", "", "$SYS", "$", "z"]): string[] {
  const out: string[] = [];
  let layer = [""];
  for (let depth = 1; depth <= maxDepth; depth++) {
    layer = layer.flatMap((prefix) => levels.map((level) => depth === 1 ? level : `${prefix}/${level}`));
    out.push(...layer.filter((topic) => topic !== ""));
  }
  return out;
}
