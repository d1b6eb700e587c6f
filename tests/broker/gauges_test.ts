/** The broker's gauges (`lib/broker/gauges.ts`): what is true now, computed on call. */

import assert from "node:assert/strict";
import { brokerGauges } from "../../lib/broker/gauges.ts";
import { P, publishPacket, subscribe, waitFor, withBroker } from "./_wire.ts";

Deno.test("brokerGauges() counts clients by protocol, sessions online and offline, subscriptions and queues", async () => {
  await withBroker({ maxQueued: 10 }, async ({ connect, broker, open }) => {
    const empty = brokerGauges(broker);
    assert.equal(empty.clientsConnected, 0);
    assert.equal(empty.connections, 0);
    const away = { version: 5 as const, clientId: "away", clean: false, properties: [P.sessionExpiry(3600)] };
    const first = await connect(away);
    await subscribe(first, 1, [["q", 1], ["$share/g/s", 1]]);
    await first.disconnect();
    const v4 = await connect({ version: 4, clientId: "v4" });
    await subscribe(v4, 1, [["x", 0]]);
    await connect({ version: 5, clientId: "v5" });
    await open(4); // a socket with no CONNECT yet
    await waitFor(() => broker.connectionCount === 3, "three connections");
    for (let id = 1; id <= 3; id++) {
      await v4.send(publishPacket(4, { topic: "q", payload: "12345", qos: 1, id }));
    }
    await waitFor(() => broker.session("away")!.queued === 3, "three queued for away");
    const g = brokerGauges(broker);
    assert.deepEqual(g.clientsConnectedByProtocol, { "3.1": 0, "3.1.1": 1, "5.0": 1 });
    assert.equal(g.clientsConnected, 2);
    assert.equal(g.connections, 3);
    assert.equal(g.sessionsOnline, 2);
    assert.equal(g.sessionsOffline, 1);
    assert.equal(g.subscriptions, 3);
    assert.equal(g.sharedSubscriptions, 1);
    assert.equal(g.queued, 3);
    assert.equal(g.queuedBytes, 15);
    assert.equal(g.inflight, 0);
    assert.equal(g.congested, 0);
    assert.equal(g.retained, 0);
  });
});
