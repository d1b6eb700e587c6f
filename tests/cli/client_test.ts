/**
 * `deno task client pub|sub` as real subprocesses against a real broker. Needs --allow-run (for `deno`);
 * without it every test here is registered as ignored.
 */

import assert from "node:assert/strict";
import { BROKERS } from "../client/_brokers.ts";
import { CliProcess, cliTest, cliUnavailable, PUBLISH_DEFINES, runCli, withOurBroker } from "./_cli.ts";
import { FakeServer } from "../client/_fake_server.ts";
import { freePort } from "../client/_mosquitto.ts";

const unavailable = cliUnavailable();

/** Starts `sub` with --trace and waits until its subscription is acknowledged. */
async function subscribed(port: number, args: readonly string[]): Promise<CliProcess> {
  const sub = new CliProcess(["sub", "-h", "127.0.0.1", "-p", String(port), "--trace", ...args]);
  await sub.waitForStderr("<- SUBACK");
  return sub;
}

for (const target of BROKERS) {
  for (const qos of [0, 1, 2]) {
    const reason = unavailable ?? target.unavailable;
    Deno.test({
      name: `[${target.name}] client.ts pub → sub round trip at QoS ${qos}${
        reason === undefined ? "" : ` (skipped: ${reason})`
      }`,
      ignore: reason !== undefined,
      async fn() {
        const broker = await target.start();
        try {
          const port = String(broker.port);
          const sub = await subscribed(broker.port, ["-t", "cli/+", "-q", String(qos), "-v", "-C", "1"]);
          const pub = await runCli([
            "pub",
            "-h",
            "127.0.0.1",
            "-p",
            port,
            "-t",
            "cli/x",
            "-m",
            `at qos ${qos}`,
            "-q",
            `${qos}`,
          ]);
          assert.equal(pub.code, 0, pub.stderr);
          const result = await sub.result();
          assert.equal(result.code, 0, result.stderr);
          assert.equal(result.stdout, `cli/x at qos ${qos}\n`);
          assert.match(result.stderr, new RegExp(`<- PUBLISH cli/x qos=${qos}`));
          assert.match(result.stderr, /-> DISCONNECT/);
        } finally {
          await broker.stop();
        }
      },
    });
  }
}

cliTest("sub -C 2 -F prints two formatted messages and exits", async () => {
  await withOurBroker(async (port) => {
    const sub = await subscribed(port, ["-t", "f/#", "-C", "2", "-F", "%t|%p|%q|%r|%l|%%"]);
    for (const m of ["one", "three"]) {
      const pub = await runCli(["pub", "-p", String(port), "-h", "127.0.0.1", "-t", `f/${m}`, "-m", m]);
      assert.equal(pub.code, 0, pub.stderr);
    }
    const result = await sub.result();
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "f/one|one|0|0|3|%\nf/three|three|0|0|5|%\n");
  });
});

cliTest("sub --json prints one JSON object per message, with v5 properties", async () => {
  await withOurBroker(async (port) => {
    const sub = await subscribed(port, ["-t", "j", "-q", "1", "-C", "1", "--json"]);
    const pub = await runCli([
      "pub",
      "-p",
      String(port),
      "-h",
      "127.0.0.1",
      "-t",
      "j",
      "-m",
      "data",
      "-q",
      "1",
      ...PUBLISH_DEFINES,
    ]);
    assert.equal(pub.code, 0, pub.stderr);
    const result = await sub.result();
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 1);
    const json = JSON.parse(lines[0]!);
    assert.equal(json.topic, "j");
    assert.equal(json.payload, "data");
    assert.equal(json.qos, 1);
    assert.equal(json.retain, false);
    assert.deepEqual(json.properties.userProperties, [["k", "v"]]);
    assert.ok(json.properties.messageExpiryInterval <= 60);
  });
});

cliTest("pub -l sends one message per stdin line; -r retains; sub -R skips stale ones", async () => {
  await withOurBroker(async (port) => {
    const p = String(port);
    const retained = await runCli(["pub", "-h", "127.0.0.1", "-p", p, "-t", "l/old", "-m", "stale", "-r"]);
    assert.equal(retained.code, 0, retained.stderr);
    const sub = await subscribed(port, ["-t", "l/#", "-R", "-C", "3", "-v"]);
    const pub = await runCli(
      ["pub", "-h", "127.0.0.1", "-p", p, "-t", "l/new", "-l", "-q", "1"],
      "a\nb\n\nc\n",
    );
    assert.equal(pub.code, 0, pub.stderr);
    const result = await sub.result();
    assert.equal(result.stdout, "l/new a\nl/new b\nl/new c\n");
  });
});

cliTest("sub -W exits with code 27 when the messages do not come", async () => {
  await withOurBroker(async (port) => {
    const result = await runCli(["sub", "-h", "127.0.0.1", "-p", String(port), "-t", "nothing", "-W", "1"]);
    assert.equal(result.code, 27);
    assert.equal(result.stderr, "Timed out\n");
  });
});

cliTest("sub ends cleanly on SIGINT: DISCONNECT sent, exit 0", async () => {
  await withOurBroker(async (port) => {
    const sub = await subscribed(port, ["-t", "forever"]);
    sub.kill("SIGINT");
    const result = await sub.result();
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /-> DISCONNECT/);
  });
});

cliTest("a bad flag exits 2 with one error line and a hint", async () => {
  const result = await runCli(["pub", "-t", "x", "-m", "y", "-z"]);
  assert.equal(result.code, 2);
  assert.equal(result.stderr, `Error: Unknown option '-z'\nRun "deno task client pub --help" for usage.\n`);
  const qos = await runCli(["sub", "-t", "x", "-q", "3"]);
  assert.equal(qos.code, 2);
  assert.match(qos.stderr, /^Error: -q must be a whole number from 0 to 2, not "3"\n/);
  const define = await runCli(["pub", "-t", "x", "-m", "y", "-D", "publish", "session-expiry-interval", "5"]);
  assert.equal(define.code, 2);
  assert.match(define.stderr, /^Error: -D: session-expiry-interval is not allowed in publish\n/);
  const unknown = await runCli(["frobnicate"]);
  assert.equal(unknown.code, 2);
  const none = await runCli([]);
  assert.equal(none.code, 2);
  assert.equal(none.stdout, "", "usage errors go to stderr");
  assert.match(none.stderr, /^Error: no command given\n/);
});

cliTest(
  "pub with a wildcard, empty or otherwise invalid topic exits 2 before connecting [MQTT-3.3.2-2 (5.0)] [MQTT-4.7.3-1 (5.0)]",
  async () => {
    // A closed port: were it to connect first, it would exit 1 with "connection refused".
    const port = String(freePort());
    for (const topic of ["a/#", "a/+/b", "#", ""]) {
      const result = await runCli(["pub", "-h", "127.0.0.1", "-p", port, "-t", topic, "-m", "y"]);
      assert.equal(result.code, 2, `${JSON.stringify(topic)}: ${result.stderr}`);
      assert.match(result.stderr, /^Error: Topic Name/);
    }
  },
);

cliTest("connection refused exits 1 with one line", async () => {
  const port = freePort();
  const result = await runCli(["pub", "-h", "127.0.0.1", "-p", String(port), "-t", "x", "-m", "y"]);
  assert.equal(result.code, 1);
  assert.equal(result.stderr, `Error: connection refused by 127.0.0.1:${port}\n`);
});

cliTest("a broker's refusal exits 1 naming the reason code (v5 and v3.1.1)", async () => {
  const server = new FakeServer();
  try {
    const refuse = async (reasonCode: number): Promise<void> => {
      const conn = await server.accept();
      await conn.expect(1);
      await conn.send({ type: 2, sessionPresent: false, reasonCode });
    };
    const v5 = runCli([
      "pub",
      "-h",
      "127.0.0.1",
      "-p",
      String(server.port),
      "-t",
      "x",
      "-m",
      "y",
      "-u",
      "me",
    ]);
    await refuse(0x87);
    const result5 = await v5;
    assert.equal(result5.code, 1);
    assert.equal(result5.stderr, "Error: Connection refused: NotAuthorized (0x87)\n");
    const v4 = runCli(["sub", "-h", "127.0.0.1", "-p", String(server.port), "-t", "x", "-V", "mqttv311"]);
    await refuse(5);
    const result4 = await v4;
    assert.equal(result4.code, 1);
    assert.equal(result4.stderr, "Error: Connection refused: not authorized (return code 5)\n");
  } finally {
    await server.close();
  }
});

cliTest("an unknown host exits 1 with one line", async () => {
  const result = await runCli(["sub", "-h", "nonexistent.invalid", "-t", "x"]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^Error: cannot resolve host "nonexistent\.invalid": [^\n]*\n$/);
});
