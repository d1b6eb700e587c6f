/**
 * `broker.ts --log-format json` as a subprocess: every stderr line is one JSON object with the stable event ids,
 * and a bad format is refused as a usage error.
 */

import assert from "node:assert/strict";
import { testIf } from "../_permissions.ts";
import { runBroker, subprocessUnavailable, withBrokerProcess } from "./_broker_process.ts";
import { MqttClient } from "../../lib/client/client.ts";

const BASE = ["-p", "0", "--persistence", "memory", "--sys-interval", "0"];

testIf(
  "broker.ts --log-format json writes one JSON object per stderr line",
  [subprocessUnavailable()],
  async () => {
    await withBrokerProcess([...BASE, "--log-format", "json"], async (broker) => {
      const [tcp] = await broker.listening(1);
      const client = new MqttClient({
        hostname: "127.0.0.1",
        port: Number(new URL(tcp!).port),
        clientId: "json\nforged",
        protocolVersion: 5,
        reconnect: false,
      });
      await client.connect();
      await client.close();
      await broker.until("client.disconnected", () => broker.stderr.includes('"client.disconnected"'));
      const status = await broker.stop();
      assert.equal(status.code, 0, broker.stderr);

      const lines = broker.stderr.trimEnd().split("\n");
      const records = lines.map((line) => JSON.parse(line));
      const events = records.map((r) => r.event);
      for (const event of ["listener.started", "broker.started", "client.connected", "client.disconnected"]) {
        assert.ok(events.includes(event), `${event} in ${broker.stderr}`);
      }
      assert.ok(events.includes("broker.stopping"), broker.stderr);
      const connected = records.find((r) => r.event === "client.connected");
      assert.equal(connected.clientId, "json\nforged");
      assert.equal(connected.level, "info");
      assert.equal(connected.protocol, "5.0");
      for (const r of records) assert.match(r.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    });
  },
);

testIf("broker.ts --log-format refuses an unknown format (exit 2)", [subprocessUnavailable()], async () => {
  const { code, stderr } = await runBroker([...BASE, "--log-format", "xml"]);
  assert.equal(code, 2);
  assert.match(stderr, /--log-format must be one of text, json, got "xml"/);
});

testIf("broker.ts takes logFormat from the config file", [subprocessUnavailable()], async () => {
  const dir = await Deno.makeTempDir({ prefix: "mqtt_log_format_" });
  try {
    const config = `${dir}/broker.json`;
    await Deno.writeTextFile(
      config,
      JSON.stringify({ listeners: [{ type: "tcp", port: 0 }], persistence: "memory", logFormat: "json" }),
    );
    await withBrokerProcess(["-c", config], async (broker) => {
      await broker.listening(1);
      await broker.until("broker.started", () => broker.stderr.includes('"broker.started"'));
      const status = await broker.stop();
      assert.equal(status.code, 0, broker.stderr);
      for (const line of broker.stderr.trimEnd().split("\n")) {
        assert.equal(typeof JSON.parse(line).msg, "string");
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
