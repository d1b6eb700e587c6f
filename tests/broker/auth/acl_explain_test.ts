/**
 * The ACL dry-run (`AclAuthorizer.explain`, `lib/broker/auth/acl_explain.ts`): it agrees with the real decision
 * for every case of the authorizer's tables and more, and names the deciding line.
 */

import assert from "node:assert/strict";
import type { ClientIdentity } from "../../../lib/broker/auth/auth.ts";
import { AclAuthorizer, AclFile } from "../../../lib/broker/auth/acl_file.ts";
import { ACL, alice, anon, bob, carol, dave, dev1, SUBSCRIBE_TABLE, TABLE } from "./_acl_cases.ts";

const CLIENTS: readonly ClientIdentity[] = [
  anon,
  alice,
  bob,
  carol,
  dave,
  dev1,
  { clientId: "victim/cmd" }, // not one level: patterns grant nothing, deny patterns widen
  { clientId: "dev+", username: "carol" },
  { clientId: "c-2", username: "car#" },
  { clientId: "c-3", username: "alice/admin" },
];

const TOPICS = [
  ...new Set([
    ...TABLE.map(([, , topic]) => topic),
    "devices/victim/cmd/reboot",
    "devices/x/cmd/reboot",
    "users/alice/x",
    "alice/private/x",
    "$SYS/broker/load",
  ]),
];

const FILTERS = [
  ...new Set([
    ...SUBSCRIBE_TABLE.map(([, , filter]) => filter),
    "$share/g",
    "$share/g/",
    "devices/+/cmd/reboot",
  ]),
];

const who = (c: ClientIdentity) => `${c.clientId}/${c.username ?? "-"}`;

for (const subscribe of ["overlap", "always"] as const) {
  Deno.test(`explain() agrees with canPublish/canReceive/canSubscribe for every client and topic (${subscribe})`, () => {
    const authorizer = new AclAuthorizer(AclFile.parse(ACL), { subscribe });
    let cases = 0;
    for (const client of CLIENTS) {
      const base = { clientId: client.clientId, username: client.username };
      for (const topic of TOPICS) {
        const publish = authorizer.explain({ ...base, action: "publish", topic });
        assert.equal(
          publish.allowed,
          authorizer.canPublish(client, topic),
          `${who(client)} publish ${topic}`,
        );
        const receive = authorizer.explain({ ...base, action: "receive", topic });
        assert.equal(
          receive.allowed,
          authorizer.canReceive(client, topic),
          `${who(client)} receive ${topic}`,
        );
        cases += 2;
      }
      for (const filter of FILTERS) {
        const sub = authorizer.explain({ ...base, action: "subscribe", topic: filter });
        assert.equal(
          sub.allowed,
          authorizer.canSubscribe(client, filter),
          `${who(client)} subscribe ${filter}`,
        );
        cases++;
      }
    }
    assert.ok(cases > 300, `${cases} cases`);
  });
}

Deno.test("explain() names the deciding line: a deny wins, a grant allows, nothing matching denies", () => {
  const acl = AclFile.parse(ACL, { path: "/etc/broker/acl" });
  const authorizer = new AclAuthorizer(acl);
  const line = (text: string) => acl.rules.find((r) => `${r.kind} ${r.access} ${r.filter}` === text)!.line;

  const denied = authorizer.explain({
    clientId: "a-1",
    username: "alice",
    action: "publish",
    topic: "alice/secret/x",
  });
  assert.deepEqual(denied.rule, {
    file: "/etc/broker/acl",
    line: line("topic deny alice/secret/#"),
    text: "topic deny alice/secret/#",
    filter: "alice/secret/#",
  });
  assert.equal(denied.allowed, false);
  assert.match(denied.reason, /deny/);

  const allowed = authorizer.explain({
    clientId: "a-1",
    username: "alice",
    action: "publish",
    topic: "alice/x",
  });
  assert.equal(allowed.allowed, true);
  assert.equal(allowed.rule?.text, "topic readwrite alice/#");

  const pattern = authorizer.explain({
    clientId: "dev1",
    action: "receive",
    topic: "devices/dev1/cmd/update",
  });
  assert.equal(pattern.rule?.text, "pattern read devices/%c/cmd/#");
  assert.equal(pattern.rule?.filter, "devices/dev1/cmd/#");
  assert.equal(pattern.rule?.line, line("pattern read devices/%c/cmd/#"));

  const none = authorizer.explain({ clientId: "anon-1", action: "publish", topic: "alice/notes" });
  assert.deepEqual({ allowed: none.allowed, rule: none.rule }, { allowed: false, rule: null });
  assert.match(none.reason, /no write rule matches: denied by default/);

  const sub = authorizer.explain({
    clientId: "a-1",
    username: "alice",
    action: "subscribe",
    topic: "alice/secret/#",
  });
  assert.equal(sub.allowed, false);
  assert.equal(sub.rule?.text, "topic deny alice/secret/#");

  const refused = authorizer.explain({ clientId: "dev+", action: "receive", topic: "devices/dev+/cmd/x" });
  assert.equal(refused.allowed, false);
  assert.match(refused.reason, /client id is not one topic level/);
});

Deno.test('explain() with subscribe "always" grants a SUBSCRIBE with no rule', () => {
  const authorizer = new AclAuthorizer(AclFile.parse("# none\n"), { subscribe: "always" });
  const answer = authorizer.explain({ clientId: "x", action: "subscribe", topic: "#" });
  assert.deepEqual({ allowed: answer.allowed, rule: answer.rule }, { allowed: true, rule: null });
});
