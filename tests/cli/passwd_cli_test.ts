import assert from "node:assert/strict";
import { PasswordFile } from "../../lib/broker/auth/password_file.ts";
import { ScramFile } from "../../lib/broker/auth/scram_file.ts";
import { scramCredential } from "../../lib/auth/scram.ts";

const PASSWD = new URL("../../passwd.ts", import.meta.url).pathname;
const granted = (name: "read" | "write" | "run"): boolean =>
  Deno.permissions.querySync({ name }).state === "granted";
const canRun = granted("read") && granted("write") && granted("run");
const NEEDS = "(skipped: needs --allow-read --allow-write --allow-run)";
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** What one run of the command did. */
interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `passwd.ts` with only the permissions its task grants; `stdin` is piped in (or empty). `initCwd` is the
 * directory `deno task` was started in (it runs the program in the repository root).
 */
async function passwd(args: readonly string[], stdin = "", initCwd?: string): Promise<Outcome> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-read", "--allow-write", "--allow-env=INIT_CWD", PASSWD, ...args],
    ...(initCwd === undefined ? {} : { env: { INIT_CWD: initCwd } }),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(encoder.encode(stdin));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Registers a test with a temp dir holding `passwords` (not yet created). */
function cliTest(name: string, fn: (file: string) => Promise<void>): void {
  Deno.test({
    name: canRun ? name : `${name} ${NEEDS}`,
    ignore: !canRun,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "mqtt-passwd-cli-" });
      try {
        await fn(`${dir}/passwords`);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

async function verify(file: string, username: string, password: string): Promise<boolean> {
  return (await PasswordFile.load(file)).verify(username, password);
}

cliTest("passwd -c -b creates the file (mode 0600) with a $7$ entry", async (file) => {
  const out = await passwd(["-c", "-b", file, "alice", "wonder land"]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, `Added user alice to ${file} (PBKDF2-SHA512, 100000 iterations).\n`);
  assert.equal(out.stderr, "");
  assert.match(
    await Deno.readTextFile(file),
    /^alice:\$7\$100000\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==\n$/,
  );
  if (Deno.build.os !== "windows") assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
  assert.equal(await verify(file, "alice", "wonder land"), true);
});

cliTest("passwd adds, changes and deletes users, keeping the other lines", async (file) => {
  await Deno.writeTextFile(file, "# our users\n");
  let out = await passwd(["-b", "-I", "2000", file, "alice", "one"]);
  assert.equal(out.code, 0, out.stderr);
  out = await passwd(["-b", "-I", "2000", file, "bob", "two"]);
  assert.equal(out.stdout, `Added user bob to ${file} (PBKDF2-SHA512, 2000 iterations).\n`);
  out = await passwd(["-b", "-I", "3000", file, "alice", "three"]);
  assert.equal(out.stdout, `Changed the password of alice in ${file} (PBKDF2-SHA512, 3000 iterations).\n`);
  const lines = (await Deno.readTextFile(file)).split("\n");
  assert.equal(lines[0], "# our users");
  assert.match(lines[1]!, /^alice:\$7\$3000\$/);
  assert.match(lines[2]!, /^bob:\$7\$2000\$/);
  assert.equal(await verify(file, "alice", "one"), false);
  assert.equal(await verify(file, "alice", "three"), true);
  assert.equal(await verify(file, "bob", "two"), true);

  out = await passwd(["-D", file, "alice"]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, `Deleted user alice from ${file}.\n`);
  assert.deepEqual((await PasswordFile.load(file)).usernames(), ["bob"]);
  assert.match(await Deno.readTextFile(file), /^# our users\nbob:/);

  out = await passwd(["-D", file, "alice"]);
  assert.equal(out.code, 1);
  assert.equal(out.stderr, `passwd: user "alice" is not in ${file}\n`);
});

cliTest("passwd reads one line from a piped stdin (LF or CRLF)", async (file) => {
  let out = await passwd(["-c", "-I", "1000", file, "alice"], "piped secret\nignored\n");
  assert.equal(out.code, 0, out.stderr);
  out = await passwd(["-I", "1000", file, "bob"], "crlf secret\r\n");
  assert.equal(out.code, 0, out.stderr);
  assert.equal(await verify(file, "alice", "piped secret"), true);
  assert.equal(await verify(file, "bob", "crlf secret"), true);

  out = await passwd([file, "carol"], "");
  assert.equal(out.code, 1);
  assert.equal(out.stderr, "passwd: no password on stdin\n");
  out = await passwd([file, "carol"], "\n");
  assert.equal(out.stderr, "passwd: the password is empty\n");
  assert.equal((await PasswordFile.load(file)).has("carol"), false);
});

cliTest("passwd: bad command lines exit 2 with one line on stderr and touch nothing", async (file) => {
  const cases: [string[], string][] = [
    [["-x", file, "alice"], "unknown option -x"],
    [[file], "expected FILE USER, got 1 argument(s)"],
    [["-b", file, "alice"], "expected FILE USER PASSWORD, got 2 argument(s)"],
    [["-c", "-D", file, "alice"], "-c and -D cannot be used together"],
    [["-b", "-D", file, "alice", "pw"], "-b and -D cannot be used together"],
    [["-I", "0", "-b", file, "alice", "pw"], '-I needs a whole number from 1 to 2147483647, not "0"'],
    [["-I", "many", "-b", file, "alice", "pw"], '-I needs a whole number from 1 to 2147483647, not "many"'],
    [["-H", "sha512", "-b", file, "alice", "pw"], "-H sha512 (one round of SHA-512) is too weak"],
    [["-c", "-b", file, "al:ice", "pw"], 'the user name "al:ice" contains ":"'],
    [["-c", "-b", file, " alice", "pw"], 'the user name " alice" starts or ends with a blank'],
  ];
  for (const [args, message] of cases) {
    const out = await passwd(args);
    assert.equal(out.code, 2, args.join(" "));
    assert.equal(out.stderr.split("\n").length, 2, `one line: ${out.stderr}`);
    assert.ok(out.stderr.startsWith(`passwd: ${message}`), out.stderr);
    assert.equal(out.stdout, "");
  }
  await assert.rejects(Deno.stat(file), Deno.errors.NotFound);
});

cliTest("passwd: a missing or corrupt file exits 1 and is left as it was", async (file) => {
  let out = await passwd(["-b", file, "alice", "pw"]);
  assert.equal(out.code, 1);
  assert.equal(out.stderr, `passwd: ${file} does not exist (use -c to create it)\n`);
  await assert.rejects(Deno.stat(file), Deno.errors.NotFound);

  await Deno.writeTextFile(file, "bob:$6$x$y\ngarbage\n");
  out = await passwd(["-b", file, "alice", "pw"]);
  assert.equal(out.code, 1);
  assert.equal(out.stderr, `passwd: ${file}:2: not a user:hash entry (no ":")\n`);
  assert.equal(await Deno.readTextFile(file), "bob:$6$x$y\ngarbage\n");
});

cliTest("passwd --help prints the usage, 80 columns at most, and exits 0", async () => {
  const out = await passwd(["--help"]);
  assert.equal(out.code, 0);
  assert.match(out.stdout, /^Usage: deno task passwd /);
  for (const line of out.stdout.split("\n")) assert.ok(line.length <= 80, `${line.length} columns: ${line}`);
});

cliTest("passwd -U hashes a plain user:password file in place, as mosquitto_passwd -U", async (file) => {
  await Deno.writeTextFile(file, "# plain\nalice:wonder land\nbob:s3cret\r\n\n");
  let out = await passwd(["-U", "-I", "1000", file]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, `Hashed 2 password(s) in ${file} (PBKDF2-SHA512, 1000 iterations).\n`);
  assert.equal(await verify(file, "alice", "wonder land"), true);
  assert.equal(await verify(file, "bob", "s3cret"), true);
  assert.match(await Deno.readTextFile(file), /^# plain\nalice:\$7\$1000\$/);
  assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);

  // Run again, or on a file with a new plain line: hashed lines are kept, not hashed twice.
  await Deno.writeTextFile(file, (await Deno.readTextFile(file)) + "carol:pw\n");
  out = await passwd(["-U", "-I", "1000", file]);
  assert.equal(
    out.stdout,
    `Hashed 1 password(s) in ${file} (PBKDF2-SHA512, 1000 iterations); 2 already hashed, kept.\n`,
  );
  assert.equal(await verify(file, "alice", "wonder land"), true);
  assert.equal(await verify(file, "carol", "pw"), true);

  await Deno.writeTextFile(file, "alice:pw\nnocolon\n");
  out = await passwd(["-U", file]);
  assert.equal(out.code, 1);
  assert.equal(out.stderr, `passwd: ${file}:2: not a user:password line (no ":")\n`);
  assert.equal(await Deno.readTextFile(file), "alice:pw\nnocolon\n", "left as it was");

  out = await passwd(["-U", "-c", file]);
  assert.equal(out.code, 2);
  assert.equal(out.stderr, "passwd: -U and -c cannot be used together (see deno task passwd --help)\n");
});

cliTest("passwd --scram writes RFC 5803 SCRAM-SHA-256 entries the broker's ScramFile reads", async (file) => {
  let out = await passwd(["--scram", "-c", "-b", file, "alice", "wonderland"]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, `Added user alice to ${file} (SCRAM-SHA-256, 4096 iterations).\n`);
  assert.match(
    await Deno.readTextFile(file),
    /^alice:SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}\n$/,
  );
  const credential = (await ScramFile.load(file)).lookup("alice")!;
  const expected = await scramCredential("wonderland", 4096, credential.salt);
  assert.deepEqual(credential, expected, "the stored keys are derived from the password");

  out = await passwd(["--scram", "-I", "5000", file, "bob"], "pw\n");
  assert.equal(out.stdout, `Added user bob to ${file} (SCRAM-SHA-256, 5000 iterations).\n`);
  out = await passwd(["-D", file, "alice"]);
  assert.equal(out.code, 0, out.stderr);
  assert.deepEqual((await ScramFile.load(file)).size, 1);

  await Deno.writeTextFile(file, "carol:plain\n");
  out = await passwd(["--scram", "-U", file]);
  assert.equal(out.code, 0, out.stderr);
  assert.ok((await ScramFile.load(file)).lookup("carol") !== undefined);
});

cliTest(
  "passwd takes a relative FILE from the directory the task was started in (INIT_CWD)",
  async (file) => {
    const dir = file.slice(0, file.lastIndexOf("/"));
    const out = await passwd(["-c", "-b", "-I", "1000", "passwords", "alice", "pw"], "", dir);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, "Added user alice to passwords (PBKDF2-SHA512, 1000 iterations).\n");
    assert.equal(await verify(file, "alice", "pw"), true);
  },
);

// On a terminal: the prompts and the no-echo read, through a pseudo-terminal made by util-linux `script`.
function scriptUnavailable(): string | undefined {
  if (!canRun) return "needs --allow-read --allow-write --allow-run";
  try {
    new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync();
    return undefined;
  } catch {
    return "needs util-linux script";
  }
}

/** Runs passwd on a pseudo-terminal, typing each answer after its prompt appears; returns all output. */
async function onTerminal(args: readonly string[], answers: readonly string[]): Promise<Outcome> {
  const command = [Deno.execPath(), "run", "--quiet", "--allow-read", "--allow-write", PASSWD, ...args]
    .map((word) => `'${word}'`).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qec", command, "/dev/null"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.getReader();
  let stdout = "";
  const prompts = ["Password: ", "Reenter password: "];
  for (let i = 0; i < answers.length; i++) {
    while (stdout.split(prompts[i]!).length <= 1) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`no prompt ${JSON.stringify(prompts[i])}; got ${JSON.stringify(stdout)}`);
      stdout += decoder.decode(value);
    }
    await writer.write(encoder.encode(answers[i]));
  }
  await writer.close();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    stdout += decoder.decode(value);
  }
  const { code } = await child.status;
  await child.stderr.cancel();
  return { code, stdout, stderr: "" };
}

const noScript = scriptUnavailable();
Deno.test({
  name: noScript === undefined
    ? "passwd on a terminal asks twice without echo; Backspace edits"
    : `passwd on a terminal asks twice without echo (skipped: ${noScript})`,
  ignore: noScript !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mqtt-passwd-tty-" });
    try {
      const file = `${dir}/passwords`;
      let out = await onTerminal(["-c", "-I", "1000", file, "alice"], [
        "hush\x7f\x7fsh-hush\r",
        "hush-hush\r",
      ]);
      assert.equal(out.code, 0, out.stdout);
      assert.ok(!out.stdout.includes("hush"), `the password was echoed: ${JSON.stringify(out.stdout)}`);
      assert.equal(await verify(file, "alice", "hush-hush"), true);

      out = await onTerminal(["-I", "1000", file, "alice"], ["one\r", "two\r"]);
      assert.equal(out.code, 1);
      assert.match(out.stdout, /passwd: the passwords do not match/);
      assert.equal(await verify(file, "alice", "hush-hush"), true, "the file is unchanged");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
