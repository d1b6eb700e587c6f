import assert from "node:assert/strict";
import { Broker } from "../../../lib/broker/broker.ts";
import { ANONYMOUS_AUTHENTICATOR } from "../../../lib/broker/auth/auth.ts";
import { certificateIdentity, ListenerError, startListeners } from "../../../lib/broker/server/listeners.ts";
import { certificatesUnavailable, CLIENT_CN, makeCertificates, type TestCertificates } from "./_certs.ts";
import { MqttClient } from "../../../lib/client/client.ts";
import { cliUnavailable, runCli } from "../../cli/_cli.ts";
import {
  mqttJsRoundTrip,
  mqttJsUnavailable,
  RecordingAuthorizer,
  testIf,
  within,
  withListeners,
} from "./_helpers.ts";

// v3.1.1 CONNECT, client id "raw", clean session, keep alive 60.
const CONNECT = Uint8Array.of(0x10, 15, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 60, 0, 3, 0x72, 0x61, 0x77);

/** Registers `fn` as a test that gets fresh throw-away certificates, or as a skipped test that says why. */
function tlsTest(
  name: string,
  fn: (certs: TestCertificates) => Promise<void>,
  unavailable: readonly (string | undefined)[] = [],
): void {
  testIf(name, [certificatesUnavailable(), ...unavailable], async () => {
    const certs = await makeCertificates();
    try {
      await fn(certs);
    } finally {
      await certs.remove();
    }
  });
}

/** Sends CONNECT over a raw TLS connection; resolves with the first bytes back, or null when refused. */
async function rawConnect(port: number, certs: TestCertificates, client?: { cert: string; key: string }) {
  let conn: Deno.TlsConn;
  try {
    conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [certs.ca], ...client });
  } catch {
    return null; // the handshake failed on our side
  }
  try {
    await conn.write(CONNECT);
    const buffer = new Uint8Array(16);
    const n = await within(conn.read(buffer), "the broker's answer");
    return n === null ? null : [...buffer.subarray(0, n)];
  } catch (error) {
    if (error instanceof Error && /timed out/.test(error.message)) throw error;
    return null; // the server's alert arrives as a read error in TLS 1.3
  } finally {
    conn.close();
  }
}

/** A tls listener that requires a client certificate and takes its CN as the user name. */
function certificateListener(certs: TestCertificates) {
  return {
    type: "tls" as const,
    port: 0,
    cert: certs.serverCert,
    key: certs.serverKey,
    ca: certs.ca,
    requireCertificate: true,
    useIdentityAsUsername: true,
  };
}

tlsTest("tls listener: MQTT.js publishes and receives over mqtts:// with the test CA", async (certs) => {
  await withListeners(
    [{ type: "tls", port: 0, cert: certs.serverCert, key: certs.serverKey }],
    async (running) => {
      const url = running.listeners[0]!.url;
      assert.match(url, /^tls:\/\/127\.0\.0\.1:\d+$/);
      await mqttJsRoundTrip(url.replace("tls:", "mqtts:"), { ca: certs.ca, protocolVersion: 5 });
    },
  );
}, [mqttJsUnavailable()]);

tlsTest("wss listener: MQTT.js publishes and receives over wss://127.0.0.1:PORT/mqtt", async (certs) => {
  await withListeners(
    [{ type: "wss", port: 0, cert: certs.serverCert, key: certs.serverKey }],
    async (running) => {
      const url = running.listeners[0]!.url;
      assert.match(url, /^wss:\/\/127\.0\.0\.1:\d+\/mqtt$/);
      await mqttJsRoundTrip(url, { ca: certs.ca });
    },
  );
}, [mqttJsUnavailable()]);

tlsTest("tls listener with requireCertificate: a client certificate's CN is the user name", async (certs) => {
  const authorizer = new RecordingAuthorizer();
  await withListeners(
    [certificateListener(certs)],
    async (running) => {
      const url = running.listeners[0]!.url.replace("tls:", "mqtts:");
      // The user name the client claims is replaced by the certificate's (Mosquitto's use_identity_as_username).
      await mqttJsRoundTrip(url, {
        ca: certs.ca,
        cert: certs.clientCert,
        key: certs.clientKey,
        username: "spoof",
      });
      assert.ok(authorizer.seen.length > 0);
      for (const identity of authorizer.seen) assert.equal(identity.username, CLIENT_CN);
    },
    { authorizer, authenticator: certificateIdentity(ANONYMOUS_AUTHENTICATOR) },
  );
}, [mqttJsUnavailable()]);

tlsTest(
  "tls listener with requireCertificate but not useIdentityAsUsername keeps the client's user name",
  async (certs) => {
    const authorizer = new RecordingAuthorizer();
    await withListeners(
      [{
        type: "tls",
        port: 0,
        cert: certs.serverCert,
        key: certs.serverKey,
        ca: certs.ca,
        requireCertificate: true,
      }],
      async (running) => {
        const url = running.listeners[0]!.url.replace("tls:", "mqtts:");
        await mqttJsRoundTrip(url, {
          ca: certs.ca,
          cert: certs.clientCert,
          key: certs.clientKey,
          username: "alice",
        });
        for (const identity of authorizer.seen) assert.equal(identity.username, "alice");
      },
      { authorizer, authenticator: certificateIdentity(ANONYMOUS_AUTHENTICATOR) },
    );
  },
  [mqttJsUnavailable()],
);

tlsTest(
  "tls listener with requireCertificate: no certificate, or one from another CA, is refused",
  async (certs) => {
    await withListeners(
      [{
        type: "tls",
        port: 0,
        cert: certs.serverCert,
        key: certs.serverKey,
        ca: certs.ca,
        requireCertificate: true,
      }],
      async (running, broker) => {
        const { port } = running.listeners[0]!;
        assert.deepEqual(await rawConnect(port, certs, { cert: certs.clientCert, key: certs.clientKey }), [
          0x20,
          2,
          0,
          0,
        ]);
        assert.equal(await rawConnect(port, certs), null);
        assert.equal(
          await rawConnect(port, certs, { cert: certs.strangerCert, key: certs.strangerKey }),
          null,
        );
        assert.equal(broker.stats.connections, 1, "only the client with a certificate reached the broker");
      },
    );
  },
);

tlsTest("tls listener without requireCertificate accepts clients without certificates", async (certs) => {
  await withListeners(
    [{ type: "tls", port: 0, cert: certs.serverCert, key: certs.serverKey }],
    async (running) => {
      assert.deepEqual(await rawConnect(running.listeners[0]!.port, certs), [0x20, 2, 0, 0]);
    },
  );
});

tlsTest(
  "startListeners() names the listener whose key is unusable, and closes those it started",
  async (certs) => {
    const broker = new Broker({ sysInterval: 0 });
    try {
      await assert.rejects(
        startListeners(broker, [
          { type: "tcp", port: 0 },
          { type: "tls", name: "listeners[1]", port: 0, cert: certs.serverCert, key: "not a key" },
        ]),
        (error: Error) =>
          error instanceof ListenerError &&
          /^listeners\[1\]: cannot listen on tls:\/\/127\.0\.0\.1:0: /.test(error.message),
      );
    } finally {
      await broker.close();
    }
  },
);

/** Resolves once the server has closed `conn` (EOF or reset), after reading and dropping whatever it sent. */
async function closedByServer(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(256);
  try {
    while (await conn.read(buffer) !== null) {
      // an alert
    }
  } catch {
    // reset
  }
}

tlsTest(
  "tls listener: a peer that speaks MQTT without TLS is closed and never reaches the broker",
  async (certs) => {
    await withListeners(
      [{ type: "tls", port: 0, cert: certs.serverCert, key: certs.serverKey }],
      async (running, broker) => {
        const plain = await Deno.connect({ hostname: "127.0.0.1", port: running.listeners[0]!.port });
        try {
          await plain.write(CONNECT);
          await within(closedByServer(plain), "the close");
          assert.equal(broker.stats.connections, 0);
        } finally {
          plain.close();
        }
      },
    );
  },
);

tlsTest(
  "tls listener with requireCertificate: a peer that never starts the handshake is closed after connectTimeout",
  async (certs) => {
    await withListeners(
      [{
        type: "tls",
        port: 0,
        cert: certs.serverCert,
        key: certs.serverKey,
        ca: certs.ca,
        requireCertificate: true,
      }],
      async (running, broker) => {
        const silent = await Deno.connect({ hostname: "127.0.0.1", port: running.listeners[0]!.port });
        try {
          await within(closedByServer(silent), "the close", 3000);
          assert.equal(broker.stats.connections, 0);
        } finally {
          silent.close();
        }
      },
      { connectTimeout: 300 },
    );
  },
);

tlsTest(
  "our client library presents a client certificate (tls: { cert, key }); without one it is refused",
  async (certs) => {
    const authorizer = new RecordingAuthorizer();
    await withListeners(
      [certificateListener(certs)],
      async (running) => {
        const port = Number(new URL(running.listeners[0]!.url.replace("tls:", "http:")).port);
        const client = new MqttClient({
          hostname: "127.0.0.1",
          port,
          tls: { caCerts: [certs.ca], cert: certs.clientCert, key: certs.clientKey },
          reconnect: false,
        });
        await within(client.connect(), "CONNACK over TLS with a client certificate");
        await client.publish("with/cert", "x", { qos: 1 });
        await client.close();
        assert.ok(
          authorizer.seen.some((identity) => identity.username === CLIENT_CN),
          "the CN is the user name",
        );
        const anonymous = new MqttClient({
          hostname: "127.0.0.1",
          port,
          tls: { caCerts: [certs.ca] },
          reconnect: false,
        });
        await assert.rejects(within(anonymous.connect(), "refusal without a certificate"));
        await anonymous.close();
      },
      { authorizer, authenticator: certificateIdentity(ANONYMOUS_AUTHENTICATOR) },
    );
  },
);

tlsTest(
  "client CLI: pub --cafile --cert --key reaches a listener that requires a certificate; --cert alone is a usage error",
  async (certs) => {
    const authorizer = new RecordingAuthorizer();
    const certFile = `${certs.dir}/client.crt`;
    const keyFile = `${certs.dir}/client.key`;
    await Deno.writeTextFile(certFile, certs.clientCert);
    await Deno.writeTextFile(keyFile, certs.clientKey);
    await withListeners(
      [certificateListener(certs)],
      async (running) => {
        const port = new URL(running.listeners[0]!.url.replace("tls:", "http:")).port;
        const common = [
          "pub",
          "-h",
          "127.0.0.1",
          "-p",
          port,
          "--cafile",
          certs.caFile,
          "-t",
          "cli/cert",
          "-m",
          "x",
        ];
        const ok = await runCli([...common, "--cert", certFile, "--key", keyFile, "-q", "1"]);
        assert.equal(ok.code, 0, ok.stderr);
        assert.ok(
          authorizer.seen.some((identity) => identity.username === CLIENT_CN),
          "the CN is the user name",
        );
        const half = await runCli([...common, "--cert", certFile]);
        assert.equal(half.code, 2);
        assert.match(half.stderr, /--cert and --key go together/);
      },
      { authorizer, authenticator: certificateIdentity(ANONYMOUS_AUTHENTICATOR) },
    );
  },
  [cliUnavailable()],
);
