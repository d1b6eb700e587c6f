import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../../../lib/broker/server/config.ts";
import { filesUnavailable, testIf } from "../../_permissions.ts";

const TLS = { type: "tls", port: 8883, cert: "s.crt", key: "s.key" };

testIf("loadConfig() resolves file paths against the config's directory", [filesUnavailable()], async () => {
  const dir = await Deno.makeTempDir({ prefix: "mqtt_config_test_" });
  try {
    const path = join(dir, "broker.json");
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        listeners: [{ ...TLS, cert: "certs/s.crt", key: "/abs/s.key" }],
        persistence: "sqlite:data/b.db",
        passwordFile: "passwd",
        aclFile: "../acl",
        scramFile: "scram/users",
      }),
    );
    const config = await loadConfig(path);
    assert.equal(config.listeners![0]!.cert, join(dir, "certs/s.crt"));
    assert.equal(config.listeners![0]!.key, "/abs/s.key");
    assert.equal(config.persistence, `sqlite:${join(dir, "data/b.db")}`);
    assert.equal(config.passwordFile, join(dir, "passwd"));
    assert.equal(config.aclFile, join(dir, "../acl"));
    assert.equal(config.scramFile, join(dir, "scram/users"));
    await assert.rejects(loadConfig(join(dir, "missing.json")), {
      name: "ConfigError",
      message: new RegExp(`^${join(dir, "missing.json")}: cannot read the config file: `),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
