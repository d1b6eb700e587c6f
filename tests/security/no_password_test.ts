/**
 * A broker that checks no passwords must not take a user name on trust (issue #15 item 6): a SCRAM-only broker
 * refuses a plain CONNECT that claims a user name, and a listener without anonymous access and without an
 * authenticator refuses every plain CONNECT (as Mosquitto 2 with `allow_anonymous false` and no password file).
 */

import assert from "node:assert/strict";
import { Broker } from "../../lib/broker/broker.ts";
import { scramCredential } from "../../lib/auth/scram.ts";
import { ScramSha256 } from "../../lib/broker/auth/scram.ts";
import { connectPacket, type ConnectSpec, v, VERSIONS, WireClient } from "../broker/_wire.ts";
import { authenticatorFor, PASSWORDS } from "./_secured.ts";

/** Sends `spec` to `port`; returns the CONNACK reason (v5) or return code (v3.1.1). */
async function connackCode(port: number, spec: ConnectSpec): Promise<number> {
  const client = new WireClient(await Deno.connect({ hostname: "127.0.0.1", port }), spec.version);
  try {
    await client.send(connectPacket(spec));
    if (spec.version === 5) return (await client.expectPacket(2, "CONNACK")).reasonCode;
    const bytes = await client.next("CONNACK");
    assert.equal(bytes[0], 0x20);
    return bytes[3]!;
  } finally {
    await client.close();
  }
}

async function withListening(
  broker: Broker,
  allowAnonymous: boolean,
  fn: (port: number) => Promise<void>,
): Promise<void> {
  try {
    const { port } = await broker.listen({ hostname: "127.0.0.1", port: 0, allowAnonymous });
    await fn(port);
  } finally {
    await broker.close();
  }
}

const scram = async () => {
  const users = new Map([["alice", await scramCredential("wonderland", 4096)]]);
  return [new ScramSha256((name) => users.get(name))];
};

for (const version of VERSIONS) {
  const notAuthorized = version === 5 ? 0x87 : 0x05;

  Deno.test(`${v(version)}: without an authenticator, a listener without anonymous access refuses a CONNECT with any user name (${notAuthorized === 0x87 ? "0x87" : "0x05"})`, async () => {
    await withListening(new Broker({ sysInterval: 0 }), false, async (port) => {
      assert.equal(
        await connackCode(port, { version, clientId: "c", username: "root", password: "x" }),
        notAuthorized,
      );
      assert.equal(await connackCode(port, { version, clientId: "c", username: "root" }), notAuthorized);
      assert.equal(await connackCode(port, { version, clientId: "c" }), notAuthorized);
    });
  });

  Deno.test(`${v(version)}: a SCRAM-only broker refuses a plain CONNECT claiming a user name; anonymous stays anonymous`, async () => {
    await withListening(new Broker({ sysInterval: 0, authMethods: await scram() }), true, async (port) => {
      assert.equal(await connackCode(port, { version, clientId: "c", username: "alice" }), notAuthorized);
      assert.equal(
        await connackCode(port, { version, clientId: "c", username: "alice", password: "anything" }),
        notAuthorized,
      );
      assert.equal(await connackCode(port, { version, clientId: "c" }), 0);
    });
  });

  Deno.test(`${v(version)}: a SCRAM broker with a password authenticator too takes plain CONNECTs with the right password`, async () => {
    const broker = new Broker({
      sysInterval: 0,
      authMethods: await scram(),
      authenticator: await authenticatorFor(),
    });
    await withListening(broker, true, async (port) => {
      const spec = { version, clientId: "c", username: "alice", password: PASSWORDS.alice } as const;
      assert.equal(await connackCode(port, spec), 0);
      assert.equal(await connackCode(port, { ...spec, password: "wrong" }), version === 5 ? 0x86 : 0x04);
    });
  });
}
