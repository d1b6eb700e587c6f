/**
 * ACL files in Mosquitto's `acl_file` syntax, and the {@linkcode Authorizer} that enforces one.
 *
 * ```text
 * # comment
 * topic read public/#              # before any "user" line: rules for clients without a user name
 * user alice                       # the rules after it, up to the next "user", are alice's
 * topic readwrite alice/#
 * topic deny alice/secret/#
 * pattern write devices/%c/status  # for every client: %c is its client id, %u its user name
 * ```
 *
 * The access word is `read`, `write`, `readwrite` (the default when left out) or `deny`; the rest of the line
 * is the topic filter. A client may publish to a topic when a `write` rule matches it, and receive a message
 * when a `read` rule matches the message's topic; a `deny` rule that matches wins over every grant. Nothing
 * matches: denied. A `pattern` with `%u` does not apply to clients without a user name. `%c` and `%u` stand for
 * one whole topic level: to a client whose id or user name contains `/`, `+` or `#`, no pattern grants anything
 * (Mosquitto refuses `+` and `#` but lets `/` reach into further levels), and its deny patterns widen that level
 * to `+`.
 *
 * Differences from Mosquitto 2, on purpose:
 * - a `deny` wins over every grant, where Mosquitto lets a user's own `topic` grant beat a `pattern deny`;
 * - SUBSCRIBE is checked (see {@linkcode AclAuthorizerOptions.subscribe}); Mosquitto 2 grants every SUBSCRIBE
 *   and only filters deliveries. `subscribe: "always"` gives its behaviour.
 *
 * @module
 */

import { validateTopicFilter } from "../../topic/topic.ts";
import { type Logger, SILENT_LOGGER } from "../logger.ts";
import { filterCovers, filterIntersection, FilterSet } from "./acl_filters.ts";
import type { Authorizer, ClientIdentity } from "./auth.ts";
import { innerFilter, substitutedPatterns } from "./_acl_patterns.ts";
import { type AclExplanation, type AclQuery, explainAcl } from "./acl_explain.ts";

/** What a rule allows. */
export type AclAccess = "read" | "write" | "readwrite" | "deny";

/** One `topic` or `pattern` line of an ACL file. */
export interface AclRule {
  /** `topic` rules belong to a user (or to anonymous clients); `pattern` rules apply to every client. */
  readonly kind: "topic" | "pattern";
  /** What the rule allows (`deny`: nothing, and it overrides grants). */
  readonly access: AclAccess;
  /** The topic filter; a pattern's still holds `%c` / `%u`. */
  readonly filter: string;
  /** For a `topic` rule: the `user` block it is in, `undefined` for the anonymous block. */
  readonly username?: string;
  /** 1-based line in the file. */
  readonly line: number;
}

/** An ACL file that cannot be read: names the file and the line. */
export class AclFileError extends Error {
  /** The file, or `"<text>"` when parsed from a string. */
  readonly path: string;
  /** 1-based line number; 0 when the whole file is at fault. */
  readonly line: number;

  /** `message` is prefixed with `path:line: ` (or `path: ` when `line` is 0). */
  constructor(path: string, line: number, message: string, options?: { cause?: unknown }) {
    super(line > 0 ? `${path}:${line}: ${message}` : `${path}: ${message}`, options);
    this.name = "AclFileError";
    this.path = path;
    this.line = line;
  }
}

/** Options for {@linkcode AclFile.parse}. */
export interface AclFileParseOptions {
  /** The file the text came from: named in errors and warnings, and re-read by `reload()`. */
  readonly path?: string;
}

/** The rules that apply to one identity, compiled for matching. */
export interface AclRuleSet {
  /** Topics denied outright. */
  readonly deny: FilterSet;
  /** Topics the identity may receive. */
  readonly read: FilterSet;
  /** Topics the identity may publish to. */
  readonly write: FilterSet;
  /** The `deny` filters as written (for the SUBSCRIBE check). */
  readonly denyFilters: readonly string[];
  /** The `read` and `readwrite` filters as written (for the SUBSCRIBE check). */
  readonly readFilters: readonly string[];
}

/** An ACL file compiled for checking; replaced as a whole on reload. */
export interface CompiledAcl {
  /** Rules of clients without a user name (the `topic` lines before the first `user` line). */
  readonly anonymous: AclRuleSet;
  /** Each user's `topic` rules. */
  readonly users: ReadonlyMap<string, AclRuleSet>;
  /** The `pattern` rules, in file order. */
  readonly patterns: readonly AclRule[];
}

/**
 * Reads an {@linkcode AclFile}'s current compiled tables. Set by `AclFile`'s static block, so that
 * {@linkcode AclAuthorizer} can check against them while they stay out of the public API.
 */
let compiledOf: (acl: AclFile) => CompiledAcl;

/**
 * A loaded ACL file.
 *
 * @example
 * ```ts
 * import { AclAuthorizer, AclFile } from "./acl_file.ts";
 * const acl = AclFile.parse("user alice\ntopic readwrite alice/#\npattern read devices/%c/#\n");
 * const authorizer = new AclAuthorizer(acl);
 * console.assert(authorizer.canPublish({ clientId: "c1", username: "alice" }, "alice/notes"));
 * console.assert(authorizer.canReceive({ clientId: "c1" }, "devices/c1/cmd"));
 * console.assert(!authorizer.canReceive({ clientId: "c2" }, "devices/c1/cmd"));
 * ```
 */
export class AclFile {
  /** The file this was read from; `undefined` when parsed from a string. */
  readonly path: string | undefined;
  #rules: readonly AclRule[];
  #warnings: readonly string[];
  #compiled: CompiledAcl;

  static {
    compiledOf = (acl) => acl.#compiled;
  }

  private constructor(path: string | undefined, parsed: Parsed) {
    this.path = path;
    this.#rules = parsed.rules;
    this.#warnings = parsed.warnings;
    this.#compiled = compile(parsed.rules);
  }

  /**
   * Reads an ACL file.
   *
   * @throws {AclFileError} naming the file and line when it cannot be read or a line is malformed.
   */
  static async load(path: string): Promise<AclFile> {
    return new AclFile(path, parse(await readText(path), path));
  }

  /**
   * Parses the text of an ACL file.
   *
   * @throws {AclFileError} naming the line that is malformed.
   */
  static parse(text: string, options: AclFileParseOptions = {}): AclFile {
    return new AclFile(options.path, parse(text, options.path ?? "<text>"));
  }

  /** Every rule, in file order. */
  get rules(): readonly AclRule[] {
    return this.#rules;
  }

  /** Lines that are valid but probably not what was meant (`path:line: …`), for the broker to log. */
  get warnings(): readonly string[] {
    return this.#warnings;
  }

  /**
   * Reads the file again (on SIGHUP). The new rules replace the old ones at once; when the file is missing or
   * malformed, the old rules stay and this throws.
   *
   * @throws {AclFileError} naming the file and line; the loaded rules are unchanged.
   */
  async reload(): Promise<void> {
    if (this.path === undefined) throw new AclFileError("<text>", 0, "was not loaded from a file");
    const parsed = parse(await readText(this.path), this.path);
    const compiled = compile(parsed.rules);
    this.#rules = parsed.rules;
    this.#warnings = parsed.warnings;
    this.#compiled = compiled;
  }
}

/** Options for {@linkcode AclAuthorizer}. */
export interface AclAuthorizerOptions {
  /**
   * How a SUBSCRIBE is checked (deliveries are always checked, message by message):
   * - `"overlap"`: granted when a `read` rule matches some topic the filter matches that no single `deny` rule
   *   covers; so `#` is granted to a client that may read `sensors/#` (and receives only `sensors/…`), while a
   *   filter that could never deliver anything is refused (SUBACK 0x87, v3 0x80);
   * - `"always"`: every SUBSCRIBE is granted, as Mosquitto 2's `acl_file` does.
   *
   * @default {"overlap"}
   */
  readonly subscribe?: "overlap" | "always";
  /**
   * Clients whose substituted `pattern` rules are kept (oldest out first).
   *
   * @default {10000}
   */
  readonly cacheSize?: number;
  /**
   * Where the authorizer says that a client's id or user name was not one topic level, so that `pattern`
   * rules granted it nothing (once per client).
   *
   * @default {SILENT_LOGGER}
   */
  readonly logger?: Logger;
}

/** A client's substituted pattern rules, valid for one compiled table and one user name. */
interface PatternCacheEntry {
  readonly compiled: CompiledAcl;
  readonly username: string | undefined;
  readonly rules: AclRuleSet;
}

/** What {@linkcode substitutePatterns} made of a client's patterns. */
interface PatternRules {
  readonly rules: AclRuleSet;
  /** Which value was not one topic level, so that no pattern grants anything to the client. */
  readonly refused: "client id" | "user name" | undefined;
}

/**
 * Enforces an {@linkcode AclFile}. Checks are synchronous and precompiled: a client's `topic` rules are a trie
 * per access kind built at load, its `pattern` rules are substituted once and cached per client, so a check is
 * a walk of the topic's levels.
 */
export class AclAuthorizer implements Authorizer {
  readonly #acl: AclFile;
  readonly #checkSubscribe: boolean;
  readonly #cacheSize: number;
  readonly #patternCache = new Map<string, PatternCacheEntry>();
  readonly #logger: Logger;

  /** Checks against `acl`'s current rules: a `reload()` of it takes effect at the next check. */
  constructor(acl: AclFile, options: AclAuthorizerOptions = {}) {
    this.#acl = acl;
    this.#checkSubscribe = (options.subscribe ?? "overlap") === "overlap";
    this.#cacheSize = options.cacheSize ?? 10_000;
    this.#logger = options.logger ?? SILENT_LOGGER;
  }

  /** May `client` publish to `topic`? (a `write` rule matches and no `deny` rule does) */
  canPublish(client: ClientIdentity, topic: string): boolean {
    return this.#check(client, topic, false);
  }

  /** May `client` receive a message published to `topic`? (a `read` rule matches and no `deny` rule does) */
  canReceive(client: ClientIdentity, topic: string): boolean {
    return this.#check(client, topic, true);
  }

  /** May `client` subscribe to `filter`? See {@linkcode AclAuthorizerOptions.subscribe}. */
  canSubscribe(client: ClientIdentity, filter: string): boolean {
    if (!this.#checkSubscribe) return true;
    const inner = innerFilter(filter);
    if (inner === undefined) return false;
    const compiled = compiledOf(this.#acl);
    const own = ownRules(compiled, client);
    const patterns = compiled.patterns.length === 0 ? undefined : this.#patternRules(compiled, client);
    const denies = patterns === undefined ? own.denyFilters : [...own.denyFilters, ...patterns.denyFilters];
    const reads = patterns === undefined ? own.readFilters : [...own.readFilters, ...patterns.readFilters];
    for (const read of reads) {
      const both = filterIntersection(read, inner);
      if (both !== undefined && !denies.some((deny) => filterCovers(deny, both))) return true;
    }
    return false;
  }

  /**
   * The dry-run: the decision for `query` and the rule (file and line) that made it, or none when nothing matched
   * (denied by default). Walks the rules as written, so it is for tools (the admin API), not for every message.
   */
  explain(query: AclQuery): AclExplanation {
    return explainAcl(this.#acl, query, this.#checkSubscribe);
  }

  #check(client: ClientIdentity, topic: string, read: boolean): boolean {
    const compiled = compiledOf(this.#acl);
    const own = ownRules(compiled, client);
    if (own.deny.matches(topic)) return false;
    if (compiled.patterns.length === 0) return (read ? own.read : own.write).matches(topic);
    const patterns = this.#patternRules(compiled, client);
    if (patterns.deny.matches(topic)) return false;
    return (read ? own.read : own.write).matches(topic) ||
      (read ? patterns.read : patterns.write).matches(topic);
  }

  #patternRules(compiled: CompiledAcl, client: ClientIdentity): AclRuleSet {
    const cache = this.#patternCache;
    const cached = cache.get(client.clientId);
    if (cached !== undefined && cached.compiled === compiled && cached.username === client.username) {
      return cached.rules;
    }
    const { rules, refused } = substitutePatterns(compiled.patterns, client);
    if (refused !== undefined && (cached === undefined || cached.username !== client.username)) {
      // Once per client (and per change of user name), not per check: the substitution is cached below.
      this.#logger.warn(
        `ACL: ${refused} of client ${JSON.stringify(client.clientId)} (user ${
          JSON.stringify(client.username ?? null)
        }) is not one topic level (it holds "/", "+" or "#"): pattern rules grant it nothing`,
      );
    }
    if (cached === undefined && cache.size >= this.#cacheSize && this.#cacheSize > 0) {
      cache.delete(cache.keys().next().value!);
    }
    if (this.#cacheSize > 0) cache.set(client.clientId, { compiled, username: client.username, rules });
    return rules;
  }
}

// ---- compiling ------------------------------------------------------------------------------------------

const EMPTY_RULES: AclRuleSet = ruleSet([]);

function ruleSet(rules: readonly { readonly access: AclAccess; readonly filter: string }[]): AclRuleSet {
  const denyFilters: string[] = [];
  const readFilters: string[] = [];
  const writeFilters: string[] = [];
  for (const { access, filter } of rules) {
    if (access === "deny") denyFilters.push(filter);
    if (access === "read" || access === "readwrite") readFilters.push(filter);
    if (access === "write" || access === "readwrite") writeFilters.push(filter);
  }
  return {
    deny: new FilterSet(denyFilters),
    read: new FilterSet(readFilters),
    write: new FilterSet(writeFilters),
    denyFilters,
    readFilters,
  };
}

function compile(rules: readonly AclRule[]): CompiledAcl {
  const anonymous: AclRule[] = [];
  const byUser = new Map<string, AclRule[]>();
  const patterns: AclRule[] = [];
  for (const rule of rules) {
    if (rule.kind === "pattern") patterns.push(rule);
    else if (rule.username === undefined) anonymous.push(rule);
    else {
      const list = byUser.get(rule.username);
      if (list === undefined) byUser.set(rule.username, [rule]);
      else list.push(rule);
    }
  }
  const users = new Map<string, AclRuleSet>();
  for (const [username, list] of byUser) users.set(username, ruleSet(list));
  return { anonymous: ruleSet(anonymous), users, patterns };
}

function ownRules(compiled: CompiledAcl, client: ClientIdentity): AclRuleSet {
  const username = client.username;
  const rules = username === undefined ? compiled.anonymous : compiled.users.get(username);
  return rules ?? EMPTY_RULES;
}

/** A client's pattern rules with `%c` and `%u` replaced (see {@linkcode substitutedPatterns}), compiled. */
function substitutePatterns(patterns: readonly AclRule[], client: ClientIdentity): PatternRules {
  const { rules, refused } = substitutedPatterns(patterns, client);
  return { rules: ruleSet(rules), refused };
}

// ---- parsing --------------------------------------------------------------------------------------------

interface Parsed {
  readonly rules: readonly AclRule[];
  readonly warnings: readonly string[];
}

const ACCESS = new Set<string>(["read", "write", "readwrite", "deny"]);

function parse(text: string, path: string): Parsed {
  const rules: AclRule[] = [];
  const warnings: string[] = [];
  let username: string | undefined;
  const lines = text.split("\n");
  for (let index = 0; index < lines.length; index++) {
    const line = index + 1;
    const content = lines[index]!.trim();
    if (content === "" || content.startsWith("#")) continue;
    const space = content.search(/\s/);
    const keyword = space === -1 ? content : content.slice(0, space);
    const rest = space === -1 ? "" : content.slice(space).trimStart();
    if (keyword === "user") {
      if (rest === "") throw new AclFileError(path, line, '"user" needs a user name');
      username = rest;
      continue;
    }
    if (keyword !== "topic" && keyword !== "pattern") {
      throw new AclFileError(path, line, `unknown keyword "${keyword}" (expected topic, pattern or user)`);
    }
    if (rest === "") throw new AclFileError(path, line, `"${keyword}" needs a topic filter`);
    // "topic [ACCESS] FILTER": with one word, that word is the filter (and access is readwrite), as in Mosquitto.
    const gap = rest.search(/\s/);
    let access: AclAccess = "readwrite";
    let filter = rest;
    if (gap !== -1) {
      const word = rest.slice(0, gap);
      if (!ACCESS.has(word)) {
        throw new AclFileError(
          path,
          line,
          `unknown access "${word}" (expected read, write, readwrite or deny before the topic filter)`,
        );
      }
      access = word as AclAccess;
      filter = rest.slice(gap).trim();
    } else if (ACCESS.has(rest)) {
      warnings.push(
        `${path}:${line}: "${content}" grants readwrite on the topic "${rest}"; a filter is missing`,
      );
    }
    try {
      validateTopicFilter(filter);
    } catch (error) {
      throw new AclFileError(path, line, `bad topic filter: ${(error as Error).message}`);
    }
    const substitutes = /%[cu]/.test(filter);
    if (keyword === "pattern" && !substitutes) {
      warnings.push(`${path}:${line}: pattern "${filter}" has neither %c nor %u; it applies to every client`);
    }
    if (keyword === "topic" && substitutes) {
      warnings.push(
        `${path}:${line}: topic rules take %c and %u literally; use "pattern" to substitute them`,
      );
    }
    rules.push(
      keyword === "pattern" || username === undefined
        ? { kind: keyword, access, filter, line }
        : { kind: keyword, access, filter, username, line },
    );
  }
  return { rules, warnings };
}

async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new AclFileError(path, 0, `cannot read the ACL file: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
