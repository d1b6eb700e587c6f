/**
 * The password file and the ACL file in a real broker, over TCP with raw bytes: CONNACK codes for bad
 * credentials, SUBACK / PUBACK codes for denied subscriptions and publications, and deliveries, retained
 * messages and wills filtered by read and write access. Each case runs for MQTT 3.1.1 and 5.0.
 */

import assert from "node:assert/strict";
import { AclAuthorizer, AclFile } from "../../lib/broker/auth/acl_file.ts";
import { hashPassword } from "../../lib/auth/password_hash.ts";
import {
  PasswordFile,
  PasswordFileAuthenticator,
  writePasswordFile,
} from "../../lib/broker/auth/password_file.ts";
import type { BrokerOptions } from "../../lib/broker/broker.ts";
import {
  connectPacket,
  type ConnectSpec,
  hex,
  publishPacket,
  subackPacket,
  subscribe,
  subscribePacket,
  v,
  VERSIONS,
  WireClient,
  withBroker,
} from "../broker/_wire.ts";
import { freePort, mosquittoUnavailable, startMosquitto } from "../client/_mosquitto.ts";

const PASSWORDS = { alice: "alice-pw", bob: "bob-pw", carol: "carol-pw" } as const;

const ACL = `
user alice
topic readwrite alice/#
topic read public/#

user bob
topic readwrite bob/#
topic read alice/#
topic readwrite public/#

user carol
topic read alice/public/#
`;

/** Broker options with our authenticator and authorizer (few PBKDF2 rounds: these tests are about the wire). */
async function secured(): Promise<BrokerOptions> {
  const lines = await Promise.all(
    Object.entries(PASSWORDS).map(async ([user, pw]) =>
      `${user}:${await hashPassword(pw, { iterations: 1000 })}`
    ),
  );
  return {
    authenticator: new PasswordFileAuthenticator(PasswordFile.parse(lines.join("\n"))),
    authorizer: new AclAuthorizer(AclFile.parse(ACL)),
  };
}

/** A CONNECT with the right password for `user`. */
function as(user: keyof typeof PASSWORDS, version: 4 | 5, clientId: string = user): ConnectSpec {
  return { version, clientId, username: user, password: PASSWORDS[user] };
}

/** Expects a refused CONNECT: v5 CONNACK with `v5Code`, v3 CONNACK with `v4Code`; then the broker closes. */
async function expectRefused(client: WireClient, v5Code: number, v4Code: number): Promise<void> {
  if (client.version === 5) {
    const connack = await client.expectPacket(2, "CONNACK");
    assert.equal(connack.reasonCode, v5Code, `CONNACK 0x${connack.reasonCode.toString(16)}`);
  } else {
    await client.expect(hex(`20 02 00 0${v4Code}`), "CONNACK");
  }
  await client.expectClosed();
}

for (const version of VERSIONS) {
  const refusedCodes = version === 5 ? "0x86" : "0x04";

  Deno.test(`${v(version)}: a wrong password or an unknown user gets CONNACK ${refusedCodes}`, async () => {
    await withBroker(await secured(), async ({ open, connect }) => {
      const refused: ConnectSpec[] = [
        { ...as("alice", version), password: "wrong" },
        { version, clientId: "alice", username: "alice" }, // no password
        { version, clientId: "m", username: "mallory", password: "alice-pw" },
      ];
      for (const spec of refused) {
        const client = await open(version);
        await client.send(connectPacket(spec));
        await expectRefused(client, 0x86, 4);
      }
      const alice = await connect(as("alice", version));
      await alice.disconnect();
    });
  });

  Deno.test(`${v(version)}: an anonymous client on a listener without anonymous access gets Not authorized`, async () => {
    await withBroker(await secured(), async ({ broker }) => {
      const { port } = await broker.listen({ hostname: "127.0.0.1", port: 0, allowAnonymous: false });
      const client = new WireClient(await Deno.connect({ hostname: "127.0.0.1", port }), version);
      try {
        await client.send(connectPacket({ version, clientId: "anon" }));
        await expectRefused(client, 0x87, 5);
      } finally {
        await client.close();
      }
    });
  });

  Deno.test(`${v(version)}: SUBSCRIBE to a filter no read rule reaches is refused (SUBACK ${version === 5 ? "0x87" : "0x80"})`, async () => {
    await withBroker(await secured(), async ({ connect }) => {
      const alice = await connect(as("alice", version));
      const refused = version === 5 ? 0x87 : 0x80;
      await alice.send(
        subscribePacket(version, 1, [["alice/#", 1], ["bob/#", 1], ["public/+", 0], ["#", 0]]),
      );
      await alice.expect(subackPacket(version, 1, [1, refused, 0, 0]), "SUBACK");
      await alice.disconnect();
    });
  });

  Deno.test(`${v(version)}: PUBLISH without write access is dropped (v5 QoS 1: PUBACK 0x87)`, async () => {
    await withBroker(await secured(), async ({ connect }) => {
      const bob = await connect(as("bob", version));
      await subscribe(bob, 1, [["public/#", 1], ["alice/#", 1]]);
      const alice = await connect(as("alice", version));
      // alice may only read public/#.
      await alice.send(publishPacket(version, { topic: "public/news", payload: "q0" }));
      await alice.send(publishPacket(version, { topic: "public/news", payload: "q1", qos: 1, id: 7 }));
      const ack = await alice.expectPacket(4, "PUBACK");
      assert.equal(ack.packetId, 7);
      assert.equal(ack.reasonCode, version === 5 ? 0x87 : 0);
      await alice.barrier();
      // A publication she may make goes through, and is the only thing bob gets.
      await alice.send(publishPacket(version, { topic: "alice/diary", payload: "ok" }));
      await bob.expect(publishPacket(version, { topic: "alice/diary", payload: "ok" }), "allowed PUBLISH");
      await bob.barrier("nothing denied was delivered");
      await alice.disconnect();
      await bob.disconnect();
    });
  });

  Deno.test(`${v(version)}: a subscriber receives only the topics it may read`, async () => {
    await withBroker(await secured(), async ({ connect }) => {
      const carol = await connect(as("carol", version));
      await subscribe(carol, 1, [["alice/#", 0]]); // granted: alice/public/# overlaps it
      const alice = await connect(as("alice", version));
      await alice.send(publishPacket(version, { topic: "alice/private/x", payload: "secret" }));
      await alice.send(publishPacket(version, { topic: "alice/public/y", payload: "hello" }));
      await carol.expect(
        publishPacket(version, { topic: "alice/public/y", payload: "hello" }),
        "readable PUBLISH",
      );
      await carol.barrier("alice/private/x was not delivered");
      await alice.disconnect();
      await carol.disconnect();
    });
  });

  Deno.test(`${v(version)}: retained messages are sent only where the subscriber may read them`, async () => {
    await withBroker(await secured(), async ({ connect }) => {
      const alice = await connect(as("alice", version));
      await alice.send(publishPacket(version, { topic: "alice/private/r", payload: "p", retain: true }));
      await alice.send(publishPacket(version, { topic: "alice/public/r", payload: "q", retain: true }));
      await alice.barrier();
      const carol = await connect(as("carol", version));
      await subscribe(carol, 1, [["alice/#", 0]]);
      await carol.expect(
        publishPacket(version, { topic: "alice/public/r", payload: "q", retain: true }),
        "retained",
      );
      await carol.barrier("alice/private/r was not sent");
      await alice.disconnect();
      await carol.disconnect();
    });
  });

  Deno.test(`${v(version)}: a will to a topic its client may not write is not published`, async () => {
    await withBroker(await secured(), async ({ connect }) => {
      const bob = await connect(as("bob", version));
      await subscribe(bob, 1, [["bob/#", 0], ["alice/#", 0]]);
      const denied = await connect({
        ...as("alice", version, "alice-1"),
        will: { topic: "bob/will", payload: "not allowed" },
      });
      const allowed = await connect({
        ...as("alice", version, "alice-2"),
        will: { topic: "alice/will", payload: "allowed" },
      });
      await denied.close(); // no DISCONNECT: the will is due
      await allowed.close();
      await bob.expect(
        publishPacket(version, { topic: "alice/will", payload: "allowed" }),
        "the allowed will",
      );
      await bob.barrier("the denied will was not published");
      await bob.disconnect();
    });
  });
}

// ---- the same files in Mosquitto ---------------------------------------------------------------------------

/** Who publishes what, under examples/acl.conf. */
const PUBLICATIONS: readonly (readonly [publisher: string, topic: string])[] = [
  ["anonymous", "public/news"],
  ["anonymous", "public/inbox"],
  ["dashboard", "public/inbox"],
  ["operator", "devices/d42/cmd/reboot"],
  ["operator", "devices/d42/cmd/firmware"],
  ["firmware-service", "devices/d42/cmd/firmware"],
  ["d42", "devices/d42/status"],
  ["d42", "devices/d43/status"],
  ["d42", "devices/d42/credentials"],
  ["d42", "users/device/notes"],
  ["operator", "users/device/notes"],
];

/** The clients that subscribe to "#". */
const SUBSCRIBERS = ["anonymous", "dashboard", "operator", "d42"];

/** Client id and credentials of each actor; "d42" is a device: user "device", client id d42. */
function actor(name: string, role: "sub" | "pub"): Omit<ConnectSpec, "version"> {
  if (name === "anonymous") return { clientId: `anonymous-${role}` };
  const clientId = role === "sub" ? name : `${name}-pub`;
  if (name === "d42") return { clientId: "d42", username: "device", password: "pw" };
  return { clientId, username: name, password: "pw" };
}

/** Sends PINGREQ and collects "name <- topic" for each PUBLISH that comes before the PINGRESP. */
async function drain(client: WireClient, name: string, into: string[]): Promise<void> {
  await client.send(hex("c0 00"));
  for (;;) {
    const packet = await client.nextPacket(`PINGRESP for ${name}`);
    if (packet.type === 13) return;
    assert.equal(packet.type, 3, `${name}: a PUBLISH or PINGRESP`);
    into.push(`${name} <- ${packet.topic}`);
  }
}

/** Runs PUBLICATIONS against the broker on `port`; returns what each subscriber received, in order. */
async function deliveries(port: number): Promise<string[]> {
  const clients: WireClient[] = [];
  const open = async (name: string, role: "sub" | "pub"): Promise<WireClient> => {
    const client = new WireClient(await Deno.connect({ hostname: "127.0.0.1", port }), 4);
    clients.push(client);
    await client.send(connectPacket({ version: 4, ...actor(name, role) }));
    await client.expect(hex("20 02 00 00"), `CONNACK for ${name}`);
    return client;
  };
  const seen: string[] = [];
  try {
    const subscribers = new Map<string, WireClient>();
    for (const name of SUBSCRIBERS) {
      const client = await open(name, "sub");
      await subscribe(client, 1, [["#", 0]]);
      subscribers.set(name, client);
    }
    const publishers = new Map<string, WireClient>();
    for (const [publisher, topic] of PUBLICATIONS) {
      // d42 publishes on its subscribing connection (its client id is what its patterns use).
      let client = publisher === "d42" ? subscribers.get("d42") : publishers.get(publisher);
      if (client === undefined) publishers.set(publisher, client = await open(publisher, "pub"));
      seen.push(`${publisher} -> ${topic}`);
      await client.send(publishPacket(4, { topic, payload: publisher }));
      if (publisher !== "d42") await drain(client, publisher, []);
      for (const [name, subscriber] of subscribers) await drain(subscriber, name, seen);
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  return seen;
}

const canFiles = (["read", "write"] as const).every((name) =>
  Deno.permissions.querySync({ name }).state === "granted"
);
const noMosquitto = canFiles ? mosquittoUnavailable() : "needs --allow-read --allow-write";

Deno.test({
  name: noMosquitto === undefined
    ? "Mosquitto 2 and our broker deliver the same messages under examples/acl.conf and one password file"
    : `Mosquitto 2 and our broker agree under examples/acl.conf (skipped: ${noMosquitto})`,
  ignore: noMosquitto !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mqtt-acl-interop-" });
    try {
      const passwords = `${dir}/passwords`;
      const users = ["dashboard", "operator", "firmware-service", "device"];
      const hash = await hashPassword("pw", { iterations: 1000 });
      await writePasswordFile(passwords, users.map((user) => `${user}:${hash}\n`).join(""));
      const aclPath = new URL("../../examples/acl.conf", import.meta.url).pathname;

      const mosquitto = await startMosquitto({
        port: freePort(),
        extraConfig: [`password_file ${passwords}`, `acl_file ${aclPath}`, "user root"],
      });
      assert.ok(mosquitto !== undefined);
      let theirs: string[];
      try {
        theirs = await deliveries(mosquitto.port);
      } finally {
        await mosquitto.stop();
      }
      const options = {
        authenticator: new PasswordFileAuthenticator(await PasswordFile.load(passwords)),
        authorizer: new AclAuthorizer(await AclFile.load(aclPath)),
      };
      let ours: string[] = [];
      await withBroker(options, async ({ port }) => {
        ours = await deliveries(port);
      });
      assert.deepEqual(ours, theirs);
      assert.ok(theirs.length > PUBLICATIONS.length, "some messages were delivered");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
