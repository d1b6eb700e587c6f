/**
 * `deno task client shell` through a pipe and, where tmux is installed, on a real terminal. Needs --allow-run
 * (for `deno`, and `tmux` for the terminal case); without it the tests are registered as ignored.
 */

import assert from "node:assert/strict";
import { MqttClient } from "../../lib/client/client.ts";
import { cliArgs, cliTest, runCli, toolUnavailable, withOurBroker } from "./_cli.ts";

function shellTest(name: string, fn: () => Promise<void>, reason?: string): void {
  cliTest(`shell ${name}`, fn, reason);
}

shellTest("from a pipe: subscribes, publishes, prints the message, exits 0", async () => {
  await withOurBroker(async (port) => {
    const result = await runCli(["shell", "-h", "127.0.0.1", "-p", String(port)], "sub a/#\npub a/b hi\n");
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split("\n");
    assert.match(lines[0]!, /^<- CONNACK sessionPresent=0 Success \(0x00\)/);
    assert.match(lines[1]!, /^connected to 127\.0\.0\.1:\d+ as deno-[0-9a-f]+ \(MQTT 5\.0\)$/);
    assert.equal(lines[2], "<- SUBACK id=1 [GrantedQoS0]");
    assert.equal(lines[3], '<- PUBLISH a/b qos=0 retain=0 "hi" (2 bytes)');
    assert.equal(lines.length, 4);
  });
});

shellTest("from a pipe: each command waits for its acknowledgement before the next", async () => {
  await withOurBroker(async (port) => {
    const script = [
      "sub -q 2 q/#",
      'pub -q 1 q/one "two  spaces"',
      "pub -q 2 -r q/two x",
      "status",
      "unsub q/#",
      "ping",
      "disconnect",
      "pub q/after x",
    ].join("\n");
    const result = await runCli(["shell", "-h", "127.0.0.1", "-p", String(port), "--trace"], script);
    const out = result.stdout;
    const order = [
      "-> SUBSCRIBE id=1 q/#(qos=2)",
      "<- SUBACK id=1 [GrantedQoS2]",
      "-> PUBLISH q/one qos=1",
      "<- PUBACK id=2",
      "-> PUBLISH q/two qos=2",
      "<- PUBCOMP id=3",
      "state: connected",
      "outgoing: 0 in flight, 0 queued",
      "<- UNSUBACK id=4 [Success (0x00)]",
      "ping: ",
      "-> DISCONNECT Success (0x00)",
      "disconnected",
      'error: not connected (use "connect")',
    ];
    let from = 0;
    for (const text of order) {
      const at = out.indexOf(text, from);
      assert.ok(at >= 0, `missing or out of order: ${text}\n${out}`);
      from = at + text.length;
    }
    assert.match(out, /<- PUBLISH q\/one qos=1 id=\d+ retain=0 "two {2}spaces" \(11 bytes\)/);
    assert.equal(result.code, 1); // the last command failed
  });
});

shellTest("from a pipe: bad commands print a clear error and the shell goes on", async () => {
  await withOurBroker(async (port) => {
    const script = 'frob\nsub\npub -q 7 t x\npub t "open\nconnect\nhelp\nquit\nping\n';
    const result = await runCli(["shell", "-h", "127.0.0.1", "-p", String(port)], script);
    const errors = result.stdout.split("\n").filter((line) => line.startsWith("error: "));
    assert.deepEqual(errors, [
      'error: unknown command "frob" (type help)',
      "error: usage: sub [-q Q] [--nl] [--rap] [--rh 0|1|2] [--sid N] FILTER...",
      'error: -q must be a whole number from 0 to 2, not "7"',
      'error: unterminated " quote',
      'error: already connected ("disconnect" first)',
    ]);
    assert.match(result.stdout, /ping {2,}send PINGREQ/);
    assert.doesNotMatch(result.stdout, /PINGRESP/); // nothing after quit
    assert.equal(result.code, 1);
  });
});

shellTest("a connect to a port where nothing listens names the address that refused", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  const result = await runCli(["shell", "-h", "127.0.0.1", "-p", String(port)], "status\n");
  assert.equal(result.code, 1);
  assert.equal(result.stdout, `error: connection refused by 127.0.0.1:${port}\nstate: not connected\n`);
});

interface Terminal {
  /** The visible screen, one string. */
  screen(): Promise<string>;
  /** Waits until the screen shows `text` (or `test` accepts it) and returns the screen. */
  waitScreen(text: string | ((screen: string) => boolean)): Promise<string>;
  /** tmux send-keys to the shell's pane. */
  keys(...keys: string[]): Promise<void>;
}

/**
 * Runs the shell on a tmux terminal of `width` columns against `port`; the screen is read with rows that wrapped
 * joined into one line.
 */
async function withTerminal(
  port: number,
  width: number,
  fn: (terminal: Terminal) => Promise<void>,
): Promise<void> {
  const socket = `deno-mqtt-test-${Deno.pid}-${width}`;
  const tmux = (...args: string[]): Promise<Deno.CommandOutput> =>
    new Deno.Command("tmux", { args: ["-L", socket, ...args], stdout: "piped", stderr: "piped" }).output();
  const screen = async (): Promise<string> =>
    new TextDecoder().decode((await tmux("capture-pane", "-p", "-J", "-t", "sh")).stdout);
  const waitScreen = async (want: string | ((screen: string) => boolean)): Promise<string> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const shown = await screen();
      if (typeof want === "string" ? shown.includes(want) : want(shown)) return shown;
      if (Date.now() > deadline) {
        throw new Error(
          `the screen never showed ${typeof want === "string" ? JSON.stringify(want) : want}:\n${shown}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const command = [Deno.execPath(), ...cliArgs(["shell", "-h", "127.0.0.1", "-p", String(port)])]
    .map((word) => `'${word}'`).join(" ");
  const root = new URL("../../", import.meta.url).pathname;
  try {
    const started = await tmux(
      "new-session",
      "-d",
      "-s",
      "sh",
      "-x",
      String(width),
      "-y",
      "30",
      "-c",
      root,
      `${command}; sleep 30`,
    );
    assert.equal(started.code, 0, new TextDecoder().decode(started.stderr));
    await waitScreen("mqtt>");
    await fn({
      screen,
      waitScreen,
      keys: async (...keys) => {
        await tmux("send-keys", "-t", "sh", ...keys);
      },
    });
  } finally {
    await tmux("kill-server");
  }
}

shellTest(
  "on a terminal (tmux): packets print above the prompt without garbling the typed line",
  async () => {
    await withOurBroker(async (port) => {
      const outside = new MqttClient({ hostname: "127.0.0.1", port, reconnect: false });
      try {
        await withTerminal(port, 120, async ({ screen, waitScreen, keys }) => {
          await keys("sub t/#", "Enter");
          await waitScreen("<- SUBACK id=1 [GrantedQoS0]");
          await keys("pub t/mine typ");
          await waitScreen("mqtt> pub t/mine typ");
          await outside.connect();
          await outside.publish("t/other", "from outside");
          await waitScreen('<- PUBLISH t/other qos=0 retain=0 "from outside"');
          // The line and the redrawn prompt are separate writes: wait for the redraw, then check the order.
          let shown = await screen();
          for (const deadline = Date.now() + 10_000; !shown.trimEnd().endsWith("mqtt> pub t/mine typ");) {
            if (Date.now() > deadline) throw new Error(`the prompt was never redrawn:\n${shown}`);
            await new Promise((resolve) => setTimeout(resolve, 50));
            shown = await screen();
          }
          const lines = shown.trimEnd().split("\n");
          assert.match(lines.at(-2)!, /<- PUBLISH t\/other/, shown);
          assert.equal(lines.at(-1), "mqtt> pub t/mine typ"); // the half-typed line survived, redrawn below
          await keys("ed", "Enter");
          await waitScreen('<- PUBLISH t/mine qos=0 retain=0 "typed"');
          await keys("Up");
          await waitScreen("mqtt> pub t/mine typed"); // history
          await keys("C-u", "quit", "Enter");
          await waitScreen("mqtt> quit");
        });
      } finally {
        await outside.close();
      }
    });
  },
  toolUnavailable("tmux", ["-V"], "tmux"),
);

shellTest(
  "on a terminal (tmux): a typed line wider than the terminal does not hide incoming packets",
  async () => {
    await withOurBroker(async (port) => {
      const outside = new MqttClient({ hostname: "127.0.0.1", port, reconnect: false });
      const width = 40;
      // "mqtt> " and 94 more characters: three rows of 40 columns, the cursor on the third.
      const typed = `pub t/long ${"x".repeat(83)}`;
      const endsWithPrompt = (shown: string): boolean => shown.trimEnd().endsWith(`\nmqtt> ${typed}`);
      try {
        await withTerminal(port, width, async ({ waitScreen, keys }) => {
          await keys("sub t/#", "Enter");
          await waitScreen("<- SUBACK id=1 [GrantedQoS0]");
          await keys(typed);
          await waitScreen(endsWithPrompt);
          await outside.connect();
          for (const n of [1, 2, 3]) {
            // The third time the cursor is back on the first row of the typed line.
            if (n === 3) { for (let i = 0; i < 70; i++) await keys("Left"); }
            await outside.publish("t/other", `outside ${n}`);
            const shown = await waitScreen((screen) =>
              screen.includes(`"outside ${n}"`) && endsWithPrompt(screen)
            );
            const lines = shown.trimEnd().split("\n");
            // The message sits right above the prompt, and the typed line shows once, whole.
            assert.match(lines.at(-2)!, new RegExp(`"outside ${n}"`), shown);
            assert.equal(shown.split("mqtt> pub t/long").length, 2, `one copy of the prompt:\n${shown}`);
          }
          await keys("y", "Enter"); // typed where the cursor was: 30 characters into the prompt
          await waitScreen(
            `<- PUBLISH t/long qos=0 retain=0 "${"x".repeat(13)}y${"x".repeat(66)}…" (84 bytes)`,
          );
          await keys("quit", "Enter");
        });
      } finally {
        await outside.close();
      }
    });
  },
  toolUnavailable("tmux", ["-V"], "tmux"),
);
