/**
 * The other endpoints: broker, stats, subscriptions, topics, retained, publish, listeners, reload, healthz, the
 * dashboard's files, and unknown paths and methods.
 *
 * @module
 */

import assert from "node:assert/strict";
import { filesUnavailable, testIf } from "../_permissions.ts";
import { AclAuthorizer, AclFile } from "../../lib/broker/auth/acl_file.ts";
import { subscribe, withBroker } from "../broker/_wire.ts";
import { adminOn, withAdmin } from "./_admin.ts";

const text = (s: string) => new TextEncoder().encode(s);

Deno.test("GET /api/v1/broker and /api/v1/listeners describe the broker and its listeners", async () => {
  await withAdmin(async ({ callJson }) => {
    const { status, body } = await callJson("/api/v1/broker");
    assert.equal(status, 200);
    assert.equal(typeof body.version, "string");
    assert.equal(body.deno, Deno.version.deno);
    assert.equal(body.persistence, "memory");
    assert.equal((body.limits as { maxQoS: number }).maxQoS, 2);
    const listeners = await callJson("/api/v1/listeners");
    const [admin] = listeners.body.data as { type: string; url: string; tls: boolean }[];
    assert.equal(admin!.type, "http");
    assert.match(admin!.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  });
});

Deno.test("GET /api/v1/stats gives gauges, counters and rates; the history has columns for the charts", async () => {
  await withBroker({}, async (context) => {
    await context.connect({ version: 5, clientId: "s" });
    await adminOn(context.broker, async ({ callJson }) => {
      const { status, body } = await callJson("/api/v1/stats");
      assert.equal(status, 200);
      assert.equal((body.gauges as { clientsConnected: number }).clientsConnected, 1);
      assert.equal((body.counters as { connections: number }).connections, 1);
      const counters = body.counters as {
        disconnects: Record<string, number>;
        messagesDroppedByReason: object;
      };
      assert.equal(counters.disconnects.normal, 0);
      assert.ok("queue_full" in counters.messagesDroppedByReason);
      assert.equal(typeof (body.rates as { msgIn: number }).msgIn, "number");
      const history = await callJson("/api/v1/stats/history?seconds=60");
      assert.equal(history.status, 200);
      assert.equal(history.body.interval, 10);
      assert.ok(Array.isArray(history.body.t));
      assert.equal((await callJson("/api/v1/stats/history?seconds=5")).status, 400);
    });
  });
});

Deno.test("GET /api/v1/stats/history answers from the stats source", async () => {
  const stats = { rates: () => ({ msgIn: 1 }), history: (seconds: number) => ({ interval: 10, seconds }) };
  await withAdmin(async ({ callJson }) => {
    assert.deepEqual((await callJson("/api/v1/stats/history?seconds=60")).body, {
      interval: 10,
      seconds: 60,
    });
    assert.deepEqual((await callJson("/api/v1/stats")).body.rates, { msgIn: 1 });
  }, { server: { stats } });
});

Deno.test("GET /api/v1/subscriptions lists by client and filter, with share groups and paging", async () => {
  await withBroker({}, async (context) => {
    const a = await context.connect({ version: 5, clientId: "a" });
    await subscribe(a, 1, [["t/1", 0], ["$share/g/t/+", 1]]);
    const b = await context.connect({ version: 5, clientId: "b" });
    await subscribe(b, 1, [["t/2", 2]]);
    await adminOn(context.broker, async ({ callJson }) => {
      const all = await callJson("/api/v1/subscriptions");
      const rows = all.body.data as { clientId: string; filter: string; shareGroup: string | null }[];
      assert.deepEqual(rows.map((r) => `${r.clientId} ${r.filter}`), ["a $share/g/t/+", "a t/1", "b t/2"]);
      assert.equal(rows[0]!.shareGroup, "g");
      const shared = await callJson("/api/v1/subscriptions?share=g");
      assert.equal((shared.body.data as unknown[]).length, 1);
      const ofB = await callJson("/api/v1/subscriptions?clientId=b");
      assert.equal((ofB.body.data as unknown[]).length, 1);
      const page = await callJson("/api/v1/subscriptions?limit=2");
      const next = (page.body.meta as { next: string }).next;
      const rest = await callJson(`/api/v1/subscriptions?limit=2&after=${encodeURIComponent(next)}`);
      assert.deepEqual((rest.body.data as { filter: string }[]).map((r) => r.filter), ["t/2"]);
    });
  });
});

Deno.test("GET /api/v1/topics returns one level of the tree from subscriptions and retained messages", async () => {
  await withBroker({}, async (context) => {
    const a = await context.connect({ version: 5, clientId: "a" });
    await subscribe(a, 1, [["home/kitchen/temp", 0], ["$share/g/home/+", 0], ["office/#", 0]]);
    context.broker.publish({ topic: "home/kitchen/temp", payload: text("21"), qos: 0, retain: true });
    context.broker.publish({ topic: "home", payload: text("x"), qos: 0, retain: true });
    await adminOn(context.broker, async ({ callJson }) => {
      const top = await callJson("/api/v1/topics");
      assert.deepEqual(top.body, {
        path: "",
        children: [
          { level: "home", path: "home", subscriptions: 0, retained: true, descendants: 3 },
          { level: "office", path: "office", subscriptions: 0, retained: false, descendants: 1 },
        ],
      });
      const home = await callJson("/api/v1/topics?path=home");
      assert.deepEqual(home.body.children, [
        { level: "+", path: "home/+", subscriptions: 1, retained: false, descendants: 0 },
        { level: "kitchen", path: "home/kitchen", subscriptions: 0, retained: false, descendants: 2 },
      ]);
    });
  });
});

Deno.test("retained: browse by prefix with previews, view one, delete one (persisted), 404s", async () => {
  await withAdmin(async ({ callJson, call, broker }) => {
    broker.publish({ topic: "s/a", payload: text("héllo"), qos: 1, retain: true });
    broker.publish({ topic: "s/b", payload: Uint8Array.of(0xff, 0x00), qos: 0, retain: true });
    broker.publish({ topic: "t/c", payload: text("x".repeat(300)), qos: 0, retain: true });
    const page = await callJson("/api/v1/retained?prefix=s/");
    assert.deepEqual(page.body.data, [
      { topic: "s/a", qos: 1, bytes: 6, payload: "héllo", encoding: "utf8", expiresAt: null },
      { topic: "s/b", qos: 0, bytes: 2, payload: "/wA=", encoding: "base64", expiresAt: null },
    ]);
    assert.equal((page.body.meta as { totalBytes: number }).totalBytes, 8);
    const long = await callJson("/api/v1/retained?prefix=t/");
    assert.equal(((long.body.data as { payload: string }[])[0]!).payload.length, 256);
    const whole = await callJson(`/api/v1/retained/${encodeURIComponent("t/c")}`);
    assert.equal((whole.body.payload as string).length, 300);
    const deleted = await call(`/api/v1/retained/${encodeURIComponent("s/a")}`, { method: "DELETE" });
    assert.equal(deleted.status, 204);
    await deleted.body?.cancel();
    assert.equal(broker.inspect.retained("s/a"), undefined);
    const gone = await callJson(`/api/v1/retained/${encodeURIComponent("s/a")}`);
    assert.equal(gone.status, 404);
    assert.equal((gone.body.error as { code: string }).code, "RETAINED_NOT_FOUND");
    const paged = await callJson("/api/v1/retained?limit=1");
    assert.equal((paged.body.meta as { next: string }).next, "s/b");
  });
});

Deno.test("POST /api/v1/publish routes a message; 202 with 0x10 when nobody matched; 400 and 403", async () => {
  await withBroker({}, async (context) => {
    const sub = await context.connect({ version: 5, clientId: "sub" });
    await subscribe(sub, 1, [["p/#", 1]]);
    await adminOn(context.broker, async ({ callJson, broker }) => {
      const sent = await callJson("/api/v1/publish", {
        json: {
          topic: "p/1",
          payload: "aGk=",
          encoding: "base64",
          qos: 1,
          properties: { contentType: "text/plain", userProperties: [["k", "v"]], messageExpiryInterval: 60 },
        },
      });
      assert.deepEqual([sent.status, sent.body], [200, { matched: 1 }]);
      const message = await sub.expectPacket(3, "the published message");
      assert.equal(new TextDecoder().decode(message.payload), "hi");
      assert.equal(message.properties?.contentType, "text/plain");
      assert.deepEqual(message.properties?.userProperties, [["k", "v"]]);
      const nobody = await callJson("/api/v1/publish", { json: { topic: "q", payload: "x", retain: true } });
      assert.deepEqual([nobody.status, nobody.body], [202, { matched: 0, reasonCode: 16 }]);
      assert.ok(broker.inspect.retained("q") !== undefined);
      for (
        const [body, status, code] of [
          [{ topic: "a/+" }, 400, "TOPIC_INVALID"],
          [{ topic: "" }, 400, "TOPIC_INVALID"],
          [{ topic: "$SYS/broker/x" }, 403, "TOPIC_RESERVED"],
          [{ topic: "a", qos: 3 }, 400, "BAD_FIELD"],
          [{ topic: "a", encoding: "hex" }, 400, "BAD_FIELD"],
          [{ topic: "a", properties: { colour: 1 } }, 400, "BAD_FIELD"],
          [{ payload: "no topic" }, 400, "BAD_FIELD"],
        ] as const
      ) {
        const response = await callJson("/api/v1/publish", { json: body });
        assert.equal(response.status, status, JSON.stringify(body));
        assert.equal((response.body.error as { code: string }).code, code, JSON.stringify(body));
      }
      const notJson = await callJson("/api/v1/publish", {
        method: "POST",
        headers: { "content-type": "application/json" },
      });
      assert.equal(notJson.status, 400);
    });
  });
});

Deno.test("POST /api/v1/reload calls the reload function and returns its outcome; 501 without one", async () => {
  let reloads = 0;
  await withAdmin(async ({ callJson }) => {
    const { status, body } = await callJson("/api/v1/reload", { json: {} });
    assert.deepEqual([status, body], [200, { passwordFile: "reloaded" }]);
    assert.equal(reloads, 1);
    assert.equal((await callJson("/api/v1/reload", { json: {}, as: "grafana" })).status, 403);
  }, {
    server: {
      reload: () => {
        reloads++;
        return Promise.resolve({ passwordFile: "reloaded" });
      },
    },
  });
  await withAdmin(async ({ callJson }) => {
    assert.equal((await callJson("/api/v1/reload", { json: {} })).status, 501);
  });
});

Deno.test("GET /healthz is open and ok; unknown paths are 404, wrong methods 405, as JSON errors", async () => {
  await withAdmin(async ({ call, callJson }) => {
    const health = await call("/healthz", { as: "none" });
    assert.equal(health.status, 200);
    assert.equal(await health.text(), "ok\n");
    const missing = await callJson("/api/v1/nothing");
    assert.equal(missing.status, 404);
    assert.equal((missing.body.error as { code: string }).code, "NOT_FOUND");
    const wrong = await callJson("/api/v1/broker", { method: "DELETE" });
    assert.equal(wrong.status, 405);
  });
});

testIf("the dashboard's files are served from memory with an ETag and types; without them / says so", [
  filesUnavailable(),
], async () => {
  await withAdmin(async ({ call }) => {
    const page = await call("/", { as: "none" });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /dashboard is not installed/);
  });
  const ui = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${ui}/index.html`, "<!doctype html><title>dash</title>");
    await Deno.writeTextFile(`${ui}/app.js`, "export {};\n");
    await Deno.writeTextFile(`${ui}/style.css`, "body{}\n");
    await withAdmin(async ({ call }) => {
      const index = await call("/", { as: "none" });
      assert.equal(index.headers.get("content-type"), "text/html; charset=utf-8");
      assert.match(await index.text(), /dash/);
      const js = await call("/assets/app.js", { as: "none" });
      assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
      const etag = js.headers.get("etag")!;
      await js.body?.cancel();
      const again = await call("/assets/app.js", { as: "none", headers: { "if-none-match": etag } });
      assert.equal(again.status, 304);
      await again.body?.cancel();
      const css = await call("/assets/style.css", { as: "none" });
      assert.equal(css.headers.get("content-type"), "text/css; charset=utf-8");
      await css.body?.cancel();
      for (const path of ["/assets/nope.js", "/assets/..%2Fserver.ts", "/assets/a/b.js"]) {
        const response = await call(path, { as: "none" });
        assert.equal(response.status, 404, path);
        await response.body?.cancel();
      }
      const badEscape = await call("/assets/%E0.js", { as: "none" });
      assert.equal(badEscape.status, 400);
      await badEscape.body?.cancel();
    }, { server: { uiDir: new URL(`file://${ui}/`) } });
  } finally {
    await Deno.remove(ui, { recursive: true });
  }
});

Deno.test("POST /api/v1/acl/check answers from the authorizer in force, with the deciding rule when it says", async () => {
  await withAdmin(async ({ callJson }) => {
    const { status, body } = await callJson("/api/v1/acl/check", {
      as: "grafana",
      json: { username: "u", clientId: "c", action: "publish", topic: "a/b" },
    });
    assert.equal(status, 200);
    assert.deepEqual(body, {
      allowed: true,
      rule: null,
      reason: "no ACL file: every client may do everything",
    });
    const bad = await callJson("/api/v1/acl/check", { json: { clientId: "c", action: "fly", topic: "a" } });
    assert.equal(bad.status, 400);
    const noTopic = await callJson("/api/v1/acl/check", { json: { clientId: "c", action: "publish" } });
    assert.equal(noTopic.status, 400);
  });
  const queries: unknown[] = [];
  const authorizer = {
    canPublish: () => false,
    canSubscribe: () => false,
    canReceive: () => false,
    explain(query: unknown) {
      queries.push(query);
      return {
        allowed: false,
        rule: { file: "acl", line: 3, text: "topic deny a/#" },
        reason: "denied by line 3",
      };
    },
  };
  await withAdmin(async ({ callJson }) => {
    const { body } = await callJson("/api/v1/acl/check", {
      json: { username: "alice", clientId: "c1", action: "subscribe", topic: "a/#" },
    });
    assert.deepEqual(body, {
      allowed: false,
      rule: { file: "acl", line: 3, text: "topic deny a/#" },
      reason: "denied by line 3",
    });
    assert.deepEqual(queries, [{ clientId: "c1", action: "subscribe", topic: "a/#", username: "alice" }]);
  }, { broker: { authorizer } });
});

Deno.test({
  name: "POST /api/v1/acl/check names the deciding line of the broker's ACL file",
  fn: async () => {
    const acl = AclFile.parse("user alice\ntopic read home/#\ntopic deny home/secret\n");
    await withAdmin(async ({ callJson }) => {
      const { body } = await callJson("/api/v1/acl/check", {
        json: { username: "alice", clientId: "c", action: "receive", topic: "home/secret" },
      });
      assert.equal(body.allowed, false);
      assert.equal((body.rule as { line: number }).line, 3);
    }, { broker: { authorizer: new AclAuthorizer(acl) } });
  },
});

Deno.test("a JSON body over 1 MiB is 413, with or without Content-Length", async () => {
  await withAdmin(async ({ call }) => {
    const big = JSON.stringify({ topic: "t", payload: "x".repeat(1024 * 1024) });
    const sized = await call("/api/v1/publish", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: big,
    });
    assert.equal(sized.status, 413);
    await sized.body?.cancel();
    const chunked = await call("/api/v1/publish", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new Blob([big]).stream(),
    });
    assert.equal(chunked.status, 413);
    await chunked.body?.cancel();
  });
});
