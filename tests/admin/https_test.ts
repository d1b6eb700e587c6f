/**
 * An `https` admin listener: served over TLS, the login cookie is `Secure`, and the listener shows its
 * certificate's expiry.
 *
 * @module
 */

import assert from "node:assert/strict";
import { certificatesUnavailable, makeCertificates } from "../broker/server/_certs.ts";
import { withAdmin } from "./_admin.ts";

Deno.test({
  name: "an https admin listener serves over TLS, with a Secure login cookie and the certificate's expiry",
  ignore: certificatesUnavailable() !== undefined,
  fn: async () => {
    const certs = await makeCertificates();
    const client = Deno.createHttpClient({ caCerts: [certs.ca] });
    try {
      await withAdmin(async ({ port }) => {
        const base = `https://127.0.0.1:${port}`;
        const login = await fetch(`${base}/api/v1/login`, {
          client,
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ username: "ops", password: "ops-pw" }),
        });
        assert.equal(login.status, 204);
        const cookie = login.headers.get("set-cookie") ?? "";
        assert.match(cookie, /; Secure$/);
        const listeners = await fetch(`${base}/api/v1/listeners`, {
          client,
          headers: { cookie: cookie.split(";")[0]! },
        });
        const [https] = (await listeners.json()).data as {
          type: string;
          tls: boolean;
          certExpiresAt: number;
        }[];
        assert.deepEqual([https!.type, https!.tls], ["https", true]);
        assert.ok(https!.certExpiresAt > Date.now(), String(https!.certExpiresAt));
      }, {
        server: {
          listeners: [{
            name: "tls admin",
            type: "https",
            port: 0,
            cert: certs.serverCert,
            key: certs.serverKey,
          }],
        },
      });
    } finally {
      client.close();
      await certs.remove();
    }
  },
});
