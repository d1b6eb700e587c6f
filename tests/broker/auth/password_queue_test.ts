/**
 * The password hashing queue under a guessing burst (issue 15 item 8): 300 wrong-password CONNECTs sent in 30 ms
 * kept the CPU busy for 19 s and every honest login not cached timed out meanwhile. The queue is bounded (v5
 * 0x89 Server busy, v3 0x03 beyond it), a closed connection's hash is dropped, failed logins are throttled per
 * address.
 */

import assert from "node:assert/strict";
import { hashPassword } from "../../../lib/auth/password_hash.ts";
import type { Authenticator, AuthResult, ConnectInfo } from "../../../lib/broker/auth/auth.ts";
import { HashQueue, PasswordQueueFullError } from "../../../lib/broker/auth/hash_queue.ts";
import { PasswordFile, PasswordFileAuthenticator } from "../../../lib/broker/auth/password_file.ts";
import { ManualClock } from "../../../lib/clock.ts";
import { connectPacket, hex, v, VERSIONS, waitFor, withBroker } from "../_wire.ts";

const encoder = new TextEncoder();

function login(address: string, username: string, password: string, signal?: AbortSignal): ConnectInfo {
  return {
    clientId: `c-${address}`,
    username,
    password: encoder.encode(password),
    remoteAddress: address,
    allowAnonymous: false,
    ...(signal === undefined ? {} : { signal }),
  };
}

Deno.test("PasswordFileAuthenticator: 300 wrong passwords in a burst do not keep an honest login waiting", async () => {
  // The default rounds (100,000), as a real password file has them.
  const file = PasswordFile.parse(`alice:${await hashPassword("wonderland")}\n`, { cacheSize: 0 });
  const auth = new PasswordFileAuthenticator(file);
  const burst: Promise<AuthResult>[] = [];
  for (let i = 0; i < 300; i++) {
    burst.push(Promise.resolve(auth.authenticate(login(`203.0.113.9:${40000 + i}`, "alice", `guess-${i}`))));
  }
  const started = performance.now();
  const honest = await auth.authenticate(login("198.51.100.7:50000", "alice", "wonderland"));
  const waited = performance.now() - started;
  assert.deepEqual(honest, { reasonCode: 0, username: "alice" });
  assert.ok(waited < 4000, `the honest login waited ${waited.toFixed(0)} ms`);
  const codes = (await Promise.all(burst)).map((r) => r.reasonCode);
  assert.ok(codes.every((code) => code === 0x86 || code === 0x89), `codes ${[...new Set(codes)]}`);
  assert.ok(
    codes.filter((code) => code === 0x89).length >= 290,
    "most of the burst was refused as Server busy",
  );
});

Deno.test("PasswordFile.verify(): beyond maxQueuedHashes it throws PasswordQueueFullError at once", async () => {
  const file = PasswordFile.parse(`alice:${await hashPassword("pw", { iterations: 1000 })}\n`, {
    cacheSize: 0,
    maxConcurrentHashes: 1,
    maxQueuedHashes: 8,
  });
  const results = await Promise.allSettled(Array.from({ length: 100 }, () => file.verify("alice", "nope")));
  const full = results.filter((r) => r.status === "rejected" && r.reason instanceof PasswordQueueFullError);
  assert.equal(full.length, 100 - 1 - 8, "one hashing, eight waiting, the rest refused");
  assert.ok(results.every((r) => r.status === "fulfilled" ? r.value === false : true));
});

Deno.test("PasswordFile.verify(): a verification whose signal aborts while it waits is dropped from the queue", async () => {
  const file = PasswordFile.parse(`alice:${await hashPassword("pw", { iterations: 200_000 })}\n`, {
    cacheSize: 0,
    maxConcurrentHashes: 1,
  });
  const running = file.verify("alice", "pw");
  const controller = new AbortController();
  const waiting = file.verify("alice", "pw", { signal: controller.signal });
  let settledFirst: "running" | "waiting" | undefined;
  running.then(() => settledFirst ??= "running");
  waiting.catch(() => settledFirst ??= "waiting");
  controller.abort(new Error("the connection closed"));
  await assert.rejects(waiting, /the connection closed/);
  assert.equal(settledFirst, "waiting", "dropped without waiting for the hash ahead of it");
  assert.equal(await running, true);
  // Aborted before it was asked: never queued.
  await assert.rejects(file.verify("alice", "pw", { signal: AbortSignal.abort() }));
});

Deno.test("PasswordFileAuthenticator: an address past its failed logins is refused with Server busy, without a hash", async () => {
  const clock = new ManualClock(1_000);
  const file = PasswordFile.parse(`alice:${await hashPassword("pw", { iterations: 1000 })}\n`);
  const auth = new PasswordFileAuthenticator(file, { maxFailedLoginsPerMinute: 5, clock });
  for (let i = 0; i < 5; i++) {
    assert.equal((await auth.authenticate(login("203.0.113.9:1", "alice", "bad"))).reasonCode, 0x86);
  }
  // Even the right password: a guesser must not learn that it guessed right.
  assert.equal((await auth.authenticate(login("203.0.113.9:2", "alice", "pw"))).reasonCode, 0x89);
  assert.equal(
    (await auth.authenticate(login("198.51.100.7:1", "alice", "pw"))).reasonCode,
    0,
    "other addresses",
  );
  clock.advance(12_000); // one failure's worth (60 s / 5)
  assert.equal((await auth.authenticate(login("203.0.113.9:3", "alice", "pw"))).reasonCode, 0);
});

Deno.test("PasswordFileAuthenticator: an address may have only a few hashes queued at once", async () => {
  const file = PasswordFile.parse(`alice:${await hashPassword("pw", { iterations: 1000 })}\n`, {
    cacheSize: 0,
  });
  const auth = new PasswordFileAuthenticator(file, { maxPendingPerAddress: 2 });
  const results = await Promise.all(
    Array.from({ length: 6 }, () => auth.authenticate(login("203.0.113.9:1", "alice", "pw"))),
  );
  assert.deepEqual(results.map((r) => r.reasonCode), [0, 0, 0x89, 0x89, 0x89, 0x89]);
});

for (const version of VERSIONS) {
  const busy = version === 5 ? "0x89 Server busy" : "0x03 Server unavailable";
  Deno.test(`${v(version)}: a throttled address gets CONNACK ${busy}`, async () => {
    const file = PasswordFile.parse(`alice:${await hashPassword("pw", { iterations: 1000 })}\n`);
    const authenticator = new PasswordFileAuthenticator(file, { maxFailedLoginsPerMinute: 2 });
    await withBroker({ authenticator }, async ({ open }) => {
      for (const password of ["bad", "bad", "pw"]) {
        const client = await open(version);
        await client.send(connectPacket({ version, clientId: "a", username: "alice", password }));
        const code = password === "bad" ? (version === 5 ? 0x86 : 4) : (version === 5 ? 0x89 : 3);
        if (version === 5) {
          assert.equal((await client.expectPacket(2, "CONNACK")).reasonCode, code);
        } else {
          await client.expect(hex(`20 02 00 0${code}`), "CONNACK");
        }
        await client.expectClosed();
      }
    });
  });
}

/** A password check that takes 50 ms in a one-slot {@linkcode HashQueue}, counting the hashes it runs. */
class CountingAuthenticator implements Authenticator {
  readonly #queue = new HashQueue(1, 100);
  /** Hashes started. */
  started = 0;
  /** authenticate() calls answered. */
  answered = 0;
  /** authenticate() calls that carried a signal. */
  signals = 0;

  async authenticate(info: ConnectInfo): Promise<AuthResult> {
    if (info.signal !== undefined) this.signals++;
    try {
      await this.#queue.run(async () => {
        this.started++;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }, info.signal);
      return { reasonCode: 0x86 };
    } catch {
      return { reasonCode: 0x89 };
    } finally {
      this.answered++;
    }
  }
}

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: 50 wrong-password CONNECTs whose sockets close at once leave no hash queued`, async () => {
    const authenticator = new CountingAuthenticator();
    // A connect timeout far beyond the test: the hang-ups must be noticed by reading, not by the timer.
    await withBroker({ authenticator, connectTimeout: 60_000 }, async ({ open }) => {
      for (let i = 0; i < 50; i++) {
        const client = await open(version);
        await client.send(
          connectPacket({ version, clientId: `guess-${i}`, username: "alice", password: "bad" }),
        );
        await client.close();
      }
      // 50 hashes in a row would take 2.5 s; the closed connections' hashes are dropped instead.
      await waitFor(() => authenticator.answered === 50, "every authentication answered", 1500);
      assert.equal(authenticator.signals, 50, "each CONNECT's authentication carries a signal");
      assert.ok(authenticator.started < 10, `${authenticator.started} hashes ran for closed connections`);
    });
  });
}
