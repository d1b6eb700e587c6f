/**
 * The live event stream (SSE), `/metrics` access, `/api/v1/logs`, and closing with streams open.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Broker } from "../../lib/broker/broker.ts";
import { MAX_STREAMS, SseHub } from "../../lib/admin/sse.ts";
import { withBroker } from "../broker/_wire.ts";
import { adminOn, withAdmin } from "./_admin.ts";

/** Reads SSE events from `response` until `done` says stop or `ms` pass; cancels the body after. */
async function readEvents(
  response: Response,
  done: (events: { event: string; data: unknown; id?: string }[]) => boolean,
  ms = 3000,
): Promise<{ text: string; events: { event: string; data: unknown; id?: string }[] }> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const events: { event: string; data: unknown; id?: string }[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => timer = setTimeout(() => resolve("timeout"), ms));
  try {
    while (!done(events)) {
      const chunk = await Promise.race([reader.read(), timeout]);
      if (chunk === "timeout" || chunk.done) break;
      text += chunk.value;
      events.length = 0;
      for (const block of text.split("\n\n")) {
        const fields = Object.fromEntries(
          block.split("\n").filter((l) => !l.startsWith(":") && l.includes(": ")).map((l) => {
            const i = l.indexOf(": ");
            return [l.slice(0, i), l.slice(i + 2)];
          }),
        );
        if (fields.event !== undefined && fields.data !== undefined) {
          events.push({
            event: fields.event,
            data: JSON.parse(fields.data),
            ...(fields.id ? { id: fields.id } : {}),
          });
        }
      }
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel();
  }
  return { text, events };
}

Deno.test("GET /api/v1/events: retry 3000, a stats event within 2 s, client events as clients come and go", async () => {
  await withBroker({}, async (context) => {
    await adminOn(context.broker, async ({ call }) => {
      const response = await call("/api/v1/events");
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
      const started = Date.now();
      const client = context.connect({ version: 5, clientId: "live" });
      const { text, events } = await readEvents(
        response,
        (events) => events.some((e) => e.event === "client") && events.some((e) => e.event === "stats"),
      );
      await client;
      assert.ok(text.startsWith("retry: 3000\n\n"), text.slice(0, 40));
      const stats = events.find((e) => e.event === "stats")!;
      assert.ok(Date.now() - started < 2000, "stats within 2 s");
      assert.equal(
        typeof (stats.data as { gauges: { clientsConnected: number } }).gauges.clientsConnected,
        "number",
      );
      assert.match(stats.id ?? "", /^\d+$/);
      const connected = events.find((e) => e.event === "client")!.data as { event: string; clientId: string };
      assert.deepEqual([connected.event, connected.clientId], ["connected", "live"]);
    });
  });
});

Deno.test("GET /api/v1/events: more than 50 client events in a second become one overflow event", async () => {
  await withAdmin(async ({ call, broker }) => {
    const response = await call("/api/v1/events?streams=clients");
    // Let the stream start, then emit a storm of events straight into the hub.
    const reading = readEvents(
      response,
      (events) => events.some((e) => (e.data as { event: string }).event === "overflow"),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let i = 0; i < 80; i++) {
      broker.events.emit({ event: "connected", clientId: `c${i}`, remote: "x", reason: "", at: Date.now() });
    }
    const { events } = await reading;
    const clients = events.filter((e) => (e.data as { event: string }).event === "connected");
    const overflow = events.find((e) => (e.data as { event: string }).event === "overflow");
    assert.equal(clients.length, 50);
    assert.deepEqual(overflow?.data, { event: "overflow", skipped: 30 });
    assert.ok(!events.some((e) => e.event === "stats"), "streams=clients only");
  });
});

Deno.test("GET /api/v1/events sends warnings as log events; GET /api/v1/logs lists records", async () => {
  await withAdmin(async ({ call, callJson, broker }) => {
    const response = await call("/api/v1/events?streams=logs");
    const reading = readEvents(response, (events) => events.some((e) => e.event === "log"));
    await new Promise((resolve) => setTimeout(resolve, 100));
    broker.logger.info("just info", { event: "test.info" });
    broker.logger.warn("watch out", { event: "test.warn", clientId: "c1" });
    const { events } = await reading;
    const logs = events.filter((e) => e.event === "log").map((e) => e.data as { msg: string; event: string });
    assert.deepEqual(logs.map((l) => [l.msg, l.event]), [["watch out", "test.warn"]]);
    const listed = await callJson("/api/v1/logs?level=warn");
    const data = listed.body.data as { msg: string; level: string; clientId: string; time: string }[];
    assert.deepEqual(data.map((r) => [r.msg, r.level, r.clientId]), [["watch out", "warn", "c1"]]);
    assert.match(data[0]!.time, /^\d{4}-\d\d-\d\dT/);
    assert.equal((await callJson("/api/v1/logs?level=loud")).status, 400);
  }, { broker: { logger: { error() {}, warn() {}, info() {}, debug() {}, enabled: () => true } } });
});

Deno.test("broker.close() returns promptly with an SSE stream open (and leaves nothing running)", async () => {
  const broker = new Broker({ sysInterval: 0 });
  await broker.start();
  let closedIn = -1;
  await adminOn(broker, async ({ call }) => {
    const response = await call("/api/v1/events");
    const reader = response.body!.getReader();
    await reader.read(); // the stream is open
    const started = performance.now();
    await broker.close();
    closedIn = performance.now() - started;
    // The stream ended with the server.
    for (;;) if ((await reader.read()).done) break;
  });
  assert.ok(closedIn >= 0 && closedIn < 1000, `broker.close() took ${closedIn} ms`);
});

Deno.test("/metrics is open on loopback, needs a viewer on a network address unless publicMetrics", async () => {
  await withAdmin(async ({ call }) => {
    const response = await call("/metrics", { as: "none" });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    assert.match(await response.text(), /^# HELP denomqtt_/m);
  });
  await withAdmin(async ({ call }) => {
    const anonymous = await call("/metrics", { as: "none" });
    assert.equal(anonymous.status, 401);
    await anonymous.body?.cancel();
    const viewer = await call("/metrics", { as: "none", headers: { authorization: "Bearer viewer-token" } });
    assert.equal(viewer.status, 200);
    assert.match(await viewer.text(), /denomqtt_admin_requests_total\{code="4xx"\} 1/);
  }, { server: { listeners: [{ name: "network", type: "http", hostname: "0.0.0.0", port: 0 }] } });
  await withAdmin(async ({ call }) => {
    const response = await call("/metrics", { as: "none" });
    assert.equal(response.status, 200);
    await response.body?.cancel();
  }, {
    server: {
      listeners: [{ name: "network", type: "http", hostname: "0.0.0.0", port: 0, publicMetrics: true }],
    },
  });
});

Deno.test("GET /healthz is 503 when the latest storage commit failed", async () => {
  let fail = false;
  const persistence = {
    name: "flaky",
    load: () => Promise.resolve({ sessions: [], retained: [], wills: [] }),
    commit: () => fail ? Promise.reject(new Error("disk full")) : Promise.resolve(),
    close: () => Promise.resolve(),
  };
  await withAdmin(async ({ call, broker }) => {
    fail = true;
    broker.publish({ topic: "r", payload: Uint8Array.of(1), qos: 0, retain: true });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const response = await call("/healthz", { as: "none" });
    assert.equal(response.status, 503);
    assert.match(await response.text(), /storage/);
    fail = false;
    broker.publish({ topic: "r", payload: Uint8Array.of(2), qos: 0, retain: true });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const ok = await call("/healthz", { as: "none" });
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
  }, { broker: { persistence } });
});

Deno.test("SseHub: past MAX_STREAMS open streams, a new one is 503; closeAll ends them all", async () => {
  const hub = new SseHub();
  const responses: Response[] = [];
  for (let i = 0; i < MAX_STREAMS; i++) responses.push(hub.open(() => {}));
  assert.throws(() => hub.open(() => {}), (error: { status: number }) => error.status === 503);
  hub.closeAll();
  assert.equal(hub.size, 0);
  for (const response of responses) await response.body?.cancel();
});
