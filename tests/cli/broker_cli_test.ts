import assert from "node:assert/strict";
import { join } from "node:path";
import { hashPassword } from "../../lib/auth/password_hash.ts";
import { certificatesUnavailable, makeCertificates } from "../broker/server/_certs.ts";
import { loadMqttJs, mqttJsRoundTrip, mqttJsUnavailable, testIf, within } from "../broker/server/_helpers.ts";
import { BrokerProcess, runBroker, subprocessUnavailable, withBrokerProcess } from "./_broker_process.ts";
import type { IClientOptions } from "mqtt";
import { BROKER_VERSION } from "../../lib/broker/broker.ts";
import { hashScramEntry } from "../../lib/broker/auth/scram_file.ts";
import { listenerOptions, loadConfig } from "../../lib/broker/server/config.ts";
import { MqttClient } from "../../lib/client/client.ts";
import { scramSha256 } from "../../lib/client/enhanced_auth.ts";
import { MqttError } from "../../lib/mqtt_error.ts";

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

cliTest(
  "broker.ts --reuse-port: two brokers share a port; without it the second is refused; without --unstable-net it says so",
  async () => {
    const first = new BrokerProcess(["-p", "0", "--persistence", "memory", "--reuse-port"]);
    try {
      const [url] = await first.listening(1);
      const port = new URL(url!.replace("tcp:", "http:")).port;
      const second = new BrokerProcess(["-p", port, "--persistence", "memory", "--reuse-port"]);
      try {
        assert.deepEqual(await second.listening(1), [url], "the second listens on the same port");
      } finally {
        await second.stop();
      }
      const plain = await runBroker(["-p", port, "--persistence", "memory"]);
      assert.equal(plain.code, 1);
      assert.match(plain.stderr, /cannot listen on tcp:\/\/127\.0\.0\.1:\d+: Address already in use/);
    } finally {
      await first.stop();
    }
    const stable = await runBroker(["-p", "0", "--persistence", "memory", "--reuse-port"], {
      denoFlags: ["--no-config"],
    });
    assert.equal(stable.code, 1);
    assert.equal(stable.stdout, "", "nothing was listening");
    assert.match(stable.stderr, /broker: the default tcp listener: reusePort needs Deno's --unstable-net/);
  },
);

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

// ---- issue 16: what a Mosquitto user reaches for ----------------------------------------------------------

const ROOT = new URL("../../", import.meta.url).pathname;

cliTest("broker.ts --help fits 80 columns; --version prints the version", async () => {
  const help = await runBroker(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: deno task broker /);
  for (const line of help.stdout.split("\n")) assert.ok(line.length <= 80, `${line.length} columns: ${line}`);
  assert.match(help.stdout, /-v, --verbose/);
  const version = await runBroker(["--version"]);
  assert.equal(version.code, 0);
  assert.equal(version.stdout, `${BROKER_VERSION} (MQTT 3.1, 3.1.1, 5.0; Deno ${Deno.version.deno})\n`);
  const both = await runBroker(["-v", "--log-level", "info"]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /^broker: -v and --log-level cannot be used together\n/);
});

cliTest("broker.ts -v logs at debug level, as --log-level debug", async () => {
  await withBrokerProcess(
    ["-v", "-p", "0", "--persistence", "memory", "--sys-interval", "0"],
    async (broker) => {
      const [tcp] = await broker.listening(1);
      await mqttJsRoundTrip(mqttJsUrl(tcp!));
      await broker.until("a DEBUG line", () => / DEBUG /.test(broker.stderr));
    },
  );
});

cliTest("broker.ts logs each SIGHUP and what it reloads, or that there is nothing to reload", async (dir) => {
  await withBrokerProcess(["-p", "0", "--persistence", "memory"], async (broker) => {
    await broker.listening(1);
    broker.kill("SIGHUP");
    await broker.until("the SIGHUP line", () => /SIGHUP received/.test(broker.stderr));
    assert.match(
      broker.stderr,
      /INFO {2}SIGHUP received: nothing to reload \(the config names no passwordFile, aclFile or scramFile\)\n/,
    );
  });
  await Deno.writeTextFile(join(dir, "acl"), "topic read #\n");
  await Deno.writeTextFile(join(dir, "scram"), `alice:${await hashScramEntry("pw", 10)}\n`);
  const config = await writeConfig(dir, { aclFile: "acl", scramFile: "scram", persistence: "memory" });
  await withBrokerProcess(["-c", config, "-p", "0"], async (broker) => {
    await broker.listening(1);
    await Deno.writeTextFile(join(dir, "scram"), "alice:broken\n");
    broker.kill("SIGHUP");
    await broker.until("two outcomes", () => /SIGHUP: kept the previous/.test(broker.stderr));
    assert.match(
      broker.stderr,
      new RegExp(
        `SIGHUP received: reloading the ACL file ${join(dir, "acl")}, the SCRAM file ${join(dir, "scram")}\n`,
      ),
    );
    assert.match(broker.stderr, new RegExp(`SIGHUP: reloaded ${join(dir, "acl")}\n`));
    assert.match(broker.stderr, new RegExp(`ERROR SIGHUP: kept the previous ${join(dir, "scram")}: .*:1: `));
  });
}, [Deno.build.os === "windows" ? "needs POSIX signals" : undefined]);

cliTest(
  "broker.ts takes relative --config and --persistence paths from the caller's directory (INIT_CWD)",
  async (dir) => {
    const config = await writeConfig(dir, { listeners: [{ type: "tcp", port: 0 }], sysInterval: 0 });
    await withBrokerProcess(
      ["--config", "broker.json", "--persistence", "sqlite:state/b.db"],
      async (broker) => {
        await broker.listening(1);
        await Deno.stat(join(dir, "state", "b.db")); // created where the caller is, not in the repository
      },
      { env: { INIT_CWD: dir } },
    );
    assert.ok(config.startsWith(dir));
  },
);

cliTest(
  "broker.ts: SCRAM-SHA-256 users from the config's scramFile log in; a plain password does not",
  async (dir) => {
    await Deno.writeTextFile(join(dir, "scram"), `alice:${await hashScramEntry("wonderland", 10)}\n`);
    const config = await writeConfig(dir, {
      listeners: [{ type: "tcp", port: 0 }],
      scramFile: "scram",
      persistence: "memory",
      sysInterval: 0,
    });
    await withBrokerProcess(["-c", config], async (broker) => {
      const [tcp] = await broker.listening(1);
      const port = Number(new URL(tcp!).port);
      const options = { hostname: "127.0.0.1", port, protocolVersion: 5 as const, reconnect: false };
      const good = new MqttClient({ ...options, enhancedAuth: scramSha256("alice", "wonderland") });
      const connack = await good.connect();
      assert.equal(connack.properties?.authenticationMethod, "SCRAM-SHA-256");
      await good.close();
      const wrong = new MqttClient({ ...options, enhancedAuth: scramSha256("alice", "looking-glass") });
      await assert.rejects(wrong.connect(), MqttError);
      const plain = new MqttClient({ ...options, username: "alice", password: "wonderland" });
      await assert.rejects(plain.connect(), (error: unknown) => {
        assert.ok(error instanceof MqttError && error.reasonCode === 0x86, String(error));
        return true;
      });
    });
  },
);

/** Connects with MQTT.js, subscribes to `topic`, publishes to it and waits for the message back. */
async function roundTrip(url: string, topic: string, options: IClientOptions = {}): Promise<void> {
  const mqtt = await loadMqttJs();
  const client = await within(
    mqtt.connectAsync(url, { reconnectPeriod: 0, ...options }, false),
    `connect ${url}`,
  );
  try {
    const received = new Promise<string>((resolve) => client.on("message", (t) => resolve(t)));
    await client.subscribeAsync(topic, { qos: 1 });
    await client.publishAsync(topic, "hi", { qos: 1 });
    assert.equal(await within(received, `the message back on ${url}`), topic);
  } finally {
    await client.endAsync();
  }
}

cliTest(
  "broker.example.json starts as shipped: every file it names exists, every listener serves",
  async (dir) => {
    // The shipped file, with its ports made 0 (they may be taken here), its storage in memory and its paths
    // absolute (the copy lives elsewhere); everything else as shipped.
    const shipped = join(ROOT, "broker.example.json");
    const config = await loadConfig(shipped);
    await Promise.all(
      [config.passwordFile!, config.aclFile!, config.scramFile!].map((file) => Deno.stat(file)),
    );
    await listenerOptions(config, shipped); // reads every certificate
    // parseConfig keeps the admin listener and the admin section apart from the MQTT keys: taken as shipped.
    const raw = JSON.parse(await Deno.readTextFile(shipped));
    const http = raw.listeners.filter((l: { type: string }) => l.type === "http");
    assert.equal(http.length, 1, "the example has an admin listener");
    const copy = await writeConfig(dir, {
      ...config,
      listeners: [...config.listeners!, ...http].map((l) => ({ ...l, port: 0 })),
      admin: raw.admin,
      persistence: "memory",
      sysInterval: 0,
    });
    await withBrokerProcess(["-c", copy], async (broker) => {
      const [tcp, tls, ws, wss] = await broker.listening(4);
      // The admin listener: examples/passwords' operator is an admin of the API, dashboard only a viewer.
      await broker.until("the admin line", () => /^admin: http:\/\/\S+$/m.test(broker.stdout));
      const admin = /^admin: (http:\/\/\S+)$/m.exec(broker.stdout)![1]!;
      const get = (user: string, password: string) =>
        fetch(new URL("/api/v1/broker", admin), {
          headers: { authorization: `Basic ${btoa(`${user}:${password}`)}` },
        });
      const ok = await get("operator", "example-operator");
      assert.equal(ok.status, 200);
      assert.equal((await ok.json()).listeners.length, 5);
      const viewerKick = await fetch(new URL("/api/v1/clients/nobody", admin), {
        method: "DELETE",
        headers: { authorization: `Basic ${btoa("dashboard:example-dashboard")}` },
      });
      assert.equal(viewerKick.status, 403, "a viewer may not kick");
      await viewerKick.body?.cancel();
      const device = await get("firmware-service", "example-firmware");
      assert.equal(device.status, 403, "a device in the password file is not an admin");
      await device.body?.cancel();
      const ca = await Deno.readTextFile(join(ROOT, "examples/certs/ca.crt"));
      // Anonymous on loopback: examples/acl.conf lets them write public/inbox and read public/#.
      await roundTrip(mqttJsUrl(tcp!), "public/inbox");
      await roundTrip(ws!, "public/inbox");
      // A user of examples/passwords on the wss listener, which refuses anonymous clients.
      await roundTrip(wss!, "users/dashboard/t", {
        ca,
        username: "dashboard",
        password: "example-dashboard",
      });
      // The client certificate's CN (device-42) is the user name.
      await roundTrip(mqttJsUrl(tls!), "users/device-42/t", {
        ca,
        cert: await Deno.readTextFile(join(ROOT, "examples/certs/client.crt")),
        key: await Deno.readTextFile(join(ROOT, "examples/certs/client.key")),
      });
      // A user of examples/scram_users, over SCRAM-SHA-256.
      const client = new MqttClient({
        hostname: "127.0.0.1",
        port: Number(new URL(tcp!).port),
        protocolVersion: 5,
        reconnect: false,
        enhancedAuth: scramSha256("operator", "example-operator"),
      });
      await client.connect();
      await client.close();
    });
  },
);

cliTest(
  "broker.ts reads a tls listener's certificate again on SIGHUP: new connections get the new one",
  async (dir) => {
    const certs = await makeCertificates();
    try {
      const cert = join(dir, "server.crt");
      const key = join(dir, "server.key");
      await Deno.writeTextFile(cert, certs.serverCert);
      await Deno.writeTextFile(key, certs.serverKey);
      const config = await writeConfig(dir, {
        listeners: [{ type: "tls", port: 0, cert: "server.crt", key: "server.key", allowAnonymous: true }],
        persistence: "memory",
        sysInterval: 0,
      });
      await withBrokerProcess(["--config", config], async (broker) => {
        const [url] = await broker.listening(1);
        const port = Number(new URL(url!).port);
        const trusts = async (ca: string): Promise<boolean> => {
          try {
            const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [ca] });
            try {
              await conn.handshake();
              return true;
            } finally {
              conn.close();
            }
          } catch {
            return false;
          }
        };
        assert.ok(await trusts(certs.ca), "the first certificate is served");
        await Deno.writeTextFile(cert, certs.otherServerCert);
        await Deno.writeTextFile(key, certs.otherServerKey);
        broker.kill("SIGHUP");
        await broker.until("the certificate reload", () => /reloaded its certificate/.test(broker.stderr));
        assert.ok(await trusts(certs.strangerCa), `the new certificate is served\n${broker.stderr}`);
        assert.ok(!(await trusts(certs.ca)), "the old certificate is no longer served");
      });
    } finally {
      await certs.remove();
    }
  },
  [certificatesUnavailable(), Deno.build.os === "windows" ? "needs POSIX signals" : undefined],
);

cliTest(
  "broker.ts on SIGHUP disconnects a connected user removed from the password file (v5 DISCONNECT 0x87)",
  async (dir) => {
    const mqtt = await loadMqttJs();
    const passwords = join(dir, "passwd");
    const entry = async (user: string) => `${user}:${await hashPassword("pw", { iterations: 1000 })}\n`;
    await Deno.writeTextFile(passwords, (await entry("alice")) + (await entry("bob")));
    const config = await writeConfig(dir, {
      listeners: [{ type: "tcp", port: 0 }],
      passwordFile: "passwd",
      persistence: "memory",
      sysInterval: 0,
    });
    await withBrokerProcess(["--config", config], async (broker) => {
      const [tcp] = await broker.listening(1);
      const options = { reconnectPeriod: 0, password: "pw", protocolVersion: 5 as const };
      const alice = await within(
        mqtt.connectAsync(mqttJsUrl(tcp!), { ...options, username: "alice" }, false),
        "alice",
      );
      const bob = await within(
        mqtt.connectAsync(mqttJsUrl(tcp!), { ...options, username: "bob" }, false),
        "bob",
      );
      try {
        const kicked = new Promise<number | undefined>((resolve) =>
          bob.on("disconnect", (packet) => resolve(packet.reasonCode))
        );
        await Deno.writeTextFile(passwords, await entry("alice"));
        broker.kill("SIGHUP");
        assert.equal(await within(kicked, "bob's DISCONNECT"), 0x87);
        await broker.until(
          "the re-check line",
          () => /SIGHUP: re-checked connected clients/.test(broker.stderr),
        );
        assert.ok(alice.connected, "alice, still in the file, stays connected");
      } finally {
        await alice.endAsync();
        await bob.endAsync(true);
      }
    });
  },
  [Deno.build.os === "windows" ? "needs POSIX signals" : undefined],
);
