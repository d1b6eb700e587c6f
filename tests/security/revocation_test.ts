/**
 * Revocation on reload (issue #15 item 2): `Broker.updateSecurity()` (what SIGHUP calls after reloading the
 * password file and the ACL) disconnects connected users no longer in the password file (v5 DISCONNECT 0x87) and
 * checks queued and in-flight messages against the new read rules before they go out.
 */

import assert from "node:assert/strict";
import { filesUnavailable, testIf } from "../_permissions.ts";
import { AclAuthorizer, AclFile } from "../../lib/broker/auth/acl_file.ts";
import { PasswordFile, PasswordFileAuthenticator } from "../../lib/broker/auth/password_file.ts";
import type { Message } from "../../lib/broker/storage/persistence.ts";
import {
  connectPacket,
  hex,
  PINGREQ,
  PINGRESP,
  publishPacket,
  subscribe,
  v,
  VERSIONS,
  type WireClient,
  withBroker,
} from "../broker/_wire.ts";
import { ACL, as, authenticatorFor, authorizerFor, passwordText } from "./_secured.ts";

/** The ACL without alice's rule: she may read nothing any more. */
const ACL_WITHOUT_ALICE = ACL.replace("topic readwrite alice/#", "");

function message(payload: string): Message {
  return {
    topic: "alice/door",
    payload: new TextEncoder().encode(payload),
    qos: 1,
    retain: false,
    origin: "carol",
  };
}

/** Expects a refused CONNECT: v5 0x86 Bad User Name or Password, v3.1.1 0x04. */
async function expectBadCredentials(client: WireClient): Promise<void> {
  if (client.version === 5) {
    const connack = await client.expectPacket(2, "CONNACK");
    assert.equal(connack.reasonCode, 0x86, `CONNACK 0x${connack.reasonCode.toString(16)}`);
  } else {
    await client.expect(hex("20 02 00 04"), "CONNACK 0x04");
  }
  await client.expectClosed();
}

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: after an ACL swap without alice's read rule her queued messages are not delivered`, async () => {
    const options = { authenticator: await authenticatorFor(), authorizer: authorizerFor() };
    await withBroker(options, async ({ broker, connect }) => {
      const alice = await connect(as("alice", version, "dev-a"));
      await subscribe(alice, 1, [["alice/#", 1]]);
      await alice.disconnect();
      for (const payload of ["m1", "m2", "m3"]) broker.publish(message(payload));
      broker.updateSecurity({ authorizer: authorizerFor(ACL_WITHOUT_ALICE) });
      const back = await connect(as("alice", version, "dev-a"), true);
      await back.barrier("no queued message after the revocation");
      assert.equal(broker.session("dev-a")?.dropped, 3, "the three messages count as dropped");
      assert.equal(broker.session("dev-a")?.queued, 0);
      await back.disconnect();
    });
  });

  testIf(
    `${
      v(version)
    }: an ACL file reloaded in place, then updateSecurity(), stops queued and in-flight messages`,
    [filesUnavailable()],
    async () => {
      const dir = await Deno.makeTempDir();
      try {
        const path = `${dir}/acl`;
        await Deno.writeTextFile(path, ACL);
        const acl = await AclFile.load(path);
        const options = { authenticator: await authenticatorFor(), authorizer: new AclAuthorizer(acl) };
        await withBroker(options, async ({ broker, connect }) => {
          const alice = await connect(as("alice", version, "dev-a"));
          await subscribe(alice, 1, [["alice/#", 1]]);
          broker.publish(message("in flight"));
          await alice.expectPacket(3, "the in-flight PUBLISH (not acknowledged)");
          await alice.close(); // no PUBACK, no DISCONNECT
          broker.publish(message("queued"));
          await Deno.writeTextFile(path, ACL_WITHOUT_ALICE);
          await acl.reload();
          broker.updateSecurity();
          const back = await connect(as("alice", version, "dev-a"), true);
          await back.barrier("neither the DUP resend nor the queued message");
          assert.equal(broker.session("dev-a")?.dropped, 2);
          await back.disconnect();
        });
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  Deno.test(`${v(version)}: after a password file swap without bob, bob is disconnected${version === 5 ? " (0x87)" : ""} and cannot publish or come back`, async () => {
    const options = { authenticator: await authenticatorFor(), authorizer: authorizerFor() };
    await withBroker(options, async ({ broker, open, connect }) => {
      const bob = await connect(as("bob", version, "bob-1", true));
      const carol = await connect(as("carol", version, "carol-1", true));
      await subscribe(carol, 1, [["carol/#", 0]]);
      broker.updateSecurity({ authenticator: await authenticatorFor(["alice", "carol"]) });
      await bob.expectDisconnect(0x87, "DISCONNECT Not authorized");
      await bob.trySend(publishPacket(version, { topic: "carol/x", payload: "after" }));
      // carol, still in the file, stays connected and got nothing from bob.
      await carol.send(PINGREQ);
      await carol.expect(PINGRESP, "PINGRESP: carol is still connected, nothing from bob");
      const again = await open(version);
      await again.send(connectPacket(as("bob", version, "bob-1", true)));
      await expectBadCredentials(again);
      await carol.disconnect();
    });
  });

  testIf(
    `${
      v(version)
    }: a password file reloaded in place, then updateSecurity(), disconnects the removed user only`,
    [filesUnavailable()],
    async () => {
      const dir = await Deno.makeTempDir();
      try {
        const path = `${dir}/passwd`;
        await Deno.writeTextFile(path, await passwordText());
        const file = await PasswordFile.load(path);
        const options = { authenticator: new PasswordFileAuthenticator(file), authorizer: authorizerFor() };
        await withBroker(options, async ({ broker, connect }) => {
          const bob = await connect(as("bob", version, "bob-1", true));
          const alice = await connect(as("alice", version, "alice-1", true));
          const anonymous = await connect({ version, clientId: "anon" });
          await Deno.writeTextFile(path, await passwordText(["alice", "carol"]));
          await file.reload();
          broker.updateSecurity();
          await bob.expectDisconnect(0x87, "DISCONNECT Not authorized");
          for (const client of [alice, anonymous]) {
            await client.send(PINGREQ);
            await client.expect(PINGRESP, "still connected");
            await client.disconnect();
          }
        });
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}
