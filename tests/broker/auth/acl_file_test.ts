import assert from "node:assert/strict";
import type { ClientIdentity } from "../../../lib/broker/auth/auth.ts";
import { AclAuthorizer, AclFile, AclFileError } from "../../../lib/broker/auth/acl_file.ts";
import { filterCovers, filterIntersection, FilterSet } from "../../../lib/broker/auth/acl_filters.ts";
import { matchesFilter } from "../../../lib/topic/topic.ts";
import { ACL, alice, anon, SUBSCRIBE_TABLE, TABLE } from "./_acl_cases.ts";

Deno.test("AclAuthorizer: canReceive() checks read access and canPublish() write access", () => {
  const authorizer = new AclAuthorizer(AclFile.parse(ACL));
  for (const [who, client, topic, read, write] of TABLE) {
    assert.equal(authorizer.canReceive(client, topic), read, `${who} receive ${topic}`);
    assert.equal(authorizer.canPublish(client, topic), write, `${who} publish ${topic}`);
  }
});

Deno.test("AclAuthorizer: canSubscribe() grants a filter that some read rule can deliver through", () => {
  const authorizer = new AclAuthorizer(AclFile.parse(ACL));
  for (const [who, client, filter, granted] of SUBSCRIBE_TABLE) {
    assert.equal(authorizer.canSubscribe(client, filter), granted, `${who} subscribe ${filter}`);
  }
});

Deno.test('AclAuthorizer: subscribe "always" grants every SUBSCRIBE (Mosquitto 2) and still filters delivery', () => {
  const authorizer = new AclAuthorizer(AclFile.parse(ACL), { subscribe: "always" });
  for (const [who, client, filter] of SUBSCRIBE_TABLE) {
    assert.equal(authorizer.canSubscribe(client, filter), true, `${who} subscribe ${filter}`);
  }
  assert.equal(authorizer.canReceive(alice, "bob/x"), false);
});

Deno.test("AclAuthorizer: an empty file denies everything", () => {
  const authorizer = new AclAuthorizer(AclFile.parse("# nothing\n"));
  for (const client of [anon, alice]) {
    assert.equal(authorizer.canPublish(client, "a"), false);
    assert.equal(authorizer.canReceive(client, "a"), false);
    assert.equal(authorizer.canSubscribe(client, "#"), false);
  }
});

Deno.test("AclAuthorizer: a client id that reconnects under another user name gets that user's patterns", () => {
  const authorizer = new AclAuthorizer(AclFile.parse("pattern readwrite users/%u/#\n"), { cacheSize: 2 });
  assert.equal(authorizer.canPublish({ clientId: "c", username: "alice" }, "users/alice/x"), true);
  assert.equal(authorizer.canPublish({ clientId: "c", username: "bob" }, "users/alice/x"), false);
  assert.equal(authorizer.canPublish({ clientId: "c", username: "bob" }, "users/bob/x"), true);
  assert.equal(authorizer.canPublish({ clientId: "c" }, "users/bob/x"), false);
  // More clients than the cache holds: still right.
  for (let i = 0; i < 10; i++) {
    assert.equal(authorizer.canReceive({ clientId: `c${i}`, username: `u${i}` }, `users/u${i}/t`), true);
    assert.equal(authorizer.canReceive({ clientId: `c${i}`, username: `u${i}` }, `users/u${i + 1}/t`), false);
  }
});

// ---- parsing ---------------------------------------------------------------------------------------------

Deno.test("AclFile.parse() reads Mosquitto's syntax: blocks, default access, comments, blanks, CRLF", () => {
  const acl = AclFile.parse(
    "  # indented comment\r\ntopic a/b\r\n\r\nuser  alice smith \r\ntopic write   x/ y \nuser bob\ntopic deny z\n" +
      "user alice smith\ntopic read w\npattern read p/%c\n",
  );
  assert.deepEqual(acl.rules, [
    { kind: "topic", access: "readwrite", filter: "a/b", line: 2 },
    { kind: "topic", access: "write", filter: "x/ y", username: "alice smith", line: 5 },
    { kind: "topic", access: "deny", filter: "z", username: "bob", line: 7 },
    { kind: "topic", access: "read", filter: "w", username: "alice smith", line: 9 },
    { kind: "pattern", access: "read", filter: "p/%c", line: 10 },
  ]);
  assert.deepEqual(acl.warnings, []);
  const authorizer = new AclAuthorizer(acl);
  const smith = { clientId: "s", username: "alice smith" };
  assert.equal(authorizer.canReceive(smith, "w"), true, "a user's second block adds to the first");
  assert.equal(authorizer.canPublish(smith, "x/ y"), true);
  assert.equal(authorizer.canReceive({ clientId: "q" }, "p/q"), true);
});

Deno.test("AclFile.parse() warns about lines that are valid but probably wrong", () => {
  const acl = AclFile.parse("topic read\npattern read fixed/#\ntopic write d/%c\n", { path: "acl.conf" });
  assert.deepEqual(acl.rules[0], { kind: "topic", access: "readwrite", filter: "read", line: 1 });
  assert.equal(acl.warnings.length, 3);
  assert.match(acl.warnings[0]!, /^acl\.conf:1: "topic read" grants readwrite on the topic "read"/);
  assert.match(acl.warnings[1]!, /^acl\.conf:2: pattern "fixed\/#" has neither %c nor %u/);
  assert.match(acl.warnings[2]!, /^acl\.conf:3: topic rules take %c and %u literally/);
});

Deno.test("AclFile.parse() names the file and line of a malformed line", () => {
  const cases: [string, string][] = [
    ["topic read a\nusr bob\n", `acl.conf:2: unknown keyword "usr" (expected topic, pattern or user)`],
    [
      "topic reed a/b\n",
      `acl.conf:1: unknown access "reed" (expected read, write, readwrite or deny before the topic filter)`,
    ],
    [
      "\n\ntopic read a/#/b\n",
      'acl.conf:3: bad topic filter: Topic Filter "a/#/b" has "#" before its last level',
    ],
    ["pattern write a+/%c\n", 'acl.conf:1: bad topic filter: Topic Filter "a+/%c" uses "+" inside a level'],
    ["user\n", `acl.conf:1: "user" needs a user name`],
    ["topic\n", `acl.conf:1: "topic" needs a topic filter`],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => AclFile.parse(text, { path: "acl.conf" }), (error: unknown) => {
      assert.ok(error instanceof AclFileError);
      assert.equal(error.message.split(" [MQTT")[0], message);
      return true;
    });
  }
});

const canFs = Deno.permissions.querySync({ name: "read" }).state === "granted" &&
  Deno.permissions.querySync({ name: "write" }).state === "granted";

Deno.test({
  name: canFs
    ? "AclFile.reload(): new rules apply at once; a bad file keeps the old rules and names file and line"
    : "AclFile.reload() (skipped: needs --allow-read --allow-write)",
  ignore: !canFs,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mqtt-acl-" });
    try {
      const path = `${dir}/acl.conf`;
      await Deno.writeTextFile(path, "pattern readwrite users/%u/#\nuser alice\ntopic read news\n");
      const acl = await AclFile.load(path);
      const authorizer = new AclAuthorizer(acl);
      assert.equal(authorizer.canPublish(alice, "users/alice/x"), true);
      assert.equal(authorizer.canReceive(alice, "news"), true);

      await Deno.writeTextFile(path, "pattern read users/%u/#\n");
      await acl.reload();
      assert.equal(authorizer.canPublish(alice, "users/alice/x"), false, "cached patterns are dropped");
      assert.equal(authorizer.canReceive(alice, "users/alice/x"), true);
      assert.equal(authorizer.canReceive(alice, "news"), false);

      await Deno.writeTextFile(path, "pattern readwrite users/%u/#\ntopic bad access x\n");
      await assert.rejects(acl.reload(), {
        message:
          `${path}:2: unknown access "bad" (expected read, write, readwrite or deny before the topic filter)`,
      });
      assert.equal(authorizer.canPublish(alice, "users/alice/x"), false, "old rules stay");

      await Deno.remove(path);
      await assert.rejects(acl.reload(), AclFileError);
      await assert.rejects(AclFile.load(path), { message: new RegExp(`^${path}: cannot read the ACL file`) });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const canReadExample = Deno.permissions.querySync({ name: "read" }).state === "granted";

Deno.test({
  name: canReadExample
    ? "examples/acl.conf loads without warnings and does what its comments say"
    : "examples/acl.conf (skipped: needs --allow-read)",
  ignore: !canReadExample,
  async fn() {
    const acl = await AclFile.load(new URL("../../../examples/acl.conf", import.meta.url).pathname);
    assert.deepEqual(acl.warnings, []);
    const authorizer = new AclAuthorizer(acl);
    const dashboard = { clientId: "dash", username: "dashboard" };
    const operator = { clientId: "op", username: "operator" };
    const firmware = { clientId: "fw", username: "firmware-service" };
    const device = { clientId: "d42", username: "device" };
    const rows: [string, boolean][] = [
      ["anonymous reads public", authorizer.canReceive({ clientId: "x" }, "public/news")],
      ["dashboard reads a status", authorizer.canReceive(dashboard, "devices/d42/status")],
      ["dashboard reads $SYS/broker", authorizer.canReceive(dashboard, "$SYS/broker/uptime")],
      ["operator commands", authorizer.canPublish(operator, "devices/d42/cmd/reboot")],
      ["firmware service pushes firmware", authorizer.canPublish(firmware, "devices/d42/cmd/firmware")],
      ["device reads its commands", authorizer.canReceive(device, "devices/d42/cmd/firmware")],
      ["device writes its status", authorizer.canPublish(device, "devices/d42/status")],
      ["a user's private area", authorizer.canPublish(device, "users/device/notes")],
    ];
    const denied: [string, boolean][] = [
      ["anonymous writes public", authorizer.canPublish({ clientId: "x" }, "public/news")],
      ["dashboard reads credentials", authorizer.canReceive(dashboard, "devices/d42/credentials")],
      ["operator pushes firmware", authorizer.canPublish(operator, "devices/d42/cmd/firmware")],
      ["device reads another's commands", authorizer.canReceive(device, "devices/d43/cmd/reboot")],
      ["device writes another's status", authorizer.canPublish(device, "devices/d43/status")],
    ];
    for (const [what, allowed] of rows) assert.equal(allowed, true, what);
    for (const [what, allowed] of denied) assert.equal(allowed, false, what);
  },
});

// ---- filter algebra, against brute force -----------------------------------------------------------------

/** A small deterministic PRNG, so failures reproduce. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
}

const FILTER_LEVELS = ["a", "$s", "", "+"];
const TOPIC_LEVELS = ["a", "$s", "", "z"]; // "z" is in no filter: it stands for "any other level"

function randomFilter(random: () => number): string {
  const depth = 1 + Math.floor(random() * 3);
  const levels = Array.from(
    { length: depth },
    () => FILTER_LEVELS[Math.floor(random() * FILTER_LEVELS.length)]!,
  );
  if (random() < 0.35) levels.push("#");
  return levels.join("/");
}

/** Every topic of 1 to 5 levels over TOPIC_LEVELS (one level deeper than any filter's fixed part). */
const UNIVERSE: readonly string[] = (() => {
  const out: string[] = [];
  let layer = [""];
  for (let depth = 1; depth <= 5; depth++) {
    layer = layer.flatMap((prefix) =>
      TOPIC_LEVELS.map((level) => depth === 1 ? level : `${prefix}/${level}`)
    );
    out.push(...layer);
  }
  return out;
})();

Deno.test("FilterSet.matches() agrees with matchesFilter() on random filters and topics", () => {
  const random = prng(7);
  for (let round = 0; round < 300; round++) {
    const filters = Array.from({ length: 1 + Math.floor(random() * 5) }, () => randomFilter(random));
    const set = new FilterSet(filters);
    for (const topic of UNIVERSE) {
      assert.equal(
        set.matches(topic),
        filters.some((f) => matchesFilter(f, topic)),
        `${filters} vs ${topic}`,
      );
    }
  }
});

Deno.test("filterIntersection() and filterCovers() agree with brute force over every topic", () => {
  const random = prng(11);
  for (let round = 0; round < 1500; round++) {
    const a = randomFilter(random);
    const b = random() < 0.2 ? a : randomFilter(random);
    const both = UNIVERSE.filter((t) => matchesFilter(a, t) && matchesFilter(b, t));
    const intersection = filterIntersection(a, b);
    if (both.length === 0) assert.equal(intersection, undefined, `${a} ∩ ${b}`);
    else {
      assert.ok(intersection !== undefined, `${a} ∩ ${b} is not empty: ${both[0]}`);
      for (const t of UNIVERSE) {
        assert.equal(
          matchesFilter(intersection, t),
          both.includes(t),
          `${a} ∩ ${b} = ${intersection}, at ${t}`,
        );
      }
    }
    const covers = UNIVERSE.every((t) => !matchesFilter(b, t) || matchesFilter(a, t));
    assert.equal(filterCovers(a, b), covers, `${a} covers ${b}`);
  }
});

Deno.test("AclAuthorizer: %c and %u grant nothing for an id or user name that is not one topic level", () => {
  // Issue 15 item 5: client id "victim/cmd" got devices/victim/cmd/# from devices/%c/#.
  const acl = AclFile.parse("pattern readwrite devices/%c/#\npattern readwrite users/%u/#\n");
  const authorizer = new AclAuthorizer(acl);
  const victimCmd: ClientIdentity = { clientId: "victim/cmd" };
  assert.equal(authorizer.canPublish(victimCmd, "devices/victim/cmd/reboot"), false);
  assert.equal(authorizer.canReceive(victimCmd, "devices/victim/cmd/reboot"), false);
  assert.equal(authorizer.canSubscribe(victimCmd, "devices/victim/cmd/#"), false);
  const slashUser: ClientIdentity = { clientId: "c-3", username: "alice/admin" };
  assert.equal(authorizer.canPublish(slashUser, "users/alice/admin/x"), false);
  assert.equal(authorizer.canPublish(slashUser, "devices/c-3/x"), false, "no pattern grants for that client");
  // One whole level is still substituted.
  assert.equal(authorizer.canPublish({ clientId: "victim" }, "devices/victim/cmd/reboot"), true);
});

Deno.test("AclAuthorizer: a pattern deny still applies when the id or user name is not one topic level", () => {
  const acl = AclFile.parse("user alice\ntopic readwrite alice/#\npattern deny %u/private/#\n");
  const authorizer = new AclAuthorizer(acl);
  assert.equal(authorizer.canReceive({ clientId: "ok", username: "alice" }, "alice/private/diary"), false);
  // A "+" in the client id must not lift alice's deny (it used to drop every pattern, denies included).
  for (const clientId of ["x/y", "dev+", "dev#"]) {
    const client: ClientIdentity = { clientId, username: "alice" };
    assert.equal(authorizer.canReceive(client, "alice/private/diary"), false, clientId);
    assert.equal(authorizer.canReceive(client, "alice/notes"), true, clientId);
  }
  // The deny widens (its level becomes "+"), never narrows, for a user name that is not one level.
  const wide = new AclAuthorizer(AclFile.parse("topic readwrite #\npattern deny %c/private/#\n"));
  assert.equal(wide.canReceive({ clientId: "a/b" }, "a/private/x"), false);
  assert.equal(wide.canReceive({ clientId: "a/b" }, "z/private/x"), false);
  assert.equal(wide.canReceive({ clientId: "a/b" }, "a/public/x"), true);
});

Deno.test("AclAuthorizer: logs once per client that an id or user name is not one topic level", () => {
  const lines: string[] = [];
  const logger = { error: () => {}, warn: (m: string) => lines.push(m), info: () => {}, debug: () => {} };
  const authorizer = new AclAuthorizer(AclFile.parse("pattern readwrite devices/%c/#\n"), { logger });
  for (let i = 0; i < 5; i++) authorizer.canPublish({ clientId: "victim/cmd" }, "devices/victim/cmd/x");
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(lines[0]!, /victim\/cmd/);
  authorizer.canPublish({ clientId: "fine" }, "devices/fine/x");
  assert.equal(lines.length, 1);
});
