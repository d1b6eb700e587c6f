/**
 * `sub` flags a mosquitto_sub user reaches for: -E, -U, --remove-retained, --pretty, the v5 -F codes and %j with
 * mosquitto_sub's keys (compared with mosquitto_sub itself where it is installed), and an unknown -F code as a
 * usage error. Real subprocesses against our broker. Needs --allow-run (for `deno`, and `mosquitto_sub`).
 */

import assert from "node:assert/strict";
import { MqttClient } from "../../lib/client/client.ts";
import { CliProcess, cliTest, runCli, toolUnavailable, withOurBroker } from "./_cli.ts";

function subTest(name: string, fn: () => Promise<void>, reason?: string): void {
  cliTest(`sub ${name}`, fn, reason);
}

/** Publishes with the library (retained or with v5 properties), then disconnects. */
async function publish(
  port: number,
  messages: readonly {
    topic: string;
    payload: string;
    retain?: boolean;
    properties?: Record<string, unknown>;
  }[],
): Promise<void> {
  const client = new MqttClient({ hostname: "127.0.0.1", port, reconnect: false });
  await client.connect();
  for (const { topic, payload, retain, properties } of messages) {
    await client.publish(topic, payload, {
      qos: 1,
      retain: retain === true,
      ...(properties ? { properties } : {}),
    });
  }
  await client.close();
}

subTest("-E exits once the subscription is acknowledged, without printing retained messages", async () => {
  await withOurBroker(async (port, at) => {
    await publish(port, [{ topic: "e/1", payload: "kept", retain: true }]);
    const result = await runCli(["sub", ...at, "-t", "e/#", "-E", "-d"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /<- SUBACK id=1 \[GrantedQoS0\]\n(.*\n)*-> DISCONNECT/);
  });
});

subTest("-U unsubscribes a persistent session's filter; alone it exits after the UNSUBACK", async () => {
  await withOurBroker(async (_port, at) => {
    const session = ["-c", "-i", "cli-u", "-q", "1"];
    const subscribe = await runCli(["sub", ...at, ...session, "-t", "u/a", "-E"]);
    assert.equal(subscribe.code, 0, subscribe.stderr);
    const first = await runCli(["sub", ...at, ...session, "-U", "u/a", "-d"]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /-> UNSUBSCRIBE id=1 u\/a\n<- UNSUBACK id=1 \[Success \(0x00\)\]/);
    const again = await runCli(["sub", ...at, ...session, "-U", "u/a", "-d"]);
    assert.match(again.stderr, /<- UNSUBACK id=1 \[NoSubscriptionExisted \(0x11\)\]/); // it is gone
  });
});

subTest("--remove-retained prints the retained messages and clears them", async () => {
  await withOurBroker(async (port, at) => {
    await publish(port, [
      { topic: "r/1", payload: "one", retain: true },
      { topic: "r/2", payload: "two", retain: true },
    ]);
    const remove = await runCli(["sub", ...at, "-t", "r/#", "--remove-retained", "-R", "-v", "-W", "2"]);
    assert.equal(remove.code, 27, remove.stderr); // -R prints no stale message; it waited for -W
    const cleared = await runCli(["sub", ...at, "-t", "r/#", "--retained-only", "-W", "1"]);
    assert.equal(cleared.stdout, "", "no retained message left");
    await publish(port, [{ topic: "r/3", payload: "three", retain: true }]);
    const printed = await runCli(["sub", ...at, "-t", "r/#", "--remove-retained", "-v", "-C", "1"]);
    assert.equal(printed.stdout, "r/3 three\n");
    const after = await runCli(["sub", ...at, "-t", "r/#", "--retained-only", "-W", "1"]);
    assert.equal(after.stdout, "");
  });
});

subTest("-F with the v5 codes and --pretty %J; an unknown code exits 2 before connecting", async () => {
  await withOurBroker(async (port, at) => {
    const sub = new CliProcess([
      "sub",
      ...at,
      "-t",
      "f",
      "-C",
      "2",
      "-d",
      "-F",
      "%P|%R|%C|%D|%E|%F|%S|%J",
      "--pretty",
    ]);
    await sub.waitForStderr("<- SUBACK");
    await publish(port, [
      { topic: "f", payload: "not json" },
      {
        topic: "f",
        payload: '{"t":21.5}',
        properties: {
          userProperties: [["k", "v"]],
          responseTopic: "rt",
          contentType: "application/json",
          correlationData: new TextEncoder().encode("c1"),
          messageExpiryInterval: 60,
          payloadFormatIndicator: 1,
        },
      },
    ]);
    const result = await sub.result();
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /Error: Message payload is not valid JSON on topic f\.\n/);
    const first = result.stdout; // the message that is not JSON counts for -C but prints nothing
    assert.match(
      first,
      /^k:v\|rt\|application\/json\|c1\|6\d\|1\|\|\{\n {2}"tst": "[^"]+",\n {2}"topic": "f",\n/,
    );
    assert.match(first, /\n {4}"user-properties": \{\n {6}"k": "v"\n {4}\}/);
    assert.match(first, /\n {2}"payload": \{\n {4}"t": 21\.5\n {2}\}\n\}\n$/);
    const bad = await runCli(["sub", "-h", "127.0.0.1", "-p", "1", "-t", "f", "-F", "%t %y"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^Error: -F: unknown format code %y /);
    assert.equal(bad.stdout, "");
  });
});

subTest("--json --pretty indents the JSON", async () => {
  await withOurBroker(async (port, at) => {
    await publish(port, [{ topic: "p", payload: "x", retain: true }]);
    const result = await runCli(["sub", ...at, "-t", "p", "-C", "1", "--json", "--pretty"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^\{\n {2}"time": "[^"]+",\n {2}"topic": "p",\n {2}"payload": "x",\n/);
  });
});

subTest("-F %j gives the same JSON as mosquitto_sub for the same message (but for the time)", async () => {
  await withOurBroker(async (port, at) => {
    const format = ["-F", "%j", "-C", "1", "-q", "1", "-t", "j/#"];
    const theirs = new Deno.Command("mosquitto_sub", {
      args: [...at, "-V", "5", ...format],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const ours = new CliProcess(["sub", ...at, "-d", ...format]);
    await ours.waitForStderr("<- SUBACK");
    await new Promise((resolve) => setTimeout(resolve, 500)); // mosquitto_sub prints nothing we can wait for
    await publish(port, [{
      topic: "j/1",
      payload: 'say "hi"',
      properties: {
        userProperties: [["k", "v"], ["a", "b"]],
        contentType: "ct",
        responseTopic: "rt",
        correlationData: new TextEncoder().encode("cd"),
        payloadFormatIndicator: 1,
      },
    }]);
    const [theirOutput, ourResult] = await Promise.all([theirs.output(), ours.result()]);
    const withoutTime = (line: string): string => line.replace(/"tst":"[^"]*"/, '"tst":""');
    assert.equal(withoutTime(ourResult.stdout), withoutTime(new TextDecoder().decode(theirOutput.stdout)));
  });
}, toolUnavailable("mosquitto_sub", ["--help"], "mosquitto-clients"));

subTest("-F @ time codes print as mosquitto_sub's strftime does, in the local time zone", async () => {
  await withOurBroker(async (port, at) => {
    await publish(port, [{ topic: "t", payload: "x", retain: true }]);
    // Codes that cannot change within the test (unless it runs across midnight in New York).
    const format = "@F|@a|@A|@b|@B|@j|@e|@D|@z|@y|@Y|@m|@d|@@|%t";
    const env = { TZ: "America/New_York" };
    const theirs = await new Deno.Command("mosquitto_sub", {
      args: [...at, "-t", "t", "-C", "1", "-F", format],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const ours = await runCli(["sub", ...at, "-t", "t", "-C", "1", "-F", format], { env });
    assert.equal(ours.code, 0, ours.stderr);
    assert.equal(ours.stdout, new TextDecoder().decode(theirs.stdout));
    assert.match(ours.stdout, /^\d{4}-\d\d-\d\d\|\w{3}\|\w+day\|.*\|-0[45]00\|.*\|@\|t\n$/);
    const bad = await runCli(["sub", "-p", "1", "-t", "t", "-F", "@Q %t"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^Error: -F: unknown time code @Q/);
  });
}, toolUnavailable("mosquitto_sub", ["--help"], "mosquitto-clients"));
