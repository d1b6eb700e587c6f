/** The ACL file and the decisions it must give, shared by the authorizer's tests and the dry-run's. */

import type { ClientIdentity } from "../../../lib/broker/auth/auth.ts";

/** An ACL with anonymous rules, user blocks, denies and patterns. */
export const ACL = `
# Anonymous clients (no user name): the lines before the first "user".
topic read public/#
topic write public/inbox

user alice
topic readwrite alice/#
topic deny alice/secret/#
topic read shared/+/status

user bob
topic bob/#
topic write drop/box
topic read $SYS/broker/#

user dave
topic readwrite #

# Patterns apply to every client.
pattern read devices/%c/cmd/#
pattern write devices/%c/status
pattern deny devices/%c/cmd/reboot
pattern readwrite users/%u/#
pattern deny %u/private/#
`;

export const anon: ClientIdentity = { clientId: "anon-1" };
export const alice: ClientIdentity = { clientId: "a-1", username: "alice" };
export const bob: ClientIdentity = { clientId: "b-1", username: "bob" };
export const carol: ClientIdentity = { clientId: "c-1", username: "carol" }; // no user block: patterns only
export const dave: ClientIdentity = { clientId: "d-1", username: "dave" };
export const dev1: ClientIdentity = { clientId: "dev1" };

export type Row = readonly [
  who: string,
  client: ClientIdentity,
  topic: string,
  read: boolean,
  write: boolean,
];

export const TABLE: readonly Row[] = [
  // topic rules before any "user": anonymous clients only
  ["anonymous", anon, "public/news", true, false],
  ["anonymous", anon, "public", true, false], // "#" matches the parent level
  ["anonymous", anon, "public/inbox", true, true],
  ["anonymous", anon, "alice/notes", false, false],
  // a user's block
  ["alice", alice, "alice/notes", true, true],
  ["alice", alice, "alice", true, true],
  ["alice", alice, "shared/x/status", true, false],
  ["alice", alice, "shared/x/y/status", false, false],
  ["alice", alice, "public/news", false, false], // anonymous rules are not a user's
  // deny wins over grants, in the user's block and from patterns
  ["alice: topic deny", alice, "alice/secret", false, false],
  ["alice: topic deny", alice, "alice/secret/plans", false, false],
  ["alice: pattern deny %u", alice, "alice/private/diary", false, false],
  // default access is readwrite; write-only; "$" topics need a "$" rule
  ["bob", bob, "bob/x", true, true],
  ["bob", bob, "drop/box", false, true],
  ["bob", bob, "$SYS/broker/uptime", true, false],
  ["bob", bob, "$SYS/other", false, false],
  ["dave: topic readwrite #", dave, "any/topic", true, true],
  ["dave: # does not match $ topics", dave, "$SYS/broker/uptime", false, false],
  // unknown user: patterns only
  ["carol", carol, "users/carol/x", true, true],
  ["carol", carol, "users/alice/x", false, false],
  ["carol", carol, "public/news", false, false],
  // %c
  ["dev1", dev1, "devices/dev1/cmd/update", true, false],
  ["dev1", dev1, "devices/dev1/status", false, true],
  ["dev1", dev1, "devices/dev2/cmd/update", false, false],
  ["dev1: pattern deny %c", dev1, "devices/dev1/cmd/reboot", false, false],
  // %u does not apply without a user name
  ["dev1 (anonymous)", dev1, "users//x", false, false],
  // a "+" or "#" in an id or user name disables patterns
  ["id with +", { clientId: "dev+", username: "carol" }, "users/carol/x", false, false],
  ["user name with #", { clientId: "c-2", username: "car#" }, "users/car#", false, false],
];

export type SubRow = readonly [who: string, client: ClientIdentity, filter: string, granted: boolean];

export const SUBSCRIBE_TABLE: readonly SubRow[] = [
  ["alice", alice, "alice/#", true],
  ["alice", alice, "alice/+/x", true],
  ["alice: # overlaps alice/#; deliveries are filtered", alice, "#", true],
  ["alice: inside a deny", alice, "alice/secret/#", false],
  ["alice: inside a deny", alice, "alice/secret/x", false],
  ["alice: inside a pattern deny", alice, "alice/private/+", false],
  ["alice: only the denied part of alice/# overlaps, but shared/+/status too", alice, "+/secret/#", true],
  ["alice: nobody else's", alice, "bob/#", false],
  ["alice: shared subscription", alice, "$share/g/alice/#", true],
  ["alice: shared subscription", alice, "$share/g/bob/#", false],
  ["alice: $SYS", alice, "$SYS/#", false],
  ["bob: write-only topic", bob, "drop/box", false],
  ["bob", bob, "$SYS/#", true],
  ["dave: # does not cover $SYS", dave, "$SYS/#", false],
  ["dave", dave, "#", true],
  ["anonymous", anon, "public/+", true],
  ["anonymous", anon, "alice/#", false],
  ["dev1", dev1, "devices/dev1/cmd/#", true],
  ["dev1: overlaps its own", dev1, "devices/+/cmd/#", true],
  ["dev1", dev1, "devices/dev2/cmd/#", false],
  ["dev1: only the denied topic", dev1, "devices/dev1/cmd/reboot", false],
];
