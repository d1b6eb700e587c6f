import assert from "node:assert/strict";
import { join } from "node:path";
import { hashPassword } from "../../lib/auth/password_hash.ts";
import { certificatesUnavailable, makeCertificates } from "../listeners/_certs.ts";
import { loadMqttJs, mqttJsRoundTrip, mqttJsUnavailable, testIf, within } from "../listeners/_helpers.ts";
import { runBroker, subprocessUnavailable, withBrokerProcess } from "./_broker_process.ts";

/** Registers a test that gets a temporary directory, or a skipped test that says why. */
function cliTest(
  name: string,
  fn: (dir: string) => Promise<void>,
  unavailable: (string | undefined)[] = [],
): void {
  testIf(name, [subprocessUnavailable(), mqttJsUnavailable(), ...unavailable], async () => {
    const dir = await Deno.makeTempDir({ prefix: "mqtt_cli_test_" });
    try {
      await fn(dir);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

async function writeConfig(dir: string, config: unknown): Promise<string> {
  const path = join(dir, "broker.json");
  await Deno.writeTextFile(path, JSON.stringify(config, null, 2));
  return path;
}

/** MQTT.js's URL for a listener URL the broker printed. */
function mqttJsUrl(url: string): string {
  return url.replace(/^tcp:/, "mqtt:").replace(/^tls:/, "mqtts:");
}

cliTest("broker.ts --config starts tcp and ws listeners and prints each URL", async (dir) => {
  const config = await writeConfig(dir, {
    listeners: [{ type: "tcp", port: 0 }, { type: "ws", host: "127.0.0.1", port: 0, path: "/ws" }],
    persistence: "memory",
    sysInterval: 0,
  });
  await withBrokerProcess(["--config", config], async (broker) => {
    const [tcp, ws] = await broker.listening(2);
    assert.match(tcp!, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.match(ws!, /^ws:\/\/127\.0\.0\.1:\d+\/ws$/);
    await mqttJsRoundTrip(mqttJsUrl(tcp!));
    await mqttJsRoundTrip(ws!);
    const status = await broker.stop();
    assert.equal(status.code, 0, broker.stderr);
  });
});

cliTest(
  "broker.ts --config starts tls (with and without client certificates) and wss listeners",
  async (dir) => {
    const certs = await makeCertificates();
    try {
      // Relative paths are resolved against the config file's directory.
      for (const name of ["ca.crt", "server.crt", "server.key"]) {
        await Deno.copyFile(
          join(certs.dir, name),
          join(dir, name),
        );
      }
      const server = { cert: "server.crt", key: "server.key" };
      const config = await writeConfig(dir, {
        listeners: [
          { type: "tls", port: 0, ...server },
          {
            type: "tls",
            port: 0,
            ...server,
            ca: "ca.crt",
            requireCertificate: true,
            useIdentityAsUsername: true,
          },
          { type: "wss", port: 0, ...server },
        ],
        persistence: "memory",
        sysInterval: 0,
      });
      await withBrokerProcess(["--config", config], async (broker) => {
        const [tls, mtls, wss] = await broker.listening(3);
        assert.match(wss!, /^wss:\/\/127\.0\.0\.1:\d+\/mqtt$/);
        await mqttJsRoundTrip(mqttJsUrl(tls!), { ca: certs.ca });
        await mqttJsRoundTrip(mqttJsUrl(mtls!), {
          ca: certs.ca,
          cert: certs.clientCert,
          key: certs.clientKey,
        });
        await mqttJsRoundTrip(wss!, { ca: certs.ca });
      });
    } finally {
      await certs.remove();
    }
  },
  [certificatesUnavailable()],
);

cliTest("broker.ts flags override the config file", async (dir) => {
  const config = await writeConfig(dir, {
    listeners: [{ type: "tcp", port: 1 }],
    persistence: "sqlite:never/used.db",
    logLevel: "debug",
  });
  await withBrokerProcess(
    ["-c", config, "-p", "0", "--persistence", "memory", "--log-level", "error", "--sys-interval", "0"],
    async (broker) => {
      const [tcp] = await broker.listening(1);
      assert.doesNotMatch(tcp!, /:1$/);
      await mqttJsRoundTrip(mqttJsUrl(tcp!));
      assert.doesNotMatch(broker.stderr, /INFO|DEBUG/);
    },
  );
});

cliTest("broker.ts exits 2 on a bad config, naming the file and the key", async (dir) => {
  const config = await writeConfig(dir, {
    listeners: [{ type: "tcp", port: 0 }, { type: "ws", port: 70000 }],
  });
  const result = await runBroker(["--config", config]);
  assert.equal(result.code, 2);
  assert.equal(result.stderr, `broker: ${config}: listeners[1].port must be an integer from 0 to 65535\n`);
  assert.equal(result.stdout, "");

  const missing = await writeConfig(dir, {
    listeners: [{ type: "tls", port: 0, cert: "nope.crt", key: "nope.key" }],
  });
  const cert = await runBroker(["--config", missing]);
  assert.equal(cert.code, 2);
  assert.match(
    cert.stderr,
    new RegExp(`^broker: ${missing}: listeners\\[0\\]\\.cert: cannot read ${join(dir, "nope.crt")}: `),
  );
});

cliTest("broker.ts refuses a listener on 0.0.0.0 without authentication, naming it", async (dir) => {
  const config = await writeConfig(dir, {
    listeners: [{ type: "tcp", port: 0 }, { type: "ws", host: "0.0.0.0", port: 0 }],
    persistence: "memory",
  });
  const result = await runBroker(["--config", config]);
  assert.equal(result.code, 1);
  assert.equal(result.stdout, "", "nothing was listening");
  assert.match(
    result.stderr,
    /broker: listeners\[1\] \(ws on 0\.0\.0\.0:0\): refusing to accept clients from the network/,
  );

  const flags = await runBroker(["--host", "0.0.0.0", "-p", "0", "--persistence", "memory"]);
  assert.equal(flags.code, 1);
  assert.match(flags.stderr, /broker: the default tcp listener \(tcp on 0\.0\.0\.0:0\): refusing/);
});

cliTest(
  "broker.ts reloads the password file and the ACL on SIGHUP without dropping clients",
  async (dir) => {
    const mqtt = await loadMqttJs();
    const passwords = join(dir, "passwd");
    const acl = join(dir, "acl");
    const entry = async (password: string) => `alice:${await hashPassword(password, { iterations: 1000 })}\n`;
    await Deno.writeTextFile(passwords, await entry("old"));
    // listeners/# for the round trips, b/# only after the reload.
    await Deno.writeTextFile(acl, "user alice\ntopic readwrite listeners/#\ntopic readwrite a/#\n");
    const config = await writeConfig(dir, {
      listeners: [{ type: "tcp", port: 0 }],
      passwordFile: "passwd",
      aclFile: "acl",
      persistence: "memory",
      sysInterval: 0,
    });
    await withBrokerProcess(["--config", config], async (broker) => {
      const [tcp] = await broker.listening(1);
      // A supervisor may send SIGHUP as soon as the broker says it is listening: it must not end the process.
      broker.kill("SIGHUP");
      const reloads = () => (broker.stderr.match(/SIGHUP: reloaded/g) ?? []).length;
      await broker.until("the first reload", () => reloads() === 2);
      const url = mqttJsUrl(tcp!);
      const options = { reconnectPeriod: 0, username: "alice", protocolVersion: 5 as const };
      const first = await within(mqtt.connectAsync(url, { ...options, password: "old" }, false), "connect");
      try {
        await assert.rejects(first.subscribeAsync("b/t"), /Not authorized/, "b/# is not granted yet");

        await Deno.writeTextFile(passwords, await entry("new"));
        await Deno.writeTextFile(acl, "user alice\ntopic readwrite listeners/#\ntopic readwrite b/#\n");
        broker.kill("SIGHUP");
        await broker.until("the second reload", () => reloads() === 4);
        assert.match(broker.stderr, /SIGHUP: reloaded \S+passwd \(1 user\(s\)\)/);

        await mqttJsRoundTrip(url, { username: "alice", password: "new" });
        await assert.rejects(
          mqttJsRoundTrip(url, { username: "alice", password: "old" }),
          /Bad username or password/i,
        );
        assert.ok(first.connected, "the client connected before the reload is still connected");
        assert.equal((await first.subscribeAsync("b/t"))[0]!.qos, 0, "the new ACL applies to it");
      } finally {
        await first.endAsync();
      }
    });
  },
  [Deno.build.os === "windows" ? "needs POSIX signals" : undefined],
);

cliTest(
  "storage where the broker may not write: exit 1 with Deno's message and how to give the directory",
  async (dir) => {
    const allowed = join(dir, "data");
    await Deno.mkdir(allowed);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--allow-net",
        "--allow-read",
        `--allow-write=${allowed}`,
        new URL("../../broker.ts", import.meta.url).pathname,
        "-p",
        "0",
        "--persistence",
        `sqlite:${join(dir, "elsewhere", "broker.db")}`,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, stderr);
    assert.match(stderr, /^broker: Requires write access to /);
    assert.match(stderr, /--allow-write=DIR broker\.ts/);
  },
);
