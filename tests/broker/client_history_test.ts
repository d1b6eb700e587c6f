/** The client history (`lib/broker/client_history.ts`): bounded per client, per id count and broker-wide. */

import assert from "node:assert/strict";
import { ClientHistory } from "../../lib/broker/client_history.ts";
import { BrokerEvents, type ClientEvent } from "../../lib/broker/events.ts";
import { DISCONNECT, withBroker } from "./_wire.ts";

function event(clientId: string, at: number, extra: Partial<ClientEvent> = {}): ClientEvent {
  return { event: "disconnected", clientId, remote: "10.0.0.5:1", reason: "normal", at, ...extra };
}

Deno.test("ClientHistory keeps the last 20 events of a client, oldest first", () => {
  const events = new BrokerEvents();
  const history = new ClientHistory(events);
  for (let i = 0; i < 25; i++) events.emit(event("a", i));
  const kept = history.of("a");
  assert.equal(kept.length, 20);
  assert.equal(kept[0]!.at, 5);
  assert.equal(kept[19]!.at, 24);
  history.close();
});

Deno.test("ClientHistory drops the ids not heard of for longest, a generation (half the bound) at a time", () => {
  const events = new BrokerEvents();
  const history = new ClientHistory(events, { clients: 4 });
  events.emit(event("a", 1));
  events.emit(event("b", 2));
  events.emit(event("c", 3)); // the first generation (a, b) is full: it becomes the old one
  events.emit(event("a", 4)); // a heard of again: back in the young generation
  events.emit(event("d", 5)); // (c, a) full: the old generation, b alone now, goes
  assert.equal(history.clientCount, 3);
  assert.deepEqual(history.of("b"), []);
  assert.deepEqual(history.of("a").map((e) => e.at), [1, 4]);
  assert.equal(history.of("c").length, 1);
  assert.equal(history.of("d").length, 1);
  for (let i = 0; i < 100; i++) events.emit(event(`x${i}`, 10 + i));
  assert.ok(history.clientCount <= 4, `${history.clientCount} ids kept`);
  history.close();
});

Deno.test("ClientHistory.recent() is a bounded broker-wide ring, searchable", () => {
  const events = new BrokerEvents();
  const history = new ClientHistory(events, { recent: 4 });
  events.emit(event("sensor-1", 1, { reason: "keepalive" }));
  events.emit(event("", 2, { event: "refused", reason: "limit" }));
  events.emit(event("sensor-2", 3, { event: "connected", reason: "" }));
  events.emit(event("sensor-1", 4, { reason: "socket_error" }));
  events.emit(event("other", 5, { event: "refused", reason: "auth" }));
  assert.deepEqual(history.recent().map((e) => e.at), [2, 3, 4, 5]);
  assert.deepEqual(history.recent({ clientId: "sensor" }).map((e) => e.at), [3, 4]);
  assert.deepEqual(history.recent({ event: "refused" }).map((e) => e.reason), ["limit", "auth"]);
  assert.deepEqual(history.recent({ reason: "socket_error" }).map((e) => e.at), [4]);
  assert.deepEqual(history.recent({ since: 3 }).map((e) => e.at), [4, 5]);
  assert.deepEqual(history.recent({ limit: 1 }).map((e) => e.at), [5]);
  assert.equal(history.clientCount, 3, "a refusal without a client id is in the ring only");
  history.close();
  assert.equal(events.listening, false);
});

Deno.test("ClientHistory.lastEnd() is the last disconnect or refusal", () => {
  const events = new BrokerEvents();
  const history = new ClientHistory(events);
  events.emit(event("a", 1, { reason: "keepalive" }));
  events.emit(event("a", 2, { event: "connected", reason: "" }));
  assert.equal(history.lastEnd("a")?.reason, "keepalive");
  assert.equal(history.lastEnd("nobody"), undefined);
  history.close();
});

Deno.test("broker.clientHistory records a client's connect and the reason it went", async () => {
  await withBroker({}, async ({ broker, connect }) => {
    assert.equal(broker.events.listening, false, "nothing listens until someone asks");
    const history = broker.clientHistory;
    assert.equal(broker.clientHistory, history, "one history");
    const client = await connect({ version: 5, clientId: "hist" });
    await client.send(DISCONNECT);
    await client.expectClosed();
    const again = await connect({ version: 5, clientId: "hist" });
    await again.close();
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(history.of("hist").map((e) => `${e.event}:${e.reason}`), [
      "connected:",
      "disconnected:normal",
      "connected:",
      "disconnected:socket_error",
    ]);
  });
});
