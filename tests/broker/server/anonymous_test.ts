import assert from "node:assert/strict";
import {
  ANONYMOUS_AUTHENTICATOR,
  type Authenticator,
  type ConnectInfo,
} from "../../../lib/broker/auth/auth.ts";
import { Broker } from "../../../lib/broker/broker.ts";
import {
  anonymousAllowed,
  certificateIdentity,
  isLoopback,
  ListenerError,
  type ListenerOptions,
  startListeners,
} from "../../../lib/broker/server/listeners.ts";

Deno.test("isLoopback() knows the loopback addresses", () => {
  for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]", "::ffff:127.0.0.1"]) {
    assert.equal(isLoopback(host), true, host);
  }
  for (
    const host of [
      "0.0.0.0",
      "::",
      "192.168.1.10",
      "10.0.0.1",
      "example.com",
      "128.0.0.1",
      "127.0.0.1.nip.io",
    ]
  ) {
    assert.equal(isLoopback(host), false, host);
  }
});

const PEM = { cert: "-----BEGIN CERTIFICATE-----", key: "-----BEGIN PRIVATE KEY-----" };

Deno.test("anonymousAllowed(): loopback allows, the network needs authentication or an explicit allowAnonymous", () => {
  const cases: [string, ListenerOptions, boolean, boolean | "refused"][] = [
    ["tcp on loopback", { type: "tcp", port: 1883 }, false, true],
    ["tcp on loopback with passwords", { type: "tcp", port: 1883 }, true, true],
    [
      "tcp on loopback, allowAnonymous false",
      { type: "tcp", port: 1883, allowAnonymous: false },
      false,
      false,
    ],
    ["ws on localhost", { type: "ws", hostname: "localhost", port: 8080 }, false, true],
    ["tcp on 0.0.0.0", { type: "tcp", hostname: "0.0.0.0", port: 1883 }, false, "refused"],
    ["ws on ::", { type: "ws", hostname: "::", port: 8080 }, false, "refused"],
    ["tls on 0.0.0.0", { type: "tls", hostname: "0.0.0.0", port: 8883, ...PEM }, false, "refused"],
    ["wss on 0.0.0.0", { type: "wss", hostname: "0.0.0.0", port: 8081, ...PEM }, false, "refused"],
    ["tcp on 0.0.0.0 with passwords", { type: "tcp", hostname: "0.0.0.0", port: 1883 }, true, false],
    [
      "tls on 0.0.0.0 with client certificates",
      { type: "tls", hostname: "0.0.0.0", port: 8883, ...PEM, ca: "", requireCertificate: true },
      false,
      false,
    ],
    [
      "tcp on 0.0.0.0, allowAnonymous true",
      { type: "tcp", hostname: "0.0.0.0", port: 1883, allowAnonymous: true },
      false,
      true,
    ],
  ];
  for (const [what, listener, passwords, expected] of cases) {
    if (expected === "refused") {
      assert.throws(() => anonymousAllowed(listener, passwords), ListenerError, what);
    } else {
      assert.equal(anonymousAllowed(listener, passwords), expected, what);
    }
  }
});

Deno.test("anonymousAllowed() names the listener it refuses and says how to fix it", () => {
  assert.throws(
    () => anonymousAllowed({ type: "tcp", name: "listeners[2]", hostname: "0.0.0.0", port: 1883 }, false),
    {
      name: "ListenerError",
      message: "listeners[2] (tcp on 0.0.0.0:1883): refusing to accept clients from the network without " +
        'authentication; configure a passwordFile or "requireCertificate", or set "allowAnonymous": true on this ' +
        "listener",
    },
  );
});

Deno.test("startListeners() refuses an unauthenticated non-loopback listener before binding anything", async () => {
  const broker = new Broker({ sysInterval: 0 });
  try {
    await assert.rejects(
      startListeners(broker, [{ type: "tcp", port: 0 }, {
        type: "tcp",
        name: "public",
        hostname: "0.0.0.0",
        port: 0,
      }]),
      { name: "ListenerError", message: /^public \(tcp on 0\.0\.0\.0:0\): refusing/ },
    );
  } finally {
    await broker.close();
  }
});

Deno.test("certificateIdentity() makes the CN the user name and leaves other clients to the inner authenticator", async () => {
  const calls: ConnectInfo[] = [];
  const inner: Authenticator = {
    authenticate(info) {
      calls.push(info);
      return ANONYMOUS_AUTHENTICATOR.authenticate(info);
    },
  };
  const auth = certificateIdentity(inner);
  const base = { clientId: "c", remoteAddress: "127.0.0.1:1", allowAnonymous: false };
  assert.deepEqual(
    await auth.authenticate({ ...base, username: "spoof", certificateCommonName: "device-42" }),
    {
      reasonCode: 0,
      username: "device-42",
    },
  );
  assert.equal(calls.length, 0);
  assert.deepEqual(await auth.authenticate(base), { reasonCode: 0x87 });
  // The inner one checks no password: without anonymous access a user name alone gets nobody in (issue #15 item 6).
  assert.deepEqual(await auth.authenticate({ ...base, username: "bob" }), { reasonCode: 0x87 });
  assert.equal(calls.length, 2);
});
