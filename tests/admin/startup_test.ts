/**
 * `broker.ts` with an admin listener: the start-up rule (exit 1 naming the listener), the loopback start-up token,
 * config users and token file, reload through the API, and SIGTERM with an event stream open.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { hashPassword } from "../../lib/auth/password_hash.ts";
import { tokenHash } from "../../lib/admin/tokens.ts";
import {
  type BrokerProcess,
  runBroker,
  subprocessUnavailable,
  withBrokerProcess,
} from "../cli/_broker_process.ts";

const ignore = subprocessUnavailable() !== undefined;

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function writeConfig(dir: string, config: unknown): Promise<string> {
  const path = join(dir, "broker.json");
  await Deno.writeTextFile(path, JSON.stringify(config, null, 2));
  return path;
}

/** The admin URL `broker.ts` printed (`admin: URL`). */
async function adminUrl(broker: BrokerProcess): Promise<string> {
  await broker.until("the admin line", () => /^admin: \S+$/m.test(broker.stdout));
  return broker.stdout.match(/^admin: (\S+)$/m)![1]!;
}

Deno.test({
  name:
    "broker.ts refuses an admin listener on a network address without admin credentials, naming it (exit 1)",
  ignore,
  fn: () =>
    withDir(async (dir) => {
      const config = await writeConfig(dir, {
        listeners: [{ type: "tcp", port: 0 }, { type: "http", host: "0.0.0.0", port: 0 }],
        persistence: "memory",
      });
      const result = await runBroker(["--config", config]);
      assert.equal(result.code, 1);
      assert.equal(result.stdout, "", "nothing was listening");
      assert.match(
        result.stderr,
        /broker: listeners\[1\] \(http on 0\.0\.0\.0:0\): refusing to serve the admin API to the network without authentication/,
      );
      const flags = await runBroker([
        "-p",
        "0",
        "--persistence",
        "memory",
        "--admin-port",
        "0",
        "--admin-host",
        "0.0.0.0",
      ]);
      assert.equal(flags.code, 1);
      assert.match(
        flags.stderr,
        /broker: --admin-port \(http on 0\.0\.0\.0:0\): refusing to serve the admin API/,
      );
    }),
});

Deno.test({
  name:
    "broker.ts on loopback with no admin credentials prints a start-up token that logs in; SIGTERM with SSE open",
  ignore,
  fn: () =>
    withBrokerProcess(["-p", "0", "--persistence", "memory", "--admin-port", "0"], async (broker) => {
      const url = await adminUrl(broker);
      const match = url.match(/^(http:\/\/127\.0\.0\.1:\d+)\/#token=([A-Za-z0-9_-]{43})$/);
      assert.ok(match, url);
      const [, base, token] = match;
      const anonymous = await fetch(`${base}/api/v1/broker`);
      assert.equal(anonymous.status, 401);
      await anonymous.body?.cancel();
      const login = await fetch(`${base}/api/v1/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token }),
      });
      assert.equal(login.status, 204);
      const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
      const listeners = await fetch(`${base}/api/v1/listeners`, { headers: { cookie } });
      const types = ((await listeners.json()).data as { type: string }[]).map((l) => l.type);
      assert.deepEqual(types, ["tcp", "http"]);
      // SIGTERM with an event stream open: the process still exits at once.
      const events = await fetch(`${base}/api/v1/events`, { headers: { authorization: `Bearer ${token}` } });
      const reader = events.body!.getReader();
      await reader.read();
      const started = Date.now();
      broker.kill("SIGTERM");
      const status = await broker.exited();
      assert.equal(status.code, 0);
      assert.ok(Date.now() - started < 5000, `exited in ${Date.now() - started} ms`);
      for (;;) if ((await reader.read()).done) break;
    }),
});

Deno.test({
  name: "broker.ts admits the config's admin users and token file; reload re-reads them and says what it did",
  ignore,
  fn: () =>
    withDir(async (dir) => {
      await Deno.writeTextFile(
        join(dir, "passwords"),
        `ops:${await hashPassword("ops-pw", { iterations: 1000 })}\ndevice:${await hashPassword("d", {
          iterations: 1000,
        })}\n`,
      );
      await Deno.writeTextFile(join(dir, "tokens"), `prometheus:viewer:${await tokenHash("scrape-me")}\n`);
      const config = await writeConfig(dir, {
        listeners: [{ type: "tcp", port: 0 }, { type: "http", host: "0.0.0.0", port: 0 }],
        persistence: "memory",
        passwordFile: "passwords",
        admin: { users: { ops: "admin" }, tokenFile: "tokens" },
      });
      await withBrokerProcess(["--config", config], async (broker) => {
        const url = await adminUrl(broker);
        assert.match(url, /^http:\/\/0\.0\.0\.0:\d+\/$/);
        const base = `http://127.0.0.1:${new URL(url).port}`;
        const ops = { authorization: `Basic ${btoa("ops:ops-pw")}` };
        const device = { authorization: `Basic ${btoa("device:d")}` };
        const scraper = { authorization: "Bearer scrape-me" };
        const status = async (path: string, headers: Record<string, string>, init: RequestInit = {}) => {
          const response = await fetch(`${base}${path}`, {
            ...init,
            headers: { ...headers, ...init.headers },
          });
          await response.body?.cancel();
          return response.status;
        };
        assert.equal(await status("/api/v1/broker", ops), 200);
        assert.equal(await status("/api/v1/broker", device), 403);
        assert.equal(await status("/metrics", {}), 401);
        assert.equal(await status("/metrics", scraper), 200);
        // The viewer token loses its line; reload through the API (as an admin).
        await Deno.writeTextFile(join(dir, "tokens"), "");
        const reload = await fetch(`${base}/api/v1/reload`, {
          method: "POST",
          headers: { ...ops, "content-type": "application/json" },
          body: "{}",
        });
        assert.deepEqual(await reload.json(), { admin: "reloaded", passwordFile: "reloaded" });
        assert.equal(await status("/metrics", scraper), 401);
        await broker.until(
          "the audit line",
          () => /admin action: ops \(admin, password\)/.test(broker.stderr),
        );
        assert.match(
          broker.stderr,
          /admin action: ops \(admin, password\) from 127\.0\.0\.1: POST \/api\/v1\/reload -> 200/,
        );
      });
    }),
});
