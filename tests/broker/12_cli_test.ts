/**
 * The `broker.ts` entry point as a user runs it: `--help`, bad flags (exit 2 with a message), `-p 0` printing
 * the chosen port, serving MQTT there, and a clean exit 0 on SIGTERM / SIGINT (v5 clients told 0x8B). Needs
 * `--allow-run` to start `deno`; otherwise ignored with a name that says so.
 */

import assert from "node:assert/strict";
import { CONNACK_OK_V4, connectPacket, WireClient } from "./_wire.ts";

const permitted = Deno.permissions.querySync({ name: "run" }).state === "granted";
const SKIP = permitted ? "" : " (ignored: needs --allow-run to start deno)";
const BROKER = new URL("../../broker.ts", import.meta.url).pathname;
/** Only the network: `--persistence memory` keeps the broker off the disk. */
const DENO_ARGS = ["run", "--allow-net", BROKER];

const decoder = new TextDecoder();

/** Runs broker.ts to completion with `args`. */
async function runBroker(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [...DENO_ARGS, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

/** A running broker process and the port it printed. */
interface Running {
  readonly child: Deno.ChildProcess;
  readonly port: number;
  /** Everything printed on stdout once the process ended. */
  readonly rest: Promise<string>;
}

/** Starts broker.ts with `-p 0` and waits for "mqtt broker listening on ...:PORT". */
async function startBroker(extra: readonly string[] = []): Promise<Running> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...DENO_ARGS, "-p", "0", "--persistence", "memory", "--log-level", "error", ...extra],
    stdout: "piped",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  const deadline = setTimeout(() => child.kill("SIGKILL"), 15_000);
  try {
    for (;;) {
      const match = /mqtt broker listening on (?:tcp:\/\/)?127\.0\.0\.1:(\d+)/.exec(text);
      if (match !== null) {
        const rest = (async () => {
          let tail = "";
          for (let r = await reader.read(); !r.done; r = await reader.read()) tail += decoder.decode(r.value);
          return tail;
        })();
        return { child, port: Number(match[1]), rest };
      }
      const { value, done } = await reader.read();
      if (done) throw new Error(`broker.ts ended before printing its port: ${JSON.stringify(text)}`);
      text += decoder.decode(value);
    }
  } catch (error) {
    child.kill("SIGKILL");
    await child.status;
    throw error;
  } finally {
    clearTimeout(deadline);
  }
}

/** Opens a raw client to the broker process. */
async function openClient(port: number, version: 4 | 5): Promise<WireClient> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  return new WireClient(conn, version);
}

Deno.test({
  name: `broker.ts --help prints the usage and exits 0${SKIP}`,
  ignore: !permitted,
  fn: async () => {
    const { code, stdout } = await runBroker(["--help"]);
    assert.equal(code, 0);
    assert.match(stdout, /^Usage: /);
    for (const flag of ["--port", "--host", "--max-keepalive", "--sys-interval", "--help"]) {
      assert.ok(stdout.includes(flag), `usage mentions ${flag}`);
    }
  },
});

for (
  const [args, message] of [
    [["--bogus"], /--bogus/],
    [["-p", "abc"], /--port must be an integer/],
    [["-p", "70000"], /--port must be an integer from 0 to 65535/],
    [["--log-level", "loud"], /--log-level must be one of/],
    [["stray-positional"], /stray-positional|positional/i],
  ] as const
) {
  Deno.test({
    name: `broker.ts ${args.join(" ")} exits 2 with a message${SKIP}`,
    ignore: !permitted,
    fn: async () => {
      const { code, stdout, stderr } = await runBroker(args);
      assert.equal(code, 2, `exit code (stderr: ${stderr})`);
      assert.match(stderr, /^broker: /);
      assert.match(stderr, message);
      assert.match(stderr, /--help/, "points to --help");
      assert.equal(stdout, "", "nothing on stdout");
    },
  });
}

Deno.test({
  name: `broker.ts -p 0 prints its port, serves MQTT there and exits 0 on SIGTERM${SKIP}`,
  ignore: !permitted,
  fn: async () => {
    const running = await startBroker();
    const v4 = await openClient(running.port, 4);
    const v5 = await openClient(running.port, 5);
    try {
      await v4.send(connectPacket({ version: 4, clientId: "cli4" }));
      await v4.expect(CONNACK_OK_V4);
      await v5.send(connectPacket({ version: 5, clientId: "cli5" }));
      assert.equal((await v5.expectPacket(2)).reasonCode, 0);
      running.child.kill("SIGTERM");
      // Shutting down: v5 clients are told 0x8B Server shutting down, v3 ones are closed.
      await v5.expectDisconnect(0x8b, "DISCONNECT Server shutting down");
      await v4.expectClosed();
      const status = await running.child.status;
      assert.equal(status.code, 0, "exit 0 after SIGTERM");
      await running.rest;
    } finally {
      await v4.close();
      await v5.close();
      try {
        running.child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await running.child.status;
    }
  },
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test({
    name: `broker.ts exits 0 on ${signal} sent right after its "listening" line${SKIP}`,
    ignore: !permitted,
    fn: async () => {
      // A supervisor may signal as soon as the broker says it is ready: the handlers must be armed by then.
      for (let i = 0; i < 3; i++) {
        const running = await startBroker();
        running.child.kill(signal);
        const status = await running.child.status;
        assert.equal(status.code, 0, `run ${i}: exit 0, not killed by ${signal}`);
        await running.rest;
      }
    },
  });
}

Deno.test({
  name: `broker.ts --max-keepalive 30: a v5 client asking for 600 s gets Server Keep Alive 30${SKIP}`,
  ignore: !permitted,
  fn: async () => {
    const running = await startBroker(["--max-keepalive", "30"]);
    const client = await openClient(running.port, 5);
    try {
      await client.send(connectPacket({ version: 5, clientId: "ka", keepAlive: 600 }));
      const connack = await client.expectPacket(2);
      assert.equal(connack.properties?.serverKeepAlive, 30);
    } finally {
      await client.close();
      running.child.kill("SIGTERM");
      await running.child.status;
      await running.rest;
    }
  },
});
