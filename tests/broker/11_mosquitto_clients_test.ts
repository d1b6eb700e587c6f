/**
 * Interop with Mosquitto's own command-line clients (`mosquitto_pub`, `mosquitto_sub`) for MQTT 3.1, 3.1.1 and
 * 5.0. Needs `--allow-run` and the `mosquitto-clients` package; otherwise the tests are registered as ignored
 * with a name that says what is missing.
 */

import assert from "node:assert/strict";
import type { Broker } from "../../lib/broker/broker.ts";
import { publishPacket, subscribe, waitFor, withBroker } from "./_wire.ts";

/** Why the tests cannot run here, or "" when they can. */
async function missing(): Promise<string> {
  if (Deno.permissions.querySync({ name: "run" }).state !== "granted") return "needs --allow-run";
  for (const tool of ["mosquitto_pub", "mosquitto_sub"]) {
    try {
      await new Deno.Command(tool, { args: ["--help"], stdout: "null", stderr: "null" }).output();
    } catch {
      return `needs ${tool} (apt-get install mosquitto-clients)`;
    }
  }
  return "";
}

const reason = await missing();
const SKIP = reason === "" ? "" : ` (ignored: ${reason})`;

const VERSIONS = [["mqttv31", 3], ["mqttv311", 4], ["mqttv5", 5]] as const;

/** Runs a tool to completion (bounded by its own -W timeout) and returns its stdout. */
async function run(tool: string, args: readonly string[]): Promise<string> {
  const output = await new Deno.Command(tool, { args: [...args], stdout: "piped", stderr: "piped" }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, `${tool} ${args.join(" ")} failed: ${stderr}`);
  return new TextDecoder().decode(output.stdout);
}

/** Starts mosquitto_sub and waits until the broker holds its subscription. */
async function startSub(
  broker: Broker,
  clientId: string,
  args: readonly string[],
): Promise<Deno.ChildProcess> {
  const child = new Deno.Command("mosquitto_sub", {
    args: ["-i", clientId, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    await waitFor(() => broker.router.subscriptionsOf(clientId).length > 0, `${clientId} to subscribe`);
  } catch (error) {
    child.kill("SIGKILL");
    await child.output();
    throw error;
  }
  return child;
}

for (const [flag, version] of VERSIONS) {
  Deno.test({
    name: `mosquitto_pub -q 1 reaches mosquitto_sub -q 1 over ${flag}${SKIP}`,
    ignore: reason !== "",
    fn: async () => {
      await withBroker({}, async ({ port, broker }) => {
        const sub = await startSub(broker, `sub-${flag}`, [
          ...[
            "-p",
            `${port}`,
            "-h",
            "127.0.0.1",
            "-V",
            flag,
            "-q",
            "1",
            "-t",
            "interop/+",
            "-v",
            "-C",
            "1",
            "-W",
            "5",
          ],
        ]);
        await run("mosquitto_pub", [
          ...[
            "-p",
            `${port}`,
            "-h",
            "127.0.0.1",
            "-V",
            flag,
            "-q",
            "1",
            "-t",
            "interop/x",
            "-m",
            `hello ${version}`,
          ],
        ]);
        const output = await sub.output();
        assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
        assert.equal(new TextDecoder().decode(output.stdout), `interop/x hello ${version}\n`);
      });
    },
  });
}

Deno.test({
  name: `mosquitto_sub gets a retained message published by mosquitto_pub -r -q 2${SKIP}`,
  ignore: reason !== "",
  fn: async () => {
    await withBroker({}, async ({ port }) => {
      const base = ["-p", `${port}`, "-h", "127.0.0.1", "-V", "mqttv5"];
      await run("mosquitto_pub", [...base, "-q", "2", "-r", "-t", "interop/retained", "-m", "kept"]);
      const out = await run("mosquitto_sub", [
        ...base,
        "-q",
        "2",
        "-t",
        "interop/#",
        "-v",
        "-C",
        "1",
        "-W",
        "5",
      ]);
      assert.equal(out, "interop/retained kept\n");
    });
  },
});

Deno.test({
  name: `a raw subscriber gets mosquitto_pub's QoS 2 message exactly once${SKIP}`,
  ignore: reason !== "",
  fn: async () => {
    await withBroker({}, async ({ port, connect }) => {
      const raw = await connect({ version: 4, clientId: "raw" });
      await subscribe(raw, 1, [["interop/q2", 0]]);
      await run("mosquitto_pub", [
        ...[
          "-p",
          `${port}`,
          "-h",
          "127.0.0.1",
          "-V",
          "mqttv311",
          "-q",
          "2",
          "-t",
          "interop/q2",
          "-m",
          "once",
        ],
      ]);
      await raw.expect(publishPacket(4, { topic: "interop/q2", payload: "once" }));
      await raw.barrier("exactly once");
      await raw.disconnect();
    });
  },
});

Deno.test({
  name: `mosquitto_sub's will is published when it is killed${SKIP}`,
  ignore: reason !== "",
  fn: async () => {
    await withBroker({}, async ({ port, broker, connect }) => {
      const raw = await connect({ version: 5, clientId: "watcher" });
      await subscribe(raw, 1, [["interop/will", 0]]);
      const sub = await startSub(broker, "doomed", [
        ...["-p", `${port}`, "-h", "127.0.0.1", "-V", "mqttv5", "-t", "interop/other", "-W", "5"],
        ...["--will-topic", "interop/will", "--will-payload", "bye"],
      ]);
      sub.kill("SIGKILL");
      await sub.output();
      await raw.expect(
        publishPacket(5, { topic: "interop/will", payload: "bye" }),
        "will of the killed client",
      );
      await raw.disconnect();
    });
  },
});

Deno.test({
  name: `mosquitto_sub -c keeps its session: QoS 1 messages sent while away arrive on return${SKIP}`,
  ignore: reason !== "",
  fn: async () => {
    await withBroker({}, async ({ port, broker, connect }) => {
      const base = ["-p", `${port}`, "-h", "127.0.0.1", "-V", "mqttv311", "-i", "durable", "-c", "-q", "1"];
      // Subscribe, then leave as soon as the SUBACK came (-E).
      await run("mosquitto_sub", [...base, "-t", "interop/away", "-E"]);
      await waitFor(() => broker.session("durable")?.link === undefined, "mosquitto_sub to leave");
      const pub = await connect({ version: 4, clientId: "pub" });
      await pub.send(publishPacket(4, { topic: "interop/away", payload: "queued", qos: 1, id: 1 }));
      await pub.expect(Uint8Array.of(0x40, 2, 0, 1));
      const out = await run("mosquitto_sub", [...base, "-t", "interop/away", "-v", "-C", "1", "-W", "5"]);
      assert.equal(out, "interop/away queued\n");
      await pub.disconnect();
    });
  },
});
