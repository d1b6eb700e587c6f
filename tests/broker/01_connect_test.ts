/**
 * CONNECT / CONNACK (5.0 sections 3.1, 3.2): what comes first, protocol levels, client identifiers, take-over and
 * the connect timeout.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { leveledLogger, type Logger, type LogLevel } from "../../lib/broker/logger.ts";
import { memoryPair } from "../../lib/transport/memory.ts";
import {
  CONNACK_OK_V4,
  connectPacket,
  connectV5,
  DISCONNECT,
  hex,
  P,
  PINGREQ,
  publishPacket,
  subscribe,
  subscribePacket,
  v,
  VERSIONS,
  waitFor,
  withBroker,
} from "./_wire.ts";

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: CONNECT is answered by a successful CONNACK [MQTT-3.2.0-1 (3.1.1)] [MQTT-3.2.0-1 (5.0)]`, async () => {
    await withBroker({}, async ({ open }) => {
      const client = await open(version);
      await client.send(connectPacket({ version, clientId: "c1", keepAlive: 60 }));
      if (version === 4) {
        await client.expect(CONNACK_OK_V4, "CONNACK");
      } else {
        const connack = await client.expectPacket(2, "CONNACK");
        assert.equal(connack.sessionPresent, false);
        assert.equal(connack.reasonCode, 0);
        // The broker's limits, announced once so the client can respect them (5.0 section 3.2.2.3); capabilities at
        // their defaults (Retain, Wildcard, Subscription Identifier, Shared Subscription Available = 1) are not
        // announced, since absent says the same (issue #14 item 9).
        assert.deepEqual(connack.properties, {
          receiveMaximum: 100,
          maximumPacketSize: 1_048_576,
          topicAliasMaximum: 10,
        });
      }
      await client.barrier("PINGRESP after CONNACK");
      await client.disconnect();
    });
  });
}

Deno.test("v5: CONNACK announces configured limits (Receive Maximum, Maximum Packet Size, Maximum QoS)", async () => {
  await withBroker(
    { receiveMaximum: 5, maxPacketSize: 2048, maxQoS: 1, retainAvailable: false, topicAliasMaximum: 0 },
    async (context) => {
      const { client, connack } = await connectV5(context, { clientId: "limits" });
      assert.equal(connack.reasonCode, 0);
      assert.equal(connack.properties?.receiveMaximum, 5);
      assert.equal(connack.properties?.maximumPacketSize, 2048);
      assert.equal(connack.properties?.maximumQoS, 1);
      assert.equal(connack.properties?.retainAvailable, 0);
      await client.disconnect();
    },
  );
});

Deno.test("v3.1: a resumed session still gets 20 02 00 00: 3.1 has no Session Present bit (issue #14 item 4)", async () => {
  await withBroker({}, async ({ open }) => {
    const first = await open(3);
    await first.send(connectPacket({ version: 3, clientId: "old-keeper", clean: false }));
    await first.expect(CONNACK_OK_V4, "CONNACK of a new session");
    await first.disconnect();
    const second = await open(3);
    await second.send(connectPacket({ version: 3, clientId: "old-keeper", clean: false }));
    await second.expect(hex("20 02 00 00"), "CONNACK without Session Present: that byte is reserved in 3.1");
    await second.barrier();
    await second.disconnect();
  });
});

Deno.test("v3.1: an MQIsdp level 3 CONNECT is accepted with 20 02 00 00", async () => {
  await withBroker({}, async ({ open }) => {
    const client = await open(3);
    await client.send(connectPacket({ version: 3, clientId: "old-client" }));
    await client.expect(CONNACK_OK_V4, "CONNACK");
    await client.barrier();
    await client.disconnect();
  });
});

const NOT_CONNECT: readonly [string, Uint8Array][] = [
  ["PINGREQ", PINGREQ],
  ["PUBLISH", publishPacket(4, { topic: "a", payload: "x" })],
  ["SUBSCRIBE", subscribePacket(4, 1, [["a", 0]])],
  ["DISCONNECT", DISCONNECT],
];

for (const [name, bytes] of NOT_CONNECT) {
  Deno.test(`a first packet that is ${name}, not CONNECT, closes the connection [MQTT-3.1.0-1 (3.1.1)]`, async () => {
    await withBroker({}, async ({ open, broker }) => {
      const client = await open(4);
      await client.trySend(bytes);
      await client.expectClosed();
      // Nothing of it was acted on: no session was made.
      assert.equal(broker.sessionCount, 0);
    });
  });
}

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: a second CONNECT is a protocol error [MQTT-3.1.0-2 (3.1.1)] [MQTT-3.1.0-2 (5.0)]`, async () => {
    await withBroker({}, async ({ connect }) => {
      const client = await connect({ version, clientId: "twice" });
      await client.send(connectPacket({ version, clientId: "twice" }));
      await client.expectDisconnect(0x82, "DISCONNECT Protocol Error");
    });
  });
}

Deno.test("a socket that sends no CONNECT within connectTimeout is closed (ManualClock)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, connectTimeout: 5000 }, async ({ open, broker }) => {
    const client = await open(4, "memory");
    clock.advance(4999);
    assert.equal(broker.connectionCount, 1, "still open before the timeout");
    clock.advance(1 + 1000); // the broker may check on a periodic sweep: allow it up to 1 s
    await client.expectClosed("close at the connect timeout");
  });
});

Deno.test("a half-sent CONNECT does not hold the socket past connectTimeout (ManualClock)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, connectTimeout: 5000 }, async ({ open }) => {
    const client = await open(4, "memory");
    await client.send(connectPacket({ version: 4, clientId: "slow" }).subarray(0, 6));
    clock.advance(5000 + 1000);
    await client.expectClosed("close at the connect timeout (+1 s for a periodic check)");
  });
});

Deno.test("a TCP socket that sends no CONNECT within a real 50 ms connectTimeout is closed", async () => {
  await withBroker({ connectTimeout: 50 }, async ({ open }) => {
    const client = await open(4);
    await client.expectClosed("close at the connect timeout");
  });
});

Deno.test("the connect timeout stops once CONNECT arrived (ManualClock)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, connectTimeout: 5000 }, async ({ open }) => {
    const client = await open(4, "memory");
    await client.send(connectPacket({ version: 4, clientId: "in-time" }));
    await client.expect(CONNACK_OK_V4);
    clock.advance(60_000);
    await client.barrier("still connected after the connect timeout");
    await client.disconnect();
  });
});

const BAD_LEVELS: readonly [string, string, number][] = [
  ["MQTT level 6", "MQTT", 6],
  ["MQTT level 2", "MQTT", 2],
  ["MQTT level 3 (3.1 needs MQIsdp)", "MQTT", 3],
  ["MQIsdp level 4 (3.1.1 needs MQTT)", "MQIsdp", 4],
];

for (const [name, protocolName, level] of BAD_LEVELS) {
  Deno.test(`unsupported protocol ${name}: CONNACK 0x01, then close [MQTT-3.1.2-2 (3.1.1)]`, async () => {
    await withBroker({}, async ({ open, broker }) => {
      const client = await open(4);
      await client.send(connectPacket({ version: 4, clientId: "future", level, protocolName }));
      await client.expect(hex("20 02 00 01"), "CONNACK 0x01 unacceptable protocol version");
      await client.expectClosed();
      assert.equal(broker.sessionCount, 0);
    });
  });
}

Deno.test("a protocol name that is not MQTT is refused and closed [MQTT-3.1.2-1 (3.1.1)]", async () => {
  await withBroker({}, async ({ open, broker }) => {
    const client = await open(4);
    await client.send(connectPacket({ version: 4, clientId: "x", protocolName: "MQTX" }));
    // The server may answer 0x01 before closing (3.1.1 section 3.1.2.1); it must not go on with MQTT.
    const frame = await client.nextOrEnd();
    if (frame !== undefined) assert.deepEqual(frame, hex("20 02 00 01"));
    await client.expectClosed();
    assert.equal(broker.sessionCount, 0);
  });
});

// ---- client identifiers ----------------------------------------------------------------------------------

Deno.test("v5: an empty client id gets an Assigned Client Identifier [MQTT-3.1.3-6 (5.0)] [MQTT-3.2.2-16 (5.0)]", async () => {
  await withBroker({}, async (context) => {
    const first = await connectV5(context, {});
    const second = await connectV5(context, {});
    assert.equal(first.connack.reasonCode, 0);
    const assigned = first.connack.properties?.assignedClientIdentifier;
    assert.ok(typeof assigned === "string" && assigned.length > 0, "assigned id present");
    assert.notEqual(second.connack.properties?.assignedClientIdentifier, assigned, "ids are unique");
    assert.ok(context.broker.session(assigned) !== undefined, "the session is under the assigned id");
    await first.client.disconnect();
    await second.client.disconnect();
  });
});

Deno.test("v5: an empty client id with Clean Start 0 is assigned one too [MQTT-3.1.3-7 (5.0)]", async () => {
  await withBroker({}, async (context) => {
    const { client, connack } = await connectV5(context, { clean: false, properties: [P.sessionExpiry(60)] });
    assert.equal(connack.reasonCode, 0);
    assert.ok((connack.properties?.assignedClientIdentifier ?? "").length > 0);
    await client.disconnect();
  });
});

Deno.test("v4: an empty client id with Clean Session 1 is accepted [MQTT-3.1.3-6 (3.1.1)]", async () => {
  await withBroker({}, async ({ open, broker }) => {
    const client = await open(4);
    await client.send(connectPacket({ version: 4, clientId: "", clean: true }));
    await client.expect(CONNACK_OK_V4);
    assert.equal(broker.sessionCount, 1);
    await client.barrier();
    await client.disconnect();
  });
});

Deno.test("v4: an empty client id with Clean Session 0 gets CONNACK 0x02, then close [MQTT-3.1.3-8 (3.1.1)]", async () => {
  await withBroker({}, async ({ open, broker }) => {
    const client = await open(4);
    await client.send(connectPacket({ version: 4, clientId: "", clean: false }));
    await client.expect(hex("20 02 00 02"), "CONNACK identifier rejected");
    await client.expectClosed();
    assert.equal(broker.sessionCount, 0);
  });
});

for (const [name, clientId] of [["an empty", ""], ["a 24-character", "abcdefghijklmnopqrstuvwx"]] as const) {
  Deno.test(`v3.1: ${name} client id gets CONNACK 0x02, then close (3.1 allows 1 to 23 characters)`, async () => {
    await withBroker({}, async ({ open }) => {
      const client = await open(3);
      await client.send(connectPacket({ version: 3, clientId, clean: true }));
      await client.expect(hex("20 02 00 02"), "CONNACK identifier rejected");
      await client.expectClosed();
    });
  });
}

Deno.test("v4: a 100-character UTF-8 client id is accepted [MQTT-3.1.3-5 (3.1.1)]", async () => {
  await withBroker({}, async ({ connect }) => {
    const client = await connect({ version: 4, clientId: "é".repeat(100) });
    await client.disconnect();
  });
});

// ---- session take-over -----------------------------------------------------------------------------------

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: a second connection with the same id disconnects the first [MQTT-3.1.4-2 (3.1.1)] [MQTT-3.1.4-3 (5.0)]`, async () => {
    await withBroker({}, async ({ connect, broker }) => {
      const persistent = { version, clientId: "same", clean: false, properties: [P.sessionExpiry(60)] };
      const first = await connect(persistent);
      const second = await connect(persistent, true);
      await first.expectDisconnect(0x8e, "DISCONNECT Session taken over");
      await second.barrier("the new connection works");
      assert.equal(broker.sessionCount, 1);
      await second.disconnect();
    });
  });
}

Deno.test("v5: take-over of a session with expiry 0 starts a new, working session [MQTT-3.1.4-3 (5.0)]", async () => {
  await withBroker({}, async ({ connect, broker }) => {
    const first = await connect({ version: 5, clientId: "brief", clean: false });
    await subscribe(first, 1, [["old/topic", 1]]);
    // The old session ends with its connection (5.0 section 3.1.2.11.2), so nothing is present.
    const second = await connect({ version: 5, clientId: "brief", clean: false }, false);
    await first.expectDisconnect(0x8e, "DISCONNECT Session taken over");
    assert.equal(broker.sessionCount, 1);
    await subscribe(second, 2, [["new/topic", 0]]);
    const publisher = await connect({ version: 4, clientId: "pub" });
    await publisher.send(
      publishPacket(4, { topic: "old/topic", payload: "gone" }),
      publishPacket(4, { topic: "new/topic", payload: "here" }),
    );
    await publisher.barrier();
    await second.expect(
      publishPacket(5, { topic: "new/topic", payload: "here" }),
      "message to the new session",
    );
    await second.barrier("nothing for the old subscription");
    await publisher.disconnect();
    await second.disconnect();
  });
});

Deno.test("take-over across versions: a v5 client takes over a v4 client's id", async () => {
  await withBroker({}, async ({ connect }) => {
    const old = await connect({ version: 4, clientId: "mixed" });
    const fresh = await connect({ version: 5, clientId: "mixed" });
    await old.expectClosed("v4 connection closed without a DISCONNECT");
    await fresh.barrier();
    await fresh.disconnect();
  });
});

Deno.test("the broker keeps serving after a refused CONNECT", async () => {
  await withBroker({}, async ({ open, connect }) => {
    const refused = await open(4);
    await refused.send(connectPacket({ version: 4, clientId: "", clean: false }));
    await refused.expect(hex("20 02 00 02"));
    await refused.expectClosed();
    const ok = await connect({ version: 4, clientId: "next" });
    await ok.barrier();
    await ok.disconnect();
  });
});

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: packets sent right behind CONNECT, in one write, are handled in order`, async () => {
    await withBroker({}, async ({ open }) => {
      const client = await open(version);
      await client.send(
        connectPacket({ version, clientId: "eager" }),
        subscribePacket(version, 1, [["eager/t", 0]]),
        publishPacket(version, { topic: "eager/t", payload: "hi" }),
        PINGREQ,
      );
      const connack = await client.expectPacket(2, "CONNACK first");
      assert.equal(connack.reasonCode, 0);
      await client.expect(version === 5 ? hex("90 04 00 01 00 00") : hex("90 03 00 01 00"), "SUBACK");
      await client.expect(publishPacket(version, { topic: "eager/t", payload: "hi" }), "PUBLISH");
      await client.expect(hex("d0 00"), "PINGRESP");
      await client.disconnect();
    });
  });
}

for (const version of VERSIONS) {
  Deno.test(`${v(version)}: packets that arrive while a slow authenticator decides are handled after CONNACK, in order`, async () => {
    // The connection reads on while authentication waits (to notice a peer that hangs up, issue 15 item 8): what
    // it reads meanwhile must wait for the CONNACK and keep its order.
    let release: () => void = () => {};
    const decided = new Promise<void>((resolve) => release = resolve);
    const authenticator = {
      authenticate: async () => {
        await decided;
        return { reasonCode: 0 };
      },
    };
    await withBroker({ authenticator }, async ({ open }) => {
      const client = await open(version);
      await client.send(
        connectPacket({ version, clientId: "eager" }),
        subscribePacket(version, 1, [["eager/t", 0]]),
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      await client.send(publishPacket(version, { topic: "eager/t", payload: "hi" }));
      await new Promise((resolve) => setTimeout(resolve, 20));
      await client.send(PINGREQ);
      await new Promise((resolve) => setTimeout(resolve, 20));
      release();
      const connack = await client.expectPacket(2, "CONNACK first");
      assert.equal(connack.reasonCode, 0);
      await client.expect(version === 5 ? hex("90 04 00 01 00 00") : hex("90 03 00 01 00"), "SUBACK");
      await client.expect(publishPacket(version, { topic: "eager/t", payload: "hi" }), "PUBLISH");
      await client.expect(hex("d0 00"), "PINGRESP");
      await client.disconnect();
    });
  });
}

Deno.test("v5: a refused CONNECT gets no Reason String when Request Problem Information is 0", async () => {
  await withBroker({ maxQoS: 1 }, async ({ open }) => {
    const client = await open(5);
    await client.send(
      connectPacket({
        version: 5,
        clientId: "quiet",
        properties: [P.requestProblemInformation(0)],
        will: { topic: "w", payload: "x", qos: 2 },
      }),
    );
    // CONNACK may carry a Reason String even then [MQTT-3.1.2-29 (5.0)]; the code is what matters.
    const connack = await client.expectPacket(2);
    assert.equal(connack.reasonCode, 0x9b, "QoS not supported");
    await client.expectClosed();
  });
});

// ---- What the log says about peers (issues #14 items 11-12, #16) ---------------------------------------------

/** A logger that keeps every line with its level. */
function captureLogger(level: LogLevel = "debug"): { lines: [LogLevel, string][]; logger: Logger } {
  const lines: [LogLevel, string][] = [];
  return { lines, logger: leveledLogger(level, (l, message) => lines.push([l, message])) };
}

Deno.test("a client id with a newline cannot forge a log line: control characters are escaped (issue #14 item 11)", async () => {
  const { lines, logger } = captureLogger("info");
  await withBroker({ logger }, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "evil\n2026-01-01 INFO admin logged in" });
    await client.disconnect();
    await waitFor(() => lines.some(([, line]) => line.includes("disconnected")), "the disconnect line");
  });
  assert.ok(lines.length > 0);
  for (const [, line] of lines) {
    // deno-lint-ignore no-control-regex
    assert.ok(!/[\x00-\x1f\x7f]/.test(line), `control character in ${JSON.stringify(line)}`);
  }
  assert.ok(lines.some(([, line]) => line.includes("evil\\n2026-01-01")), "the id is written escaped");
});

Deno.test("a peer's connection reset is a lost connection at INFO, not an internal error (issue #14 item 12)", async () => {
  const { lines, logger } = captureLogger("debug");
  await withBroker({ logger }, async ({ broker }) => {
    const [client, server] = memoryPair();
    let reset = false;
    const resetting = {
      read: (buffer: Uint8Array) =>
        reset
          ? Promise.reject(new Deno.errors.ConnectionReset("connection reset by peer"))
          : server.read(buffer),
      write: (data: Uint8Array) => server.write(data),
      close: () => server.close(),
    };
    const served = broker.handle(resetting, { remoteAddress: "127.0.0.1:9", allowAnonymous: true });
    await client.write(connectPacket({ version: 4, clientId: "resetter" }));
    const buffer = new Uint8Array(16);
    assert.equal(await client.read(buffer), 4, "CONNACK");
    reset = true;
    await client.write(PINGREQ); // wakes the broker's pending read, which now fails with a reset
    await served;
    client.close();
  });
  assert.deepEqual(lines.filter(([level]) => level === "error"), [], "nothing at ERROR");
  const lost = lines.find(([, line]) => line.includes("resetter") && line.includes("disconnected"));
  assert.ok(lost !== undefined, "the disconnect is logged");
  assert.equal(lost[0], "info");
  assert.match(lost[1], /connection (lost|reset)/);
  assert.doesNotMatch(lost[1], /internal error|0x83/);
});

for (
  const [name, bytes] of [
    ["TLS ClientHello", hex("16 03 01 02 00 01 00 01 fc 03 03")],
    ["HTTP request", new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n")],
  ] as const
) {
  Deno.test(`a peer that sends a ${name} is logged as not speaking MQTT and closed (issue #16)`, async () => {
    const { lines, logger } = captureLogger("info");
    await withBroker({ logger }, async ({ open }) => {
      const client = await open(4);
      await client.send(bytes);
      await client.expectClosed("closed at once");
    });
    assert.ok(
      lines.some(([, line]) => line.includes("does not speak MQTT (TLS client on a plain port? HTTP?)")),
      `a clear line in ${JSON.stringify(lines)}`,
    );
  });
}

Deno.test("--log-level debug shows each packet in and out, one line each, without payload bytes (issue #16)", async () => {
  const { lines, logger } = captureLogger("debug");
  await withBroker({ logger }, async ({ connect }) => {
    const client = await connect({ version: 5, clientId: "tracer" });
    await subscribe(client, 7, [["t/#", 1]]);
    await client.send(publishPacket(5, { topic: "t/1", payload: "secret-payload", qos: 1, id: 9 }));
    await client.expectPacket(3, "the PUBLISH back");
    await client.expectPacket(4, "PUBACK");
    await client.disconnect();
    await waitFor(() => lines.some(([, line]) => line.includes("Received DISCONNECT")), "DISCONNECT traced");
  });
  const trace = lines.map(([, line]) => line);
  for (
    const expected of [
      "Received CONNECT from tracer",
      "Sending CONNACK to tracer",
      "Received SUBSCRIBE from tracer",
      "Sending SUBACK to tracer",
      "Received PUBLISH from tracer",
      "Sending PUBACK to tracer",
      "Sending PUBLISH to tracer",
      "Received DISCONNECT from tracer",
    ]
  ) {
    assert.ok(trace.some((line) => line.startsWith(expected)), `${expected} in ${JSON.stringify(trace)}`);
  }
  const published = trace.find((line) => line.startsWith("Received PUBLISH from tracer"))!;
  assert.match(published, /'t\/1'/);
  assert.match(published, /q1/);
  assert.ok(!trace.some((line) => line.includes("secret-payload")), "no payload bytes");
  assert.ok(!trace.some((line) => line.includes("\n")));
});

Deno.test("a quiet logger gets no packet lines at info (issue #16)", async () => {
  const { lines, logger } = captureLogger("info");
  await withBroker({ logger }, async ({ connect }) => {
    const client = await connect({ version: 4, clientId: "quiet-trace" });
    await client.barrier();
    await client.disconnect();
  });
  assert.ok(!lines.some(([, line]) => line.startsWith("Received") || line.startsWith("Sending")));
});

Deno.test("stepping the wall clock back does not lock an address out of the connect rate (0x9F) (issue #15 item 13)", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ clock, connectRatePerAddress: 1 }, async ({ connect }) => {
    const first = await connect({ version: 5, clientId: "rate-1" });
    clock.advance(1000);
    clock.stepWallClock(-120_000);
    const second = await connect({ version: 5, clientId: "rate-2" });
    await second.disconnect();
    await first.disconnect();
  });
});
