/**
 * `deno task client rr` (as mosquitto_rr) as a real subprocess against our broker: the request carries a Response
 * Topic and Correlation Data, the response with the same Correlation Data is printed, `-W` times out with exit
 * code 27. Needs --allow-run (for `deno`); without it the tests are registered as ignored.
 */

import assert from "node:assert/strict";
import { MqttClient } from "../../lib/client/client.ts";
import { cliTest, runCli, withOurBroker } from "./_cli.ts";

function rrTest(name: string, fn: () => Promise<void>, reason?: string): void {
  cliTest(`rr ${name}`, fn, reason);
}

/** A responder on `topic`: answers each request on its Response Topic, first a decoy, then the real answer. */
async function responder(port: number, topic: string): Promise<{ client: MqttClient; requests: string[] }> {
  const client = new MqttClient({ hostname: "127.0.0.1", port, reconnect: false });
  await client.connect();
  const requests: string[] = [];
  const messages = client.messages(topic);
  await client.subscribe(topic, { qos: 1 });
  (async () => {
    for await (const request of messages) {
      const responseTopic = request.properties?.responseTopic;
      const correlationData = request.properties?.correlationData;
      requests.push(
        `${new TextDecoder().decode(request.payload)} ${responseTopic} ${correlationData?.length}`,
      );
      if (responseTopic === undefined || correlationData === undefined) continue;
      await client.publish(responseTopic, "not yours", {
        properties: { correlationData: new TextEncoder().encode("someone else") },
      });
      await client.publish(responseTopic, `answer to ${new TextDecoder().decode(request.payload)}`, {
        properties: { correlationData },
      });
    }
  })().catch(() => {});
  return { client, requests };
}

rrTest(
  "publishes the request with Response Topic and Correlation Data and prints the matching response",
  async () => {
    await withOurBroker(async (port, at) => {
      const { client, requests } = await responder(port, "service/time");
      try {
        const result = await runCli([
          "rr",
          ...at,
          "-t",
          "service/time",
          "-e",
          "replies/me",
          "-m",
          "now?",
          "-q",
          "1",
          "-W",
          "10",
          "-d",
        ]);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout, "answer to now?\n");
        assert.deepEqual(requests, ["now? replies/me 16"]); // 16 random hex digits by default
        // The subscription comes before the request, so a quick response cannot be missed.
        assert.ok(
          result.stderr.indexOf("<- SUBACK") < result.stderr.indexOf("-> PUBLISH service/time"),
          result.stderr,
        );
        assert.match(
          result.stderr,
          /-> PUBLISH service\/time qos=1 .* responseTopic="replies\/me" correlationData="[0-9a-f]{16}"/,
        );
      } finally {
        await client.close();
      }
    });
  },
);

rrTest("-D publish correlation-data: the given Correlation Data is sent and matched", async () => {
  await withOurBroker(async (port, at) => {
    const { client } = await responder(port, "svc");
    try {
      const result = await runCli([
        "rr",
        ...at,
        "-t",
        "svc",
        "-e",
        "back",
        "-m",
        "x",
        "-D",
        "publish",
        "correlation-data",
        "mine-42",
        "-W",
        "10",
        "-F",
        "%t %p %D",
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "back answer to x mine-42\n");
    } finally {
      await client.close();
    }
  });
});

rrTest('-W: no response in time exits 27 with "Timed out", as mosquitto_rr', async () => {
  await withOurBroker(async (_port, at) => {
    const result = await runCli([
      "rr",
      ...at,
      "-t",
      "nobody",
      "-e",
      "r",
      "-m",
      "?",
      "-W",
      "1",
    ]);
    assert.equal(result.code, 27);
    assert.equal(result.stderr, "Timed out\n");
    assert.equal(result.stdout, "");
  });
});

rrTest(
  "refuses MQTT 3.1.1, a missing -e and a wildcard response topic before connecting (exit 2)",
  async () => {
    const cases: [string[], RegExp][] = [
      [["-t", "a", "-e", "b", "-m", "x", "-V", "311"], /^Error: rr needs MQTT 5 \(-V 5\)/],
      [["-t", "a", "-m", "x"], /^Error: -e RESP_TOPIC is required/],
      [["-t", "a", "-e", "b/#", "-m", "x"], /^Error: -e: Topic Name "b\/#" contains the wildcard "#"/],
      [["-t", "a", "-e", "b"], /^Error: give the request's payload with one of -m, -f, -n, -s/],
    ];
    for (const [args, message] of cases) {
      // Port 1 on loopback: nothing listens, so connecting first would exit 1 instead.
      const result = await runCli(["rr", "-h", "127.0.0.1", "-p", "1", ...args]);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
  },
);
