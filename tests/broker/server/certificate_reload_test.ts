/**
 * `RunningListeners.reloadCertificates()` (issue 16: certificates reloaded on SIGHUP): tls and wss listeners
 * serve new connections with the certificate read again; a bad file keeps the previous one and says why.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { Logger } from "../../../lib/broker/logger.ts";
import type { ListenerOptions } from "../../../lib/broker/server/listeners.ts";
import { certificatesUnavailable, makeCertificates, type TestCertificates } from "./_certs.ts";
import { testIf, withListeners } from "./_helpers.ts";

/** Whether a TLS client trusting only `ca` completes a handshake with the listener on `port`. */
async function trusts(port: number, ca: string): Promise<boolean> {
  let conn: Deno.TlsConn | undefined;
  try {
    conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [ca] });
    await conn.handshake();
    return true;
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch {
      // already closed
    }
  }
}

/** Server certificate files in the certificates' directory, holding the CA-signed pair at first. */
async function certificateFiles(certs: TestCertificates): Promise<{ certFile: string; keyFile: string }> {
  const certFile = join(certs.dir, "reload.crt");
  const keyFile = join(certs.dir, "reload.key");
  await Deno.writeTextFile(certFile, certs.serverCert);
  await Deno.writeTextFile(keyFile, certs.serverKey);
  return { certFile, keyFile };
}

function recordingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const record = (level: string) => (message: string) => lines.push(`${level}: ${message}`);
  return {
    logger: { error: record("error"), warn: record("warn"), info: record("info"), debug: () => {} },
    lines,
  };
}

for (const type of ["tls", "wss"] as const) {
  testIf(
    `${type} listener: reloadCertificates() serves new connections with the new certificate`,
    [certificatesUnavailable()],
    async () => {
      const certs = await makeCertificates();
      try {
        const files = await certificateFiles(certs);
        const listener: ListenerOptions = {
          type,
          name: `${type} listener`,
          port: 0,
          cert: certs.serverCert,
          key: certs.serverKey,
          ...files,
        };
        const { logger, lines } = recordingLogger();
        await withListeners([listener], async (running) => {
          const { port } = running.listeners[0]!;
          assert.equal(await trusts(port, certs.ca), true);
          assert.equal(await trusts(port, certs.strangerCa), false);
          await Deno.writeTextFile(files.certFile, certs.otherServerCert);
          await Deno.writeTextFile(files.keyFile, certs.otherServerKey);
          assert.deepEqual(await running.reloadCertificates(), [{
            name: `${type} listener`,
            kind: "reloaded",
          }]);
          assert.equal(running.listeners[0]!.port, port);
          assert.equal(await trusts(port, certs.strangerCa), true);
          assert.equal(await trusts(port, certs.ca), false);
        }, { logger });
        assert.ok(lines.includes(`info: ${type} listener: reloaded its certificate`), lines.join("\n"));
      } finally {
        await certs.remove();
      }
    },
  );
}

testIf(
  "tls listener: a certificate file that is missing or does not match its key keeps the old certificate",
  [certificatesUnavailable()],
  async () => {
    const certs = await makeCertificates();
    try {
      const files = await certificateFiles(certs);
      const { logger, lines } = recordingLogger();
      await withListeners([{
        type: "tls",
        name: "secure",
        port: 0,
        cert: certs.serverCert,
        key: certs.serverKey,
        ...files,
      }], async (running) => {
        const { port } = running.listeners[0]!;
        // A key that is not the certificate's.
        await Deno.writeTextFile(files.certFile, certs.otherServerCert);
        const [mismatch] = await running.reloadCertificates();
        assert.equal(mismatch?.kind, "kept");
        assert.match(mismatch?.kind === "kept" ? mismatch.reason : "", /cannot be used: .*KeyMismatch/);
        assert.equal(await trusts(port, certs.ca), true, "still the old certificate");
        // A file that is gone.
        await Deno.remove(files.keyFile);
        const [missing] = await running.reloadCertificates();
        assert.equal(missing?.kind, "kept");
        assert.match(missing?.kind === "kept" ? missing.reason : "", /cannot read .*reload\.key/);
        assert.equal(await trusts(port, certs.ca), true, "still the old certificate");
      }, { logger });
      const kept = lines.filter((line) => line.startsWith("error: secure: kept the previous certificate"));
      assert.equal(kept.length, 2, lines.join("\n"));
    } finally {
      await certs.remove();
    }
  },
);

Deno.test("reloadCertificates() leaves tcp and ws listeners alone", async () => {
  await withListeners([{ type: "tcp", port: 0 }, { type: "ws", port: 0 }], async (running) => {
    assert.deepEqual(await running.reloadCertificates(), []);
  });
});
