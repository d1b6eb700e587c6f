/**
 * MQTT 5.0 enhanced authentication (5.0 section 4.12) with SCRAM-SHA-256 over the AUTH exchange, and
 * re-authentication (5.0 section 4.12.1), spoken in raw packets over an in-memory transport.
 */

import assert from "node:assert/strict";
import { Broker } from "../../lib/broker/broker.ts";
import { SCRAM_SHA_256, scramClient, scramCredential } from "../../lib/auth/scram.ts";
import { ScramSha256 } from "../../lib/broker/auth/scram.ts";
import { memoryPair } from "../../lib/transport/memory.ts";
import type { ByteStream } from "../../lib/transport/transport.ts";
import { decodePacket, encode, Framer, type Packet, type Properties } from "../../lib/mod.ts";

/** A raw v5 peer: sends packets, receives decoded ones. */
class Peer {
  readonly #stream: ByteStream;
  readonly #framer = new Framer();
  readonly #buffer = new Uint8Array(4096);
  readonly #queue: Packet[] = [];

  constructor(stream: ByteStream) {
    this.#stream = stream;
  }

  async send(packet: Packet): Promise<void> {
    await this.#stream.write(encode(packet, 5));
  }

  async next(): Promise<Packet | undefined> {
    for (;;) {
      const queued = this.#queue.shift();
      if (queued !== undefined) return queued;
      const n = await this.#stream.read(this.#buffer);
      if (n === null) return undefined;
      this.#framer.push(this.#buffer.subarray(0, n));
      for (let f = this.#framer.next(); f !== undefined; f = this.#framer.next()) {
        const packet = decodePacket(f.header, f.body, 5);
        // Copy what outlives the read buffer.
        this.#queue.push(structuredClone(packet));
      }
    }
  }

  close(): void {
    this.#stream.close();
  }
}

async function withScramBroker(fn: (connect: () => Peer) => Promise<void>): Promise<void> {
  const users = new Map([["alice", await scramCredential("wonderland", 4096)]]);
  const broker = new Broker({ sysInterval: 0, authMethods: [new ScramSha256((name) => users.get(name))] });
  await broker.start();
  const served: Promise<void>[] = [];
  try {
    await fn(() => {
      const [client, server] = memoryPair();
      served.push(broker.handle(server, { remoteAddress: "127.0.0.1:1", allowAnonymous: true }));
      return new Peer(client);
    });
  } finally {
    await broker.close();
    await Promise.all(served);
  }
}

/** Reads the server's AUTH 0x18 challenge and answers it with the client-final message. */
async function answerChallenge(peer: Peer, scram: ReturnType<typeof scramClient>): Promise<void> {
  const challenge = await peer.next();
  assert.ok(challenge?.type === 15, "AUTH challenge");
  assert.equal(challenge.reasonCode, 0x18);
  assert.equal(challenge.properties?.authenticationMethod, SCRAM_SHA_256);
  await peer.send({
    type: 15,
    reasonCode: 0x18,
    properties: {
      authenticationMethod: SCRAM_SHA_256,
      authenticationData: await scram.final(challenge.properties!.authenticationData!),
    },
  });
}

function connect(properties: Properties): Packet {
  return { type: 1, protocolVersion: 5, clientId: "c1", cleanStart: true, keepAlive: 0, properties };
}

Deno.test("SCRAM-SHA-256: CONNECT, AUTH 0x18 challenge, AUTH 0x18 response, CONNACK with server-final (5.0 section 4.12)", async () => {
  await withScramBroker(async (open) => {
    const peer = open();
    const scram = scramClient("alice", "wonderland");
    await peer.send(connect({ authenticationMethod: SCRAM_SHA_256, authenticationData: scram.first }));
    await answerChallenge(peer, scram);
    const connack = await peer.next();
    assert.ok(connack?.type === 2);
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties?.authenticationMethod, SCRAM_SHA_256);
    assert.equal(await scram.verify(connack.properties!.authenticationData!), true);

    // Re-authentication: AUTH 0x19 starts a new exchange on the live connection [MQTT-4.12.1-1 (5.0)].
    const again = scramClient("alice", "wonderland");
    await peer.send({
      type: 15,
      reasonCode: 0x19,
      properties: { authenticationMethod: SCRAM_SHA_256, authenticationData: again.first },
    });
    await answerChallenge(peer, again);
    const done = await peer.next();
    assert.ok(done?.type === 15);
    assert.equal(done.reasonCode, 0);
    assert.equal(await again.verify(done.properties!.authenticationData!), true);
    peer.close();
  });
});

Deno.test("SCRAM-SHA-256: a wrong password gets CONNACK 0x87 and the connection closes", async () => {
  await withScramBroker(async (open) => {
    const peer = open();
    const scram = scramClient("alice", "wrong");
    await peer.send(connect({ authenticationMethod: SCRAM_SHA_256, authenticationData: scram.first }));
    await answerChallenge(peer, scram);
    const connack = await peer.next();
    assert.ok(connack?.type === 2);
    assert.equal(connack.reasonCode, 0x87);
    assert.equal(await peer.next(), undefined);
    peer.close();
  });
});

Deno.test("SCRAM-SHA-256: an unknown user is challenged like a known one, then refused", async () => {
  await withScramBroker(async (open) => {
    const peer = open();
    const scram = scramClient("mallory", "x");
    await peer.send(connect({ authenticationMethod: SCRAM_SHA_256, authenticationData: scram.first }));
    await answerChallenge(peer, scram);
    const connack = await peer.next();
    assert.ok(connack?.type === 2 && connack.reasonCode === 0x87);
    peer.close();
  });
});

Deno.test("enhanced auth: an unsupported Authentication Method gets CONNACK 0x8C Bad authentication method", async () => {
  await withScramBroker(async (open) => {
    const peer = open();
    await peer.send(connect({ authenticationMethod: "KERBEROS" }));
    const connack = await peer.next();
    assert.ok(connack?.type === 2);
    assert.equal(connack.reasonCode, 0x8c);
    peer.close();
  });
});

Deno.test("enhanced auth: AUTH with another method than CONNECT's is a protocol error [MQTT-4.12.0-5 (5.0)]", async () => {
  await withScramBroker(async (open) => {
    const peer = open();
    const scram = scramClient("alice", "wonderland");
    await peer.send(connect({ authenticationMethod: SCRAM_SHA_256, authenticationData: scram.first }));
    assert.equal((await peer.next())?.type, 15);
    await peer.send({ type: 15, reasonCode: 0x18, properties: { authenticationMethod: "OTHER" } });
    const connack = await peer.next();
    assert.ok(connack?.type === 2);
    assert.equal(connack.reasonCode, 0x82);
    peer.close();
  });
});
