/**
 * The README's commands run as written, so the README cannot drift from the product again (issue 16). Every
 * ```sh block and every `$ ` line of a ```console block is run, unless the line before the block says why not:
 * `<!-- not run: needs a public host -->`. The ACL and config snippets are parsed.
 *
 * How a command runs: in a fresh temporary directory (the caller's directory, `INIT_CWD`), through bash, where
 * `deno task …` is `deno task --config REPO/deno.json …` (the task line as shipped, from outside the
 * repository). The broker gets `-p 0` (and `--persistence memory` unless the command names one), runs until it
 * prints its listening line and is then stopped with SIGTERM. Client commands get `-p PORT` of a broker this
 * test runs, holding the retained messages the README's comments show (`sensors/1` = `21.5`, `a/b` = `hi`); a
 * `sub` that does not end by itself runs for a few seconds and is then stopped. Every other command must exit 0
 * within its time limit.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { AclFile } from "../lib/broker/auth/acl_file.ts";
import { Broker } from "../lib/broker/broker.ts";
import { parseConfig } from "../lib/broker/server/config.ts";
import { MqttClient } from "../lib/client/client.ts";

const ROOT = new URL("../", import.meta.url).pathname;
/** Why the README cannot even be read here, or undefined. */
const noRead = Deno.permissions.querySync({ name: "read", path: ROOT }).state === "granted"
  ? undefined
  : "needs --allow-read";
const README = noRead === undefined ? await Deno.readTextFile(join(ROOT, "README.md")) : "";
/** One command's time limit; a `sub` that would run on is stopped after SETTLE_MS. */
const COMMAND_MS = 60_000;
const SETTLE_MS = 3_000;

/** A fenced block of the README. */
interface Block {
  readonly lang: string;
  readonly text: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  /** The reason of a `<!-- not run: … -->` just before it. */
  readonly notRun: string | undefined;
}

function blocks(markdown: string): Block[] {
  const lines = markdown.split("\n");
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (open === null) continue;
    let end = i + 1;
    while (end < lines.length && lines[end] !== "```") end++;
    let before = i - 1;
    while (before >= 0 && lines[before]!.trim() === "") before--;
    const marker = /^<!-- not run: (.+) -->$/.exec(lines[before] ?? "");
    out.push({ lang: open[1]!, text: lines.slice(i + 1, end).join("\n"), line: i + 1, notRun: marker?.[1] });
    i = end;
  }
  return out;
}

/**
 * The commands of a sh block: continuation lines joined, blank and comment lines dropped, trailing comments
 * (a word starting with "#") cut, so that arguments added here are not commented out.
 */
function commands(text: string): string[] {
  return text.replaceAll("\\\n", " ").split("\n").map((l) => l.replace(/\s+#(\s.*)?$/, "").trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

const granted = (name: "run" | "read" | "write" | "net" | "env"): boolean =>
  Deno.permissions.querySync({ name }).state === "granted";
const unavailable = ["run", "read", "write", "net", "env"].filter((n) => !granted(n as "run")).map((n) =>
  `--allow-${n}`
);
const skipped = unavailable.length > 0 ? `needs ${unavailable.join(" ")}` : undefined;

/**
 * `deno task …` as the README shows it, run from outside the repository. `INIT_CWD` is unset first: a `deno
 * task` started inside another (`deno task test`) keeps the outer one's.
 */
const SHIM = `unset INIT_CWD; deno() { if [ "$1" = task ]; then shift; command deno task --config '${
  join(ROOT, "deno.json")
}' "$@"; else command deno "$@"; fi; }`;

/** What a command is, for how it is run. */
type Kind = "broker" | "client-long" | "plain";

function prepare(command: string, port: number): { kind: Kind; line: string } {
  const task = /\bdeno task (?:-q )?(broker|client)\b(.*)$/.exec(command);
  if (task === null) return { kind: "plain", line: command };
  const [, name, args = ""] = task;
  if (name === "broker") {
    if (/(^|\s)(--version|--help|-h)(\s|$)/.test(args)) return { kind: "plain", line: command };
    const memory = /--persistence/.test(args) ? "" : " --persistence memory";
    return { kind: "broker", line: `${command} -p 0${memory} --sys-interval 0` };
  }
  const sub = /^\s*(pub|sub|shell|rr)\b/.exec(args);
  const own = /(^|\s)(-p|--port|-L|--url)\s/.test(args);
  const line = sub === null || own
    ? command
    : command.replace(/(\bclient (?:-q )?(?:pub|sub|shell|rr))\b/, `$1 -p ${port}`);
  const long = sub?.[1] === "sub" && !/(^|\s)(-C|-E|--retained-only)(\s|$)/.test(args);
  return { kind: long ? "client-long" : "plain", line };
}

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs one command line with bash in `dir`, in its own process group. */
async function run(line: string, dir: string, kind: Kind, stdin = ""): Promise<Ran> {
  const child = new Deno.Command("setsid", {
    args: ["bash", "-c", `${SHIM}\n${line}`],
    cwd: dir,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(stdin));
  await writer.close();
  let stdout = "";
  let stderr = "";
  const pump = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) add(text);
  };
  const pumps = Promise.all([pump(child.stdout, (s) => stdout += s), pump(child.stderr, (s) => stderr += s)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const started = Date.now();
  const stop = () => {
    try {
      Deno.kill(-child.pid, "SIGTERM");
    } catch {
      // already gone
    }
  };
  const killer = setTimeout(() => {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }, COMMAND_MS);
  try {
    if (kind !== "plain") {
      while (!exited) {
        const ready = kind === "broker"
          ? /^mqtt broker listening on /m.test(stdout)
          : Date.now() - started > SETTLE_MS;
        if (ready) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      if (!exited) {
        stop();
        await Promise.all([status, pumps]);
        return { code: 0, stdout, stderr };
      }
    }
    const { code } = await status;
    await pumps;
    return { code: kind === "plain" ? code : code || -1, stdout, stderr };
  } finally {
    clearTimeout(killer);
  }
}

/** A broker for the client commands, holding the retained messages the README's comments show. */
async function withFixtureBroker(fn: (port: number) => Promise<void>): Promise<void> {
  const broker = new Broker({ sysInterval: 0 });
  const { port } = await broker.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const client = new MqttClient({ hostname: "127.0.0.1", port, reconnect: false });
    await client.connect();
    await client.publish("sensors/1", "21.5", { retain: true, qos: 1 });
    await client.publish("a/b", "hi", { retain: true, qos: 1 });
    await client.close();
    await fn(port);
  } finally {
    await broker.close();
  }
}

async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mqtt_readme_test_" });
  try {
    await Deno.writeTextFile(join(dir, "app.log"), "first line\nsecond line\n");
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const ALL = blocks(README);

/** A test that needs only to read the README. */
function readmeTest(name: string, fn: () => void): void {
  Deno.test({
    name: noRead === undefined ? name : `${name} (skipped: ${noRead})`,
    ignore: noRead !== undefined,
    fn,
  });
}

readmeTest("README: every sh and console block runs or says why not, with a reason", () => {
  const shell = ALL.filter((b) => b.lang === "sh" || b.lang === "console");
  assert.ok(shell.length >= 8, `found ${shell.length} blocks`);
  for (const block of shell) {
    if (block.notRun !== undefined) assert.ok(block.notRun.length >= 10, `README.md:${block.line}: say why`);
  }
  for (const block of ALL) {
    for (const command of block.lang === "sh" ? commands(block.text) : []) {
      if (/\bdeno task (broker|client|passwd)\b/.test(command)) {
        assert.fail(`README.md:${block.line}: "${command}" should use deno task -q`);
      }
    }
  }
});

for (const block of ALL.filter((b) => b.lang === "sh" && b.notRun === undefined)) {
  Deno.test({
    name: `README.md:${block.line}: the sh block runs${
      skipped === undefined ? "" : ` (skipped: ${skipped})`
    }`,
    ignore: skipped !== undefined,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      await inTempDir((dir) =>
        withFixtureBroker(async (port) => {
          for (const command of commands(block.text)) {
            const { kind, line } = prepare(command, port);
            const ran = await run(line, dir, kind);
            assert.equal(ran.code, 0, `README.md:${block.line}: ${line}\n${ran.stdout}${ran.stderr}`);
            if (kind === "broker") {
              assert.match(ran.stdout, /^mqtt broker listening on tcp:\/\/127\.0\.0\.1:\d+$/m);
              assert.doesNotMatch(ran.stdout, /:188[34]$/m, "on the free port this test asked for");
            }
          }
        })
      );
    },
  });
}

for (const block of ALL.filter((b) => b.lang === "console" && b.notRun === undefined)) {
  Deno.test({
    name: `README.md:${block.line}: the console block prints what it shows${
      skipped === undefined ? "" : ` (skipped: ${skipped})`
    }`,
    ignore: skipped !== undefined,
    async fn() {
      // "$ command" lines, each followed by its output; the password prompts show on a terminal only.
      const steps: { command: string; output: string[] }[] = [];
      for (const line of block.text.split("\n")) {
        if (line.startsWith("$ ")) steps.push({ command: line.slice(2), output: [] });
        else if (!/^(Reenter )?[Pp]assword:$/.test(line)) steps.at(-1)?.output.push(line);
      }
      await inTempDir(async (dir) => {
        for (const { command, output } of steps) {
          const ran = await run(command, dir, "plain", "s3cret\n");
          assert.equal(ran.code, 0, `README.md:${block.line}: ${command}\n${ran.stderr}`);
          assert.equal(
            ran.stdout,
            output.map((l) => `${l}\n`).join(""),
            `README.md:${block.line}: ${command}`,
          );
        }
      });
    },
  });
}

readmeTest("README: the ACL snippet is a valid ACL file", () => {
  const acl = ALL.find((b) => b.lang === "text" && /^topic read public\/#$/m.test(b.text));
  assert.ok(acl !== undefined, "the ACL snippet");
  assert.deepEqual(AclFile.parse(acl.text).warnings, []);
});

readmeTest("README: the JSON config snippet is a valid config", () => {
  const json = ALL.filter((b) => b.lang === "json");
  assert.ok(json.length >= 1);
  for (const block of json) parseConfig(block.text, `README.md:${block.line}`);
});

const installUnavailable = skipped;

Deno.test({
  name: `README: the deno install recipe gives working mqtt-broker, mqtt and mqtt-passwd commands${
    installUnavailable === undefined ? "" : ` (skipped: ${installUnavailable})`
  }`,
  ignore: installUnavailable !== undefined,
  async fn() {
    const recipe = ALL.find((b) => b.lang === "sh" && /deno install -g/.test(b.text));
    assert.ok(recipe !== undefined && recipe.notRun !== undefined, "the install recipe (not run as is)");
    await inTempDir(async (dir) => {
      const root = join(dir, "root");
      for (const command of commands(recipe.text).filter((c) => c.startsWith("deno install"))) {
        // The same command, into a temporary root instead of ~/.deno.
        const line = command.replace("deno install -g", `deno install -g --root '${root}'`);
        const ran = await run(`cd '${ROOT}' && ${line}`, dir, "plain");
        assert.equal(ran.code, 0, `${line}\n${ran.stderr}`);
      }
      for (const [name, expected] of [["mqtt-broker", /^deno-mqtt /], ["mqtt-passwd", /^Usage: /]] as const) {
        const flag = name === "mqtt-broker" ? "--version" : "--help";
        const ran = await run(`'${join(root, "bin", name)}' ${flag}`, dir, "plain");
        assert.equal(ran.code, 0, `${name} ${flag}\n${ran.stderr}`);
        assert.match(ran.stdout, expected);
      }
      const client = await run(`'${join(root, "bin", "mqtt")}' pub --help`, dir, "plain");
      assert.equal(client.code, 0, client.stderr);
    });
  },
});
