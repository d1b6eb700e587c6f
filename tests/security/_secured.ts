/**
 * A broker's security for the session-ownership and revocation tests: users alice, bob and carol with cheap
 * password hashes, an ACL given as text, and CONNECT specs with the right password.
 *
 * @module
 */

import { AclAuthorizer, AclFile } from "../../lib/broker/auth/acl_file.ts";
import { hashPassword } from "../../lib/auth/password_hash.ts";
import { PasswordFile, PasswordFileAuthenticator } from "../../lib/broker/auth/password_file.ts";
import type { ConnectSpec } from "../broker/_wire.ts";
import { P } from "../broker/_wire.ts";

/** Every user the tests know, with their password. */
export const PASSWORDS = { alice: "alice-pw", bob: "bob-pw", carol: "carol-pw" } as const;

/** A user of {@linkcode PASSWORDS}. */
export type User = keyof typeof PASSWORDS;

/**
 * alice reads and writes alice/#; bob bob/# (and may write carol/#); carol may write alice/# (she publishes to
 * alice's devices).
 */
export const ACL = `
user alice
topic readwrite alice/#

user bob
topic readwrite bob/#
topic write carol/#

user carol
topic write alice/#
topic readwrite carol/#
`;

/** The text of a password file holding `users` (few PBKDF2 rounds: these tests are about the broker). */
export async function passwordText(users: readonly User[] = ["alice", "bob", "carol"]): Promise<string> {
  const lines = await Promise.all(
    users.map(async (user) => `${user}:${await hashPassword(PASSWORDS[user], { iterations: 1000 })}`),
  );
  return lines.join("\n");
}

/** A password file authenticator for `users`. */
export async function authenticatorFor(
  users: readonly User[] = ["alice", "bob", "carol"],
): Promise<PasswordFileAuthenticator> {
  return new PasswordFileAuthenticator(PasswordFile.parse(await passwordText(users)));
}

/** An ACL authorizer for `text`. */
export function authorizerFor(text: string = ACL): AclAuthorizer {
  return new AclAuthorizer(AclFile.parse(text));
}

/** A CONNECT with the right password for `user`: persistent (Clean Session 0, v5 expiry 300 s) unless `clean`. */
export function as(user: User, version: 4 | 5, clientId: string, clean = false): ConnectSpec {
  return {
    version,
    clientId,
    username: user,
    password: PASSWORDS[user],
    clean,
    ...(version === 5 && !clean ? { properties: [P.sessionExpiry(300)] } : {}),
  };
}
