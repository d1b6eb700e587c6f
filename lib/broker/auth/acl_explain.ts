/**
 * The ACL dry-run: "may this client publish, subscribe to or receive this topic, and which line decided?". It
 * walks the rules as written (with their lines), on the slow path, by the same rules as the authorizer's compiled
 * check in `acl_file.ts`: a matching `deny` wins over every grant, a matching grant allows, and nothing matching
 * denies. Pattern substitution and shared filters go through the same functions as the check
 * (`_acl_patterns.ts`); a test compares the two over a table of cases.
 *
 * @module
 */

import { matchesFilter } from "../../topic/topic.ts";
import { filterCovers, filterIntersection } from "./acl_filters.ts";
import type { AclFile, AclRule } from "./acl_file.ts";
import { innerFilter, substitutedPatterns } from "./_acl_patterns.ts";

/** What the dry-run is asked. */
export interface AclQuery {
  /** The client's user name; none for an anonymous client. */
  readonly username?: string | undefined;
  /** The client identifier (`%c` in patterns). */
  readonly clientId: string;
  /** Publish to a topic, subscribe to a filter, or receive a message published to a topic. */
  readonly action: "publish" | "subscribe" | "receive";
  /** The topic (publish, receive) or topic filter (subscribe). */
  readonly topic: string;
}

/** The rule that decided, as the file has it. */
export interface AclDecidingRule {
  /** The ACL file (`<text>` when parsed from a string). */
  readonly file: string;
  /** 1-based line. */
  readonly line: number;
  /** The rule, normalized: `topic deny alice/secret/#`, `pattern read devices/%c/#`. */
  readonly text: string;
  /** For a pattern: its filter with the client's values put in. */
  readonly filter: string;
}

/** The dry-run's answer. */
export interface AclExplanation {
  /** The decision, as the authorizer makes it. */
  readonly allowed: boolean;
  /** The rule that decided; `null` when none matched (denied by default) or none was asked (subscribe always). */
  readonly rule: AclDecidingRule | null;
  /** The decision in words. */
  readonly reason: string;
}

/** One applicable rule with its filter for this client. */
interface Applied {
  readonly rule: AclRule;
  readonly filter: string;
}

/**
 * Explains a check against `acl`'s current rules. `checkSubscribe` is false for an authorizer that grants every
 * SUBSCRIBE (`subscribe: "always"`).
 */
export function explainAcl(acl: AclFile, query: AclQuery, checkSubscribe: boolean): AclExplanation {
  const file = acl.path ?? "<text>";
  const client = query.username === undefined
    ? { clientId: query.clientId }
    : { clientId: query.clientId, username: query.username };
  const own: Applied[] = [];
  const patterns: AclRule[] = [];
  for (const rule of acl.rules) {
    if (rule.kind === "pattern") patterns.push(rule);
    else if (rule.username === query.username) own.push({ rule, filter: rule.filter });
  }
  const substituted = substitutedPatterns(patterns, client);
  // File order, so that "the first matching line" reads as an operator expects.
  const applied = [...own, ...substituted.rules].sort((a, b) => a.rule.line - b.rule.line);
  const refusal = substituted.refused === undefined
    ? ""
    : ` (its ${substituted.refused} is not one topic level, so pattern rules grant it nothing)`;
  const decided = (allowed: boolean, by: Applied | undefined, reason: string): AclExplanation => ({
    allowed,
    rule: by === undefined ? null : {
      file,
      line: by.rule.line,
      text: `${by.rule.kind} ${by.rule.access} ${by.rule.filter}`,
      filter: by.filter,
    },
    reason: reason + refusal,
  });
  const denies = applied.filter((a) => a.rule.access === "deny");

  if (query.action === "subscribe") {
    if (!checkSubscribe) return decided(true, undefined, "every SUBSCRIBE is granted (subscribe: always)");
    const inner = innerFilter(query.topic);
    if (inner === undefined) return decided(false, undefined, "not a valid shared subscription filter");
    const reads = applied.filter((a) => a.rule.access === "read" || a.rule.access === "readwrite");
    let blocked: Applied | undefined;
    for (const read of reads) {
      const both = filterIntersection(read.filter, inner);
      if (both === undefined) continue;
      const deny = denies.find((d) => filterCovers(d.filter, both));
      if (deny === undefined) {
        return decided(true, read, "a read rule allows part of what the filter matches");
      }
      blocked ??= deny;
    }
    return blocked === undefined
      ? decided(false, undefined, "no read rule overlaps the filter: denied by default")
      : decided(false, blocked, "a deny rule covers everything the read rules would allow");
  }

  const deny = denies.find((d) => matchesFilter(d.filter, query.topic));
  if (deny !== undefined) return decided(false, deny, "a deny rule matches (deny wins over every grant)");
  const wanted = query.action === "publish" ? "write" : "read";
  const grant = applied.find((a) =>
    (a.rule.access === wanted || a.rule.access === "readwrite") && matchesFilter(a.filter, query.topic)
  );
  return grant === undefined
    ? decided(false, undefined, `no ${wanted} rule matches: denied by default`)
    : decided(true, grant, `a ${wanted} rule matches`);
}
