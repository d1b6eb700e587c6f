/**
 * A persistent session belongs to the user who made it (issue #15 item 1): another user presenting its client id
 * is refused (v5 CONNACK 0x87, v3.1.1 0x05) and the owner's queued messages stay hers, also across a restart on
 * SQLite. And a message leaves the queue only for a user who may still read it.
 */

import assert from "node:assert/strict";
import { filesUnavailable, testIf } from "../_permissions.ts";
import { Broker } from "../../lib/broker/broker.ts";
import type { Logger } from "../../lib/broker/logger.ts";
import { SqlitePersistence } from "../../lib/broker/storage/sqlite_persistence.ts";
import type { Message } from "../../lib/broker/storage/persistence.ts";
import type { ProtocolVersion } from "../../lib/packet/packet_type.ts";
import type { PublishPacket } from "../../lib/packet/publish.ts";
import {
  CONNACK_OK_V4,
  CONNACK_PRESENT_V4,
  connectPacket,
  type ConnectSpec,
  hex,
  puback,
  subscribe,
  v,
  VERSIONS,
  WireClient,
  withBroker,
} from "../broker/_wire.ts";
import { ACL, as, authenticatorFor, authorizerFor } from "./_secured.ts";

const decoder = new TextDecoder();

function message(payload: string, topic = "alice/door"): Message {
  return { topic, payload: new TextEncoder().encode(payload), qos: 1, retain: false, origin: "carol" };
}

/** Expects CONNACK Not authorized (v5 0x87, v3.1.1 0x05), then the close. */
async function expectNotAuthorized(client: WireClient): Promise<void> {
  if (client.version === 5) {
    const connack = await client.expectPacket(2, "CONNACK");
    assert.equal(connack.reasonCode, 0x87, `CONNACK 0x${connack.reasonCode.toString(16)}`);
  } else {
    await client.expect(hex("20 02 00 05"), "CONNACK 0x05");
  }
  await client.expectClosed();
}

/** Reads `count` QoS 1 PUBLISH, acknowledging each; returns their payloads. */
async function receive(client: WireClient, count: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const publish = await client.expectPacket(3, `PUBLISH ${i + 1}`) as PublishPacket;
    out.push(decoder.decode(publish.payload));
    await client.send(puback(client.version, publish.packetId!));
  }
  return out;
}

/** A logger that keeps its lines. */
function recording(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const keep = (line: string) => void lines.push(line);
  return { logger: { debug: keep, info: keep, warn: keep, error: keep, level: "debug" } as Logger, lines };
}

/** Connects on `port`, expecting acceptance (Session Present as given). */
async function connectTo(port: number, spec: ConnectSpec, present: boolean): Promise<WireClient> {
  const client = new WireClient(await Deno.connect({ hostname: "127.0.0.1", port }), spec.version);
  await client.send(connectPacket(spec));
  if (spec.version === 5) {
    const connack = await client.expectPacket(2, "CONNACK");
    assert.equal(connack.reasonCode, 0, "CONNACK accepted");
    assert.equal(connack.sessionPresent, present, "Session Present");
  } else {
    await client.expect(present ? CONNACK_PRESENT_V4 : CONNACK_OK_V4, "CONNACK");
  }
  return client;
}

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: another user presenting a persistent session's client id is refused (${version === 5 ? "0x87" : "0x05"}) and the session stays its owner's`, async () => {
    const { logger, lines } = recording();
    const options = { authenticator: await authenticatorFor(), authorizer: authorizerFor(), logger };
    await withBroker(options, async ({ broker, open, connect }) => {
      const alice = await connect(as("alice", version, "dev-a"));
      await subscribe(alice, 1, [["alice/#", 1]]);
      await alice.disconnect();
      for (const payload of ["m1", "m2", "m3"]) broker.publish(message(payload));
      assert.equal(broker.session("dev-a")?.queued, 3);

      for (const clean of [false, true]) {
        const bob = await open(version);
        await bob.send(connectPacket(as("bob", version, "dev-a", clean)));
        await expectNotAuthorized(bob);
      }
      assert.ok(
        lines.some((line) => line.includes("dev-a") && line.includes("bob") && line.includes("alice")),
        `the refusal is logged with both users: ${lines.join("\n")}`,
      );
      assert.equal(broker.session("dev-a")?.queued, 3, "alice's messages are still queued");

      const back = await connect(as("alice", version, "dev-a"), true);
      assert.deepEqual(await receive(back, 3), ["m1", "m2", "m3"]);
      await back.disconnect();
    });
  });

  Deno.test(`${v(version)}: a connected session's client id is refused to another user and the owner stays connected`, async () => {
    const options = { authenticator: await authenticatorFor(), authorizer: authorizerFor() };
    await withBroker(options, async ({ broker, open, connect }) => {
      const alice = await connect(as("alice", version, "dev-a", true));
      await subscribe(alice, 1, [["alice/#", 1]]);
      const bob = await open(version);
      await bob.send(connectPacket(as("bob", version, "dev-a", true)));
      await expectNotAuthorized(bob);
      broker.publish(message("still mine"));
      assert.deepEqual(await receive(alice, 1), ["still mine"]);
      await alice.disconnect();
    });
  });

  Deno.test(`${v(version)}: an anonymous client may take over an anonymous session (no user on either side)`, async () => {
    await withBroker({}, async ({ broker, connect }) => {
      const first = await connect({ version, clientId: "anon-1", clean: false, ...persistentProps(version) });
      await subscribe(first, 1, [["x/#", 1]]);
      await first.disconnect();
      broker.publish({ ...message("q"), topic: "x/y" });
      const second = await connect(
        { version, clientId: "anon-1", clean: false, ...persistentProps(version) },
        true,
      );
      assert.deepEqual(await receive(second, 1), ["q"]);
      await second.disconnect();
    });
  });

  testIf(`${v(version)}: session ownership survives a restart on SQLite`, [filesUnavailable()], async () => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/broker.db`;
    try {
      const security = async () => ({ authenticator: await authenticatorFor(), authorizer: authorizerFor() });
      const first = new Broker({
        sysInterval: 0,
        persistence: new SqlitePersistence(path),
        ...await security(),
      });
      const { port } = await first.listen({ hostname: "127.0.0.1", port: 0 });
      const alice = await connectTo(port, as("alice", version, "dev-a"), false);
      await subscribe(alice, 1, [["alice/#", 1]]);
      await alice.disconnect();
      for (const payload of ["m1", "m2", "m3"]) first.publish(message(payload));
      await first.close();

      const second = new Broker({
        sysInterval: 0,
        persistence: new SqlitePersistence(path),
        ...await security(),
      });
      const { port: port2 } = await second.listen({ hostname: "127.0.0.1", port: 0 });
      try {
        const bob = new WireClient(await Deno.connect({ hostname: "127.0.0.1", port: port2 }), version);
        await bob.send(connectPacket(as("bob", version, "dev-a")));
        await expectNotAuthorized(bob);
        await bob.close();
        const back = await connectTo(port2, as("alice", version, "dev-a"), true);
        assert.deepEqual(await receive(back, 3), ["m1", "m2", "m3"]);
        await back.disconnect();
      } finally {
        await second.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  testIf(
    `${v(version)}: queued messages the owner may no longer read after a restart are dropped, not delivered`,
    [filesUnavailable()],
    async () => {
      const dir = await Deno.makeTempDir();
      const path = `${dir}/broker.db`;
      try {
        const first = new Broker({
          sysInterval: 0,
          persistence: new SqlitePersistence(path),
          authenticator: await authenticatorFor(),
          authorizer: authorizerFor(),
        });
        const { port } = await first.listen({ hostname: "127.0.0.1", port: 0 });
        const alice = await connectTo(port, as("alice", version, "dev-a"), false);
        await subscribe(alice, 1, [["alice/#", 1]]);
        await alice.disconnect();
        for (const payload of ["m1", "m2"]) first.publish(message(payload));
        first.publish(message("public", "alice/public/news"));
        await first.close();

        // The new ACL lets alice read only alice/public/#.
        const narrower = ACL.replace("topic readwrite alice/#", "topic read alice/public/#");
        const second = new Broker({
          sysInterval: 0,
          persistence: new SqlitePersistence(path),
          authenticator: await authenticatorFor(),
          authorizer: authorizerFor(narrower),
        });
        const { port: port2 } = await second.listen({ hostname: "127.0.0.1", port: 0 });
        try {
          const back = await connectTo(port2, as("alice", version, "dev-a"), true);
          assert.deepEqual(await receive(back, 1), ["public"]);
          await back.barrier("nothing alice may no longer read");
          assert.equal(second.session("dev-a")?.dropped, 2, "the two unreadable messages count as dropped");
          await back.disconnect();
        } finally {
          await second.close();
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

function persistentProps(version: ProtocolVersion): Pick<ConnectSpec, "properties"> {
  return version === 5 ? { properties: [hex("11 00 00 01 2c")] } : {};
}
