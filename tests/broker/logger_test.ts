/**
 * The logging seam (`lib/broker/logger.ts`): JSON lines that parse and carry their fields, text lines as before,
 * and no way for a client's string to start a forged line in either format.
 */

import assert from "node:assert/strict";
import {
  jsonLogLine,
  leveledLogger,
  type LogFields,
  logLineWriter,
  type LogRecord,
  textLogLine,
} from "../../lib/broker/logger.ts";
import { LogRing } from "../../lib/broker/log_ring.ts";
import { Broker } from "../../lib/broker/broker.ts";
import { connectPacket, withBroker } from "./_wire.ts";

const AT = Date.UTC(2026, 11, 6, 23, 7, 1, 123);
const FORGED = "evil\n2026-12-06T23:07:01.123Z INFO  client admin connected\r\u2028\x1b[31m";

Deno.test("jsonLogLine() writes time, level, msg, event and the fields, one object", () => {
  const line = jsonLogLine({
    time: AT,
    level: "info",
    msg: "client sensor-1 connected",
    fields: { clientId: "sensor-1", event: "client.connected", keepAlive: 60, sessionPresent: false },
  });
  assert.equal(
    line,
    '{"time":"2026-12-06T23:07:01.123Z","level":"info","msg":"client sensor-1 connected",' +
      '"event":"client.connected","clientId":"sensor-1","keepAlive":60,"sessionPresent":false}',
  );
});

Deno.test("jsonLogLine() leaves out undefined fields and cannot be made to replace time, level or msg", () => {
  const fields = {
    username: undefined,
    time: "forged",
    level: "error",
    msg: "forged",
  } as unknown as LogFields;
  const parsed = JSON.parse(jsonLogLine({ time: AT, level: "warn", msg: "m", fields }));
  assert.deepEqual(parsed, { time: "2026-12-06T23:07:01.123Z", level: "warn", msg: "m" });
});

Deno.test("jsonLogLine() keeps a client id with control characters on one line, the same string back", () => {
  const record: LogRecord = {
    time: AT,
    level: "info",
    msg: `client ${FORGED} connected`,
    fields: { event: "client.connected", clientId: FORGED },
  };
  const line = jsonLogLine(record);
  // deno-lint-ignore no-control-regex
  assert.ok(!/[\x00-\x1f\u2028\u2029]/.test(line), "no raw control character or line separator");
  assert.equal(JSON.parse(line).clientId, FORGED);
});

Deno.test("textLogLine() is today's line, with control characters escaped even when a call site forgot", () => {
  assert.equal(
    textLogLine({ time: AT, level: "info", msg: "listening on 127.0.0.1:1883" }),
    "2026-12-06T23:07:01.123Z INFO  listening on 127.0.0.1:1883",
  );
  const line = textLogLine({ time: AT, level: "warn", msg: `client ${FORGED} connected` });
  assert.equal(line.split(/[\n\r\u2028]/).length, 1);
  assert.match(line, /evil\\n2026/);
});

Deno.test("logLineWriter() prints in the chosen format and hands the record on", () => {
  const lines: string[] = [];
  const records: LogRecord[] = [];
  const logger = leveledLogger("info", logLineWriter("json", (l) => lines.push(l), (r) => records.push(r)));
  logger.info("hello", { event: "broker.started" });
  logger.debug("not kept");
  assert.equal(lines.length, 1);
  assert.equal(JSON.parse(lines[0]!).event, "broker.started");
  assert.equal(records[0]!.msg, "hello");
});

Deno.test("a broker with a JSON logger writes client.connected/disconnected lines that carry the fields", async () => {
  const lines: string[] = [];
  const logger = leveledLogger("info", logLineWriter("json", (l) => lines.push(l)));
  await withBroker({ logger }, async ({ connect, broker }) => {
    const client = await connect({ version: 5, clientId: FORGED, username: "alice" });
    await client.close();
    await new Promise((r) => setTimeout(r, 20));
    const objects = lines.map((l) => JSON.parse(l));
    const connected = objects.find((o) => o.event === "client.connected");
    assert.ok(connected, lines.join("\n"));
    assert.equal(connected.clientId, FORGED);
    assert.equal(connected.username, "alice");
    assert.equal(connected.protocol, "5.0");
    assert.match(connected.remote, /^127\.0\.0\.1:\d+$/);
    assert.equal(connected.level, "info");
    assert.match(connected.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const gone = objects.find((o) => o.event === "client.disconnected");
    assert.equal(gone?.reason, "socket_error");
    assert.equal(broker.logs.records({ event: "client.connected" }).length, 1);
  });
  for (const line of lines) assert.equal(line.split("\n").length, 1);
});

Deno.test("a broker with a text logger cannot be made to print a forged line by a client id", async () => {
  const lines: string[] = [];
  const logger = leveledLogger("info", logLineWriter("text", (l) => lines.push(l)));
  await withBroker({ logger }, async ({ open }) => {
    const client = await open(4);
    await client.send(connectPacket({ version: 4, clientId: FORGED }));
    await client.nextPacket("CONNACK");
    await client.close();
    await new Promise((r) => setTimeout(r, 20));
  });
  const text = lines.join("\n");
  assert.equal(text.split("\n").length, lines.length, "one line each");
  assert.ok(!text.split("\n").some((l) => l.startsWith("2026-12-06T23:07:01.123Z INFO")), "no forged line");
  assert.ok(lines.some((l) => l.includes("evil\\n2026")), text);
});

Deno.test("LogRing keeps the last N records, filters them, and tells subscribers", () => {
  const ring = new LogRing(3);
  const heard: string[] = [];
  const off = ring.subscribe((r) => heard.push(r.msg));
  for (let i = 0; i < 5; i++) {
    ring.push({ time: i, level: i % 2 === 0 ? "info" : "warn", msg: `m${i}`, fields: { event: `e${i}` } });
  }
  off();
  ring.push({ time: 5, level: "error", msg: "m5" });
  assert.deepEqual(ring.records().map((r) => r.msg), ["m3", "m4", "m5"]);
  assert.deepEqual(ring.records({ level: "warn" }).map((r) => r.msg), ["m3", "m5"]);
  assert.deepEqual(ring.records({ since: 3 }).map((r) => r.msg), ["m4", "m5"]);
  assert.deepEqual(ring.records({ event: "e4" }).map((r) => r.msg), ["m4"]);
  assert.deepEqual(ring.records({ limit: 1 }).map((r) => r.msg), ["m5"]);
  assert.deepEqual(heard, ["m0", "m1", "m2", "m3", "m4"]);
  assert.equal(ring.size, 3);
});

Deno.test("LogRing.wrap() keeps what the logger keeps at info and above, and nothing for a quiet one", () => {
  const ring = new LogRing();
  const printed: string[] = [];
  const logger = ring.wrap(leveledLogger("info", (_l, m) => printed.push(m)));
  logger.info("a", { event: "x" });
  logger.debug("b");
  logger.error("c");
  assert.deepEqual(printed, ["a", "c"]);
  assert.deepEqual(ring.records().map((r) => r.msg), ["a", "c"]);
  assert.equal(logger.enabled?.("debug"), false);
  const quiet = new LogRing();
  quiet.wrap(new Broker().logger).warn("dropped");
  assert.equal(quiet.size, 0);
});
