/**
 * The pieces of an ACL check that the authorizer (`acl_file.ts`) and its dry-run (`acl_explain.ts`) share, so
 * that the two cannot read a pattern or a shared filter differently.
 *
 * @module
 */

import { SHARED_PREFIX } from "../../topic/topic.ts";
import type { AclRule } from "./acl_file.ts";
import type { ClientIdentity } from "./auth.ts";

/** A `pattern` rule with the client's values put in. */
export interface SubstitutedRule {
  /** The rule as written. */
  readonly rule: AclRule;
  /** Its access. */
  readonly access: AclRule["access"];
  /** Its filter for this client. */
  readonly filter: string;
}

/**
 * A client's pattern rules with `%c` and `%u` replaced, in file order. A value is substituted only when it is one
 * whole topic level: a `/` would reach into other levels (`victim/cmd` turning `devices/%c/#` into
 * `devices/victim/cmd/#`) and a `+` or `#` would become a wildcard. For a client with such an id or user name,
 * patterns grant nothing (`refused` says which value), while deny patterns still apply with the level holding the
 * value widened to `+` (a deny may only grow).
 */
export function substitutedPatterns(
  patterns: readonly AclRule[],
  client: ClientIdentity,
): { readonly rules: SubstitutedRule[]; readonly refused: "client id" | "user name" | undefined } {
  const { clientId, username } = client;
  const idOk = isOneLevel(clientId);
  const userOk = username === undefined || isOneLevel(username);
  const grants = idOk && userOk;
  const rules: SubstitutedRule[] = [];
  for (const pattern of patterns) {
    if (!grants && pattern.access !== "deny") continue;
    const filter = substitute(
      pattern.filter,
      idOk ? clientId : undefined,
      userOk ? username : undefined,
      username !== undefined,
    );
    if (filter !== undefined) rules.push({ rule: pattern, access: pattern.access, filter });
  }
  return { rules, refused: grants ? undefined : idOk ? "user name" : "client id" };
}

/** The filter a SUBSCRIBE asks for, without a `$share/{ShareName}/` prefix; `undefined` when malformed. */
export function innerFilter(filter: string): string | undefined {
  if (!filter.startsWith(SHARED_PREFIX)) return filter;
  const slash = filter.indexOf("/", SHARED_PREFIX.length);
  return slash === -1 || slash + 1 === filter.length ? undefined : filter.slice(slash + 1);
}

/**
 * `pattern` with `%c` → `clientId` and `%u` → `username`, level by level; a level holding a value given as
 * `undefined` (not one level) becomes `+`. `undefined` when the pattern needs a user name the client lacks.
 */
export function substitute(
  pattern: string,
  clientId: string | undefined,
  username: string | undefined,
  hasUsername: boolean,
): string | undefined {
  if (!pattern.includes("%")) return pattern;
  const levels = pattern.split("/");
  for (let l = 0; l < levels.length; l++) {
    const level = levels[l]!;
    let out = "";
    let from = 0;
    let wide = false;
    for (let i = level.indexOf("%"); i !== -1 && i + 1 < level.length; i = level.indexOf("%", i + 1)) {
      const code = level[i + 1];
      if (code !== "c" && code !== "u") continue;
      if (code === "u" && !hasUsername) return undefined;
      const value = code === "c" ? clientId : username;
      if (value === undefined) wide = true;
      else out += level.slice(from, i) + value;
      from = i + 2;
      i++;
    }
    levels[l] = wide ? "+" : out + level.slice(from);
  }
  return levels.join("/");
}

/** Whether `text` can stand for exactly one topic level: no separator, no wildcard. */
export function isOneLevel(text: string): boolean {
  return !text.includes("/") && !text.includes("+") && !text.includes("#");
}
