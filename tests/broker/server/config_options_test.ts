import assert from "node:assert/strict";
import { parseConfig } from "../../../lib/broker/server/config_parse.ts";
import { brokerOptions, listenerOptions } from "../../../lib/broker/server/config_options.ts";
import { filesUnavailable, testIf } from "../../_permissions.ts";

const TLS = { type: "tls", port: 8883, cert: "s.crt", key: "s.key" };

Deno.test("brokerOptions() maps the feature switches to the BrokerOptions of the same name", () => {
  const switches = {
    queueQoS0: true,
    maxQoS: 1,
    retainAvailable: false,
    responseInformation: "replies/",
    checkPayloadFormat: false,
    topicAliasOut: false,
  };
  const config = parseConfig(JSON.stringify(switches), "x.json");
  assert.deepEqual(config, switches);
  assert.deepEqual(brokerOptions(config), switches);
});

Deno.test("brokerOptions() maps limits and sysInterval to BrokerOptions", () => {
  const config = parseConfig(
    JSON.stringify({
      sysInterval: 0,
      limits: { maxPacketSize: 2048, maxInflight: 5, maxTopicDepth: 8, persistentClientExpiration: 86400 },
    }),
    "x.json",
  );
  assert.deepEqual(brokerOptions(config), {
    sysInterval: 0,
    maxPacketSize: 2048,
    maxInflight: 5,
    persistentClientExpiration: 86400,
    topicLimits: { maxLength: 65535, maxDepth: 8 },
  });
  assert.deepEqual(brokerOptions({}), {});
});

testIf(
  "listenerOptions() names the key and the file of a certificate it cannot read",
  [filesUnavailable()],
  async () => {
    const config = parseConfig(JSON.stringify({ listeners: [{ type: "tcp", port: 0 }, TLS] }), "broker.json");
    await assert.rejects(listenerOptions(config, "broker.json"), {
      name: "ConfigError",
      message: /^broker\.json: listeners\[1\]\.cert: cannot read s\.crt: /,
    });
  },
);

Deno.test("listenerOptions() without listeners gives the default: tcp on 127.0.0.1:1883", async () => {
  assert.deepEqual(await listenerOptions({}, "x.json"), [{
    type: "tcp",
    name: "the default tcp listener",
    port: 1883,
  }]);
  assert.deepEqual(
    await listenerOptions(
      parseConfig(JSON.stringify({ listeners: [{ type: "ws", port: 0 }] }), "x.json"),
      "x.json",
    ),
    [{ type: "ws", name: "listeners[0]", hostname: "127.0.0.1", port: 0, path: "/mqtt" }],
  );
});

Deno.test("listenerOptions() passes reusePort on to the listener", async () => {
  assert.deepEqual(
    await listenerOptions(
      parseConfig(JSON.stringify({ listeners: [{ type: "tcp", port: 1883, reusePort: true }] }), "x.json"),
      "x.json",
    ),
    [{ type: "tcp", name: "listeners[0]", hostname: "127.0.0.1", port: 1883, reusePort: true }],
  );
});
