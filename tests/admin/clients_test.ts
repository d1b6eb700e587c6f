/**
 * `/api/v1/clients`: list (filters, sort, cursor paging), detail, queue peek, kick (v5 DISCONNECT 0x98, will
 * published), discard, and adding or removing a subscription.
 *
 * @module
 */

import assert from "node:assert/strict";
import { REASON_CODE } from "../../lib/packet/reason_code.ts";
import { P, publishPacket, subscribe, waitFor, withBroker } from "../broker/_wire.ts";
import { adminOn } from "./_admin.ts";

Deno.test("GET /api/v1/clients lists, filters, sorts and pages; bad parameters are 400", async () => {
  await withBroker({}, async (context) => {
    for (const id of ["b-2", "a-1", "b-1"]) {
      await context.connect({ version: 5, clientId: id, username: "u" });
    }
    await context.connect({ version: 4, clientId: "c-1" });
    await adminOn(context.broker, async ({ callJson }) => {
      const all = await callJson("/api/v1/clients");
      assert.equal(all.status, 200);
      const data = all.body.data as { clientId: string; connected: boolean; protocol: string }[];
      assert.deepEqual(data.map((c) => c.clientId), ["a-1", "b-1", "b-2", "c-1"]);
      assert.equal(data[0]!.connected, true);
      assert.equal(data[0]!.protocol, "5.0");
      assert.equal(data[3]!.protocol, "3.1.1");
      assert.deepEqual(all.body.meta, { count: 4, total: 4, limit: 100, next: null });

      const prefix = await callJson("/api/v1/clients?prefix=b-");
      assert.deepEqual((prefix.body.data as { clientId: string }[]).map((c) => c.clientId), ["b-1", "b-2"]);
      const user = await callJson("/api/v1/clients?username=u");
      assert.equal((user.body.meta as { total: number }).total, 3);

      const first = await callJson("/api/v1/clients?limit=2");
      assert.deepEqual((first.body.data as { clientId: string }[]).map((c) => c.clientId), ["a-1", "b-1"]);
      const next = (first.body.meta as { next: string }).next;
      assert.equal(next, "b-1");
      const second = await callJson(`/api/v1/clients?limit=2&after=${next}`);
      assert.deepEqual((second.body.data as { clientId: string }[]).map((c) => c.clientId), ["b-2", "c-1"]);
      assert.equal((second.body.meta as { next: string | null }).next, null);

      const sorted = await callJson("/api/v1/clients?sort=queued&limit=1");
      assert.equal(sorted.status, 200);
      assert.match((sorted.body.meta as { next: string }).next, /^0:/);

      for (const bad of ["limit=1001", "limit=0", "sort=colour", "state=sleeping"]) {
        const response = await callJson(`/api/v1/clients?${bad}`);
        assert.equal(response.status, 400, bad);
        assert.equal((response.body.error as { code: string }).code, "BAD_PARAMETER");
      }
      const offline = await callJson("/api/v1/clients?state=offline");
      assert.equal((offline.body.meta as { total: number }).total, 0);
    });
  });
});

Deno.test("GET /api/v1/clients/:id shows subscriptions and will; 404 for an unknown client", async () => {
  await withBroker({}, async (context) => {
    const client = await context.connect({
      version: 5,
      clientId: "dev/1",
      keepAlive: 30,
      will: { topic: "wills/dev1", payload: "gone", qos: 1, properties: [P.willDelay(5)] },
    });
    await subscribe(client, 1, [["$share/g/a/+", 1], ["b/#", 2]]);
    await adminOn(context.broker, async ({ callJson }) => {
      const { status, body } = await callJson(`/api/v1/clients/${encodeURIComponent("dev/1")}`);
      assert.equal(status, 200);
      assert.equal(body.clientId, "dev/1");
      assert.equal(body.keepAlive, 30);
      assert.deepEqual(body.will, { topic: "wills/dev1", qos: 1, retain: false, delaySeconds: 5 });
      const subscriptions = body.subscriptions as {
        filter: string;
        qos: number;
        shareGroup: string | null;
      }[];
      assert.deepEqual(subscriptions.map((s) => [s.filter, s.qos, s.shareGroup]), [
        ["$share/g/a/+", 1, "g"],
        ["b/#", 2, null],
      ]);
      assert.ok(Array.isArray(body.events));
      const missing = await callJson("/api/v1/clients/nobody");
      assert.equal(missing.status, 404);
      assert.equal((missing.body.error as { code: string }).code, "CLIENT_NOT_FOUND");
    });
  });
});

Deno.test("DELETE /api/v1/clients/:id kicks: a v5 client gets DISCONNECT 0x98 and its will is published", async () => {
  await withBroker({}, async (context) => {
    const watcher = await context.connect({ version: 5, clientId: "watcher" });
    await subscribe(watcher, 1, [["wills/#", 0]]);
    const victim = await context.connect({
      version: 5,
      clientId: "victim",
      will: { topic: "wills/victim", payload: "bye" },
    });
    await adminOn(context.broker, async ({ call }) => {
      const response = await call("/api/v1/clients/victim", { method: "DELETE" });
      assert.equal(response.status, 204);
      await response.body?.cancel();
      await victim.expectDisconnect(
        REASON_CODE.AdministrativeAction,
        "DISCONNECT 0x98 Administrative action",
      );
      const will = await watcher.expectPacket(3, "the will");
      assert.equal(will.topic, "wills/victim");
      const missing = await call("/api/v1/clients/victim", { method: "DELETE" });
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
    });
  });
});

Deno.test("DELETE /api/v1/clients/:id closes a 3.1.1 client; ?session=discard also ends its session", async () => {
  await withBroker({}, async (context) => {
    const client = await context.connect({ version: 4, clientId: "keeper", clean: false });
    await subscribe(client, 1, [["k/#", 1]]);
    await adminOn(context.broker, async ({ call, broker }) => {
      const response = await call("/api/v1/clients/keeper", { method: "DELETE" });
      assert.equal(response.status, 204);
      await response.body?.cancel();
      await client.expectClosed("the kicked 3.1.1 client closed");
      await waitFor(() => broker.inspect.session("keeper")?.link === undefined, "the session offline");
      assert.ok(broker.inspect.session("keeper") !== undefined, "a persistent session stays after a kick");
      const discard = await call("/api/v1/clients/keeper?session=discard", { method: "DELETE" });
      assert.equal(discard.status, 204);
      await discard.body?.cancel();
      assert.equal(broker.inspect.session("keeper"), undefined);
      assert.equal(broker.inspect.subscriptions({ clientId: "keeper", limit: 10 }).meta.total, 0);
    });
  });
});

Deno.test("GET /api/v1/clients/:id/queue shows queued messages without payloads", async () => {
  await withBroker({}, async (context) => {
    const client = await context.connect({ version: 5, clientId: "slow", properties: [P.sessionExpiry(60)] });
    await subscribe(client, 1, [["q/#", 1]]);
    await client.close();
    await waitFor(() => context.broker.inspect.session("slow")?.link === undefined, "offline");
    const publisher = await context.connect({ version: 5, clientId: "pub" });
    for (let i = 0; i < 3; i++) {
      await publisher.send(publishPacket(5, { topic: `q/${i}`, payload: "xyz", qos: 1, id: i + 1 }));
      await publisher.expectPacket(4, "PUBACK");
    }
    await adminOn(context.broker, async ({ callJson }) => {
      const { status, body } = await callJson("/api/v1/clients/slow/queue?limit=2");
      assert.equal(status, 200);
      assert.deepEqual(body.queued, [{ topic: "q/0", qos: 1, bytes: 3 }, { topic: "q/1", qos: 1, bytes: 3 }]);
      assert.deepEqual(body.inflight, []);
      const list = await callJson("/api/v1/clients?sort=queued&limit=1");
      const [top] = list.body.data as { clientId: string; queued: number; queuedBytes: number }[];
      assert.deepEqual([top!.clientId, top!.queued, top!.queuedBytes], ["slow", 3, 9]);
      assert.equal((await callJson("/api/v1/clients/none/queue")).status, 404);
    });
  });
});

Deno.test("POST/DELETE /api/v1/clients/:id/subscriptions add and remove a subscription", async () => {
  await withBroker({}, async (context) => {
    const client = await context.connect({ version: 5, clientId: "sub" });
    await adminOn(context.broker, async ({ callJson, call, broker }) => {
      const added = await callJson("/api/v1/clients/sub/subscriptions", { json: { filter: "x/+", qos: 1 } });
      assert.equal(added.status, 201);
      broker.publish({ topic: "x/1", payload: new TextEncoder().encode("hi"), qos: 1, retain: false });
      const message = await client.expectPacket(3, "PUBLISH through the added subscription");
      assert.equal(message.topic, "x/1");
      const bad = await callJson("/api/v1/clients/sub/subscriptions", { json: { filter: "x/#/y" } });
      assert.equal(bad.status, 400);
      assert.equal((bad.body.error as { code: string }).code, "FILTER_INVALID");
      const badQos = await callJson("/api/v1/clients/sub/subscriptions", { json: { filter: "y", qos: 3 } });
      assert.equal(badQos.status, 400);
      const unknown = await callJson("/api/v1/clients/nobody/subscriptions", { json: { filter: "y" } });
      assert.equal(unknown.status, 404);
      const removed = await call(`/api/v1/clients/sub/subscriptions/${encodeURIComponent("x/+")}`, {
        method: "DELETE",
      });
      assert.equal(removed.status, 204);
      await removed.body?.cancel();
      assert.equal(broker.inspect.subscriptions({ clientId: "sub", limit: 10 }).meta.total, 0);
      const again = await callJson(`/api/v1/clients/sub/subscriptions/${encodeURIComponent("x/+")}`, {
        method: "DELETE",
      });
      assert.equal(again.status, 404);
      assert.equal((again.body.error as { code: string }).code, "SUBSCRIPTION_NOT_FOUND");
    });
  });
});

Deno.test("DELETE /api/v1/clients/:id?session=discard on a connected client kicks it and ends its session", async () => {
  await withBroker({}, async (context) => {
    const watcher = await context.connect({ version: 5, clientId: "watcher" });
    await subscribe(watcher, 1, [["wills/#", 0]]);
    const client = await context.connect({
      version: 5,
      clientId: "durable",
      properties: [P.sessionExpiry(3600)],
      // A delayed will goes out when the session ends (5.0 section 3.1.3.2.2), here at once.
      will: { topic: "wills/durable", payload: "gone", properties: [P.willDelay(600)] },
    });
    await subscribe(client, 1, [["d/#", 1]]);
    await adminOn(context.broker, async ({ call, broker }) => {
      const response = await call("/api/v1/clients/durable?session=discard", { method: "DELETE" });
      assert.equal(response.status, 204);
      await response.body?.cancel();
      await client.expectDisconnect(REASON_CODE.AdministrativeAction);
      assert.equal(broker.inspect.session("durable"), undefined);
      assert.equal((await watcher.expectPacket(3, "the will, at once")).topic, "wills/durable");
    });
  });
});
