/** The broker-wide counters (`lib/broker/counters.ts`), read through `Broker.counters`: totals that only grow. */

import assert from "node:assert/strict";
import { P, puback, publishPacket, subscribe, withBroker } from "./_wire.ts";

Deno.test("Broker.counters: connections, messages and drops are totals that survive the session that made them", async () => {
  await withBroker({ maxQueued: 1 }, async ({ connect, broker }) => {
    const away = { version: 5 as const, clientId: "away", clean: false, properties: [P.sessionExpiry(3600)] };
    const first = await connect(away);
    await subscribe(first, 1, [["d", 1]]);
    await first.disconnect();
    const publisher = await connect({ version: 4, clientId: "publisher" });
    for (let id = 1; id <= 4; id++) {
      await publisher.send(publishPacket(4, { topic: "d", payload: `${id}`, qos: 1, id }));
      await publisher.expect(puback(4, id));
    }
    assert.equal(broker.counters.messagesDropped, 3, "1 queued, 3 dropped");
    assert.equal(broker.counters.messagesReceived, 4);
    const back = await connect({ ...away, clean: true }); // ends the session that dropped them
    await back.disconnect();
    await publisher.disconnect();
    assert.equal(broker.session("away")?.dropped, 0, "a new session, its own count at 0");
    assert.equal(broker.counters.messagesDropped, 3, "kept after the session ended");
    assert.equal(broker.counters.connections, 3);
    assert.equal(broker.stats, broker.counters, "stats is the same object");
  });
});
