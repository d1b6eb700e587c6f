/**
 * MQTT.js as the client of a cluster: a v5 subscriber on one node, a 3.1.1 publisher on another, over TCP.
 *
 * @module
 */

import assert from "node:assert/strict";
import { clusterTest, withCluster } from "./_cluster.ts";
import { mqttJsUnavailable } from "../broker/server/_helpers.ts";

const NAME = "MQTT.js: QoS 1 published on A over TCP reaches a v5 MQTT.js subscriber on B";
const unavailable = mqttJsUnavailable();
// Loaded before any broker runs: compiling it blocks the event loop longer than a test lease.
const mqtt = unavailable === undefined ? (await import("mqtt")).default : undefined;

if (mqtt === undefined) Deno.test({ name: `${NAME} (${unavailable})`, ignore: true, fn: () => {} });
else {clusterTest(
    NAME,
    (kind) =>
      withCluster(kind, 2, async ({ brokers, routed }) => {
        const a = await brokers[0]!.listen({ port: 0 });
        const b = await brokers[1]!.listen({ port: 0 });
        const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.port}`, {
          protocolVersion: 5,
          clientId: "js-sub",
          reconnectPeriod: 0,
        });
        const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${a.port}`, {
          protocolVersion: 4,
          clientId: "js-pub",
          reconnectPeriod: 0,
        });
        try {
          const got = new Promise<string>((resolve) =>
            sub.on("message", (topic, payload) => resolve(`${topic}=${payload}`))
          );
          await sub.subscribeAsync("js/+", { qos: 1 });
          await routed(0, 1);
          await pub.publishAsync("js/1", "hello", { qos: 1 });
          assert.equal(await got, "js/1=hello");
        } finally {
          await pub.endAsync(true);
          await sub.endAsync(true);
        }
      }),
  );}
