import assert from "node:assert/strict";
import { adminSectionOf, namedAsInFile } from "../../lib/admin/config.ts";
import { ConfigError, listenerOptions, parseConfig } from "../../lib/broker/server/config.ts";

const parse = (config: unknown) => parseConfig(JSON.stringify(config), "broker.json");

Deno.test("parseConfig() takes http/https listeners and the admin section out for the admin server", () => {
  const config = parse({
    listeners: [
      { type: "tcp", port: 1883 },
      { type: "http", port: 8088 },
      { type: "https", host: "0.0.0.0", port: 8443, cert: "c.pem", key: "k.pem", publicMetrics: true },
    ],
    admin: {
      users: { ops: "admin", grafana: "viewer" },
      tokenFile: "t",
      allowedHosts: ["B.example"],
      sessionMinutes: 5,
    },
  });
  assert.deepEqual(config.listeners, [{ type: "tcp", port: 1883 }]);
  const section = adminSectionOf(config);
  assert.deepEqual(section.httpListeners, [
    { name: "listeners[1]", type: "http", port: 8088 },
    {
      name: "listeners[2]",
      type: "https",
      host: "0.0.0.0",
      port: 8443,
      cert: "c.pem",
      key: "k.pem",
      publicMetrics: true,
    },
  ]);
  assert.deepEqual(section.admin, {
    users: { ops: "admin", grafana: "viewer" },
    tokenFile: "t",
    allowedHosts: ["b.example"],
    sessionMinutes: 5,
  });
  assert.deepEqual(adminSectionOf(parse({})), { httpListeners: [] });
});

Deno.test("parseConfig() rejects bad admin keys, naming the file and the key", () => {
  const cases: [unknown, RegExp][] = [
    [{ admin: { users: { ops: "root" } } }, /^broker\.json: admin\.users\.ops must be "viewer" or "admin"$/],
    [{ admin: { colour: 1 } }, /unknown key admin\.colour/],
    [{ admin: { sessionMinutes: 0 } }, /admin\.sessionMinutes must be an integer/],
    [{ admin: { allowedHosts: "x" } }, /admin\.allowedHosts must be an array/],
    [{ listeners: [{ type: "https", port: 1 }] }, /listeners\[0\]\.cert is required for an https listener/],
    [
      { listeners: [{ type: "http", port: 1, cert: "c" }] },
      /listeners\[0\]\.cert is only for https listeners/,
    ],
    [
      { listeners: [{ type: "http", port: 70000 }] },
      /listeners\[0\]\.port must be an integer from 0 to 65535/,
    ],
    [{ listeners: [{ type: "http", port: 1, path: "/x" }] }, /unknown key listeners\[0\]\.path/],
    [
      { listeners: [{ type: "tcp", port: 8088 }, { type: "http", port: 8088 }] },
      /listeners\[1\]\.port 8088 is already used by another listener/,
    ],
    [
      { listeners: [{ type: "tcp", port: 1, publicMetrics: true }] },
      /unknown key listeners\[0\]\.publicMetrics/,
    ],
  ];
  for (const [config, message] of cases) {
    assert.throws(() => parse(config), (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.match(error.message, message);
      return true;
    });
  }
});

Deno.test("parseConfig() names an MQTT listener by its place in the file when http listeners come first", () => {
  assert.throws(
    () => parse({ listeners: [{ type: "http", port: 8088 }, { type: "tcp", port: 70000 }] }),
    /broker\.json: listeners\[1\]\.port must be an integer from 0 to 65535$/,
  );
});

Deno.test("namedAsInFile() names MQTT listeners by their place in the file, around http ones", async () => {
  const config = parse({
    listeners: [{ type: "http", port: 0 }, { type: "tcp", port: 0 }, {
      type: "https",
      port: 0,
      cert: "c",
      key: "k",
    }, {
      type: "ws",
      port: 0,
    }],
  });
  const names = namedAsInFile(await listenerOptions(config, "broker.json"), config).map((l) => l.name);
  assert.deepEqual(names, ["listeners[1]", "listeners[3]"]);
  const plain = parse({ listeners: [{ type: "tcp", port: 0 }] });
  assert.deepEqual(namedAsInFile(await listenerOptions(plain, "broker.json"), plain).map((l) => l.name), [
    "listeners[0]",
  ]);
});
