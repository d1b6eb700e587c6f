/**
 * The admin API's auth matrix (OPERATIONS.md §3.1): who gets in with what, and the browser rules.
 *
 * @module
 */

import assert from "node:assert/strict";
import { filesUnavailable, testIf } from "../_permissions.ts";
import { AdminAuth } from "../../lib/admin/auth.ts";
import type { LogFields } from "../../lib/broker/logger.ts";
import { basic, rawRequest, withAdmin } from "./_admin.ts";

Deno.test("admin API: no credentials is 401 with WWW-Authenticate and a JSON error", async () => {
  await withAdmin(async ({ call }) => {
    const response = await call("/api/v1/clients", { as: "none" });
    assert.equal(response.status, 401);
    assert.match(response.headers.get("www-authenticate") ?? "", /^Basic realm=/);
    const body = await response.json();
    assert.equal(body.error.code, "UNAUTHORIZED");
    assert.equal(typeof body.error.message, "string");
  });
});

Deno.test("admin API: a viewer reads but may not DELETE (403); an admin may", async () => {
  await withAdmin(async ({ call, broker }) => {
    const read = await call("/api/v1/clients", { as: "grafana" });
    assert.equal(read.status, 200);
    await read.body?.cancel();
    broker.publish({ topic: "a/b", payload: new Uint8Array([1]), qos: 0, retain: true });
    const viewer = await call("/api/v1/retained/a%2Fb", { as: "grafana", method: "DELETE" });
    assert.equal(viewer.status, 403);
    assert.equal((await viewer.json()).error.code, "FORBIDDEN");
    const admin = await call("/api/v1/retained/a%2Fb", { as: "ops", method: "DELETE" });
    assert.equal(admin.status, 204);
    await admin.body?.cancel();
  });
});

Deno.test("admin API: a device user of the password file not named in admin.users is 403", async () => {
  await withAdmin(async ({ call }) => {
    const response = await call("/api/v1/clients", { as: "sensor" });
    assert.equal(response.status, 403);
    assert.equal((await response.json()).error.code, "NOT_AN_ADMIN");
  });
});

Deno.test("admin API: a wrong password is 401", async () => {
  await withAdmin(async ({ call }) => {
    const response = await call("/api/v1/clients", {
      as: "none",
      headers: { authorization: basic("ops", "nope") },
    });
    assert.equal(response.status, 401);
    await response.body?.cancel();
  });
});

Deno.test("admin API: a Host that is not an IP address, localhost or allowed is 421 (DNS rebinding)", async () => {
  await withAdmin(async ({ port }) => {
    const auth = { authorization: basic("ops", "ops-pw") };
    const bad = await rawRequest(port, "/api/v1/clients", { host: `evil.example:${port}`, ...auth });
    assert.equal(bad.status, 421);
    for (
      const host of [`localhost:${port}`, `broker.example.net:${port}`, `10.1.2.3:${port}`, `[::1]:${port}`]
    ) {
      assert.equal((await rawRequest(port, "/api/v1/clients", { host, ...auth })).status, 200, host);
    }
    // /healthz too: the rule comes before everything.
    assert.equal((await rawRequest(port, "/healthz", { host: "evil.example" })).status, 421);
  }, { server: { allowedHosts: ["broker.example.net"] } });
});

Deno.test("admin API: a foreign Origin is 403; our own origin passes", async () => {
  await withAdmin(async ({ call, base }) => {
    const foreign = await call("/api/v1/clients", { headers: { origin: "http://evil.example" } });
    assert.equal(foreign.status, 403);
    assert.equal((await foreign.json()).error.code, "FOREIGN_ORIGIN");
    const own = await call("/api/v1/clients", { headers: { origin: base } });
    assert.equal(own.status, 200);
    await own.body?.cancel();
  });
});

Deno.test("admin API: a POST that is not application/json is 415 (a cross-site form cannot send JSON)", async () => {
  await withAdmin(async ({ call }) => {
    const response = await call("/api/v1/publish", {
      method: "POST",
      headers: { "content-type": "text/plain" },
    });
    assert.equal(response.status, 415);
    await response.body?.cancel();
  });
});

Deno.test("admin API: the 6th failed login from an address within 10 minutes is 429 with Retry-After", async () => {
  await withAdmin(async ({ call }) => {
    for (let i = 0; i < 5; i++) {
      const response = await call("/api/v1/login", {
        as: "none",
        json: { username: "ops", password: `guess${i}` },
      });
      assert.equal(response.status, 401, `attempt ${i + 1}`);
      await response.body?.cancel();
    }
    const sixth = await call("/api/v1/login", { as: "none", json: { username: "ops", password: "ops-pw" } });
    assert.equal(sixth.status, 429);
    assert.ok(Number(sixth.headers.get("retry-after")) > 0);
    assert.equal((await sixth.json()).error.code, "TOO_MANY_FAILED_LOGINS");
    // Basic auth from the same address is blocked too.
    const basicAuth = await call("/api/v1/clients");
    assert.equal(basicAuth.status, 429);
    await basicAuth.body?.cancel();
  });
});

Deno.test("AdminAuth: failures older than the window are forgotten", async () => {
  let now = 0;
  const auth = new AdminAuth({ memoryTokens: [], now: () => now, maxFailures: 2, failureWindowMs: 1000 });
  const login = () => auth.login({ token: "wrong" }, "10.0.0.1").then(() => 200, (e) => e.status as number);
  assert.equal(await login(), 401);
  assert.equal(await login(), 401);
  assert.equal(await login(), 429);
  now = 1001;
  assert.equal(await login(), 401);
});

Deno.test("admin API: a Bearer token works, with its role; an unknown one is 401", async () => {
  await withAdmin(async ({ call }) => {
    const ok = await call("/api/v1/clients", {
      as: "none",
      headers: { authorization: "Bearer viewer-token" },
    });
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    const write = await call("/api/v1/retained/x", {
      as: "none",
      method: "DELETE",
      headers: { authorization: "Bearer viewer-token" },
    });
    assert.equal(write.status, 403);
    await write.body?.cancel();
    const unknown = await call("/api/v1/clients", { as: "none", headers: { authorization: "Bearer nope" } });
    assert.equal(unknown.status, 401);
    await unknown.body?.cancel();
  });
});

Deno.test("admin API: login sets an HttpOnly SameSite=Strict cookie that authenticates; logout ends it", async () => {
  await withAdmin(async ({ call }) => {
    const login = await call("/api/v1/login", { as: "none", json: { username: "ops", password: "ops-pw" } });
    assert.equal(login.status, 204);
    const setCookie = login.headers.get("set-cookie") ?? "";
    assert.match(
      setCookie,
      /^denomqtt_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=3600$/,
    );
    const cookie = setCookie.split(";")[0]!;
    const withCookie = await call("/api/v1/clients", { as: "none", headers: { cookie } });
    assert.equal(withCookie.status, 200);
    await withCookie.body?.cancel();
    const logout = await call("/api/v1/logout", { as: "none", json: {}, headers: { cookie } });
    assert.equal(logout.status, 204);
    assert.match(logout.headers.get("set-cookie") ?? "", /Max-Age=0/);
    const after = await call("/api/v1/clients", { as: "none", headers: { cookie } });
    assert.equal(after.status, 401);
    await after.body?.cancel();
  });
});

Deno.test("admin API: a token login gives a cookie with the token's role", async () => {
  await withAdmin(async ({ call }) => {
    const login = await call("/api/v1/login", { as: "none", json: { token: "viewer-token" } });
    assert.equal(login.status, 204);
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0]!;
    const read = await call("/api/v1/clients", { as: "none", headers: { cookie } });
    assert.equal(read.status, 200);
    await read.body?.cancel();
    const write = await call("/api/v1/publish", { as: "none", headers: { cookie }, json: { topic: "t" } });
    assert.equal(write.status, 403);
    await write.body?.cancel();
  });
});

testIf("admin API: every answer has the security headers and no CORS header; HTML gets the CSP", [
  filesUnavailable(),
], async () => {
  await withAdmin(async ({ call }) => {
    for (const path of ["/api/v1/clients", "/healthz", "/", "/api/v1/nothing"]) {
      const response = await call(path, { headers: { origin: "http://127.0.0.1:1" } });
      await response.body?.cancel();
      const response2 = await call(path);
      await response2.body?.cancel();
      for (const r of [response, response2]) {
        assert.equal(r.headers.get("cache-control"), "no-store", path);
        assert.equal(r.headers.get("x-content-type-options"), "nosniff", path);
        assert.equal(r.headers.get("referrer-policy"), "no-referrer", path);
        for (const [name] of r.headers) assert.ok(!name.startsWith("access-control-"), `${path}: ${name}`);
      }
    }
  });
  const ui = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${ui}/index.html`, "<!doctype html><title>x</title>");
    await withAdmin(async ({ call }) => {
      const response = await call("/", { as: "none" });
      assert.equal(response.status, 200);
      await response.body?.cancel();
      assert.equal(
        response.headers.get("content-security-policy"),
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
          "frame-ancestors 'none'; base-uri 'none'",
      );
    }, { server: { uiDir: new URL(`file://${ui}/`) } });
  } finally {
    await Deno.remove(ui, { recursive: true });
  }
});

Deno.test("admin API: every request that may change something is logged as admin.action with who and what", async () => {
  const lines: { message: string; fields: LogFields | undefined }[] = [];
  const logger = {
    error() {},
    warn() {},
    debug() {},
    info: (message: string, fields?: LogFields) => lines.push({ message, fields }),
  };
  await withAdmin(async ({ call }) => {
    for (const who of ["ops", "grafana"] as const) {
      const response = await call("/api/v1/retained/x", { method: "DELETE", as: who });
      await response.body?.cancel();
    }
    const read = await call("/api/v1/clients");
    await read.body?.cancel();
  }, { broker: { logger } });
  const actions = lines.filter((l) => l.fields?.event === "admin.action");
  assert.deepEqual(
    actions.map((
      a,
    ) => [a.fields?.user, a.fields?.method, a.fields?.path, a.fields?.status, a.fields?.remote]),
    [["ops", "DELETE", "/api/v1/retained/x", 404, "127.0.0.1"], [
      "grafana",
      "DELETE",
      "/api/v1/retained/x",
      403,
      "127.0.0.1",
    ]],
  );
  assert.match(
    actions[0]!.message,
    /^admin action: ops \(admin, password\) from 127\.0\.0\.1: DELETE \/api\/v1\/retained\/x -> 404$/,
  );
});

Deno.test("AdminAuth: a password check that cannot run now (a full hashing queue) is 503, not 500", async () => {
  const auth = new AdminAuth({
    users: { ops: "admin" },
    passwords: { verify: () => Promise.reject(new Error("the hashing queue is full")) },
  });
  const request = new Request("http://127.0.0.1/api/v1/clients", {
    headers: { authorization: basic("ops", "x") },
  });
  await assert.rejects(
    auth.authenticate(request, "10.0.0.1"),
    (error: { status: number }) => error.status === 503,
  );
});
