import assert from "node:assert/strict";
import { pbkdf2Sync } from "node:crypto";
import { formatPasswordHash, hashPassword, parsePasswordHash } from "../../../lib/auth/password_hash.ts";
import {
  PasswordFile,
  PasswordFileAuthenticator,
  PasswordFileError,
  setPasswordEntry,
  writePasswordFile,
} from "../../../lib/broker/auth/password_file.ts";
import type { ConnectInfo } from "../../../lib/broker/auth/auth.ts";
import { freePort, mosquittoUnavailable, startMosquitto } from "../../client/_mosquitto.ts";

// Written by `mosquitto_passwd -b -c FILE alice secret` (2.0.11, default 101 rounds) and
// `mosquitto_passwd -H sha512 -b -c FILE bob pw`: known answers that need no Mosquitto installed.
const ALICE_7 =
  "alice:$7$101$dHdCDCLpZomx1pRZ$PSJeBAyqGat9NJ3NBjO2yrYf0ynVL5VpvEnc2R0DmKkKwF86SE+RT4s6KXgxke9CPufscSfPZUwFZjFcpdY/GA==";
const BOB_6 =
  "bob:$6$Eppe8j1LDSJhDJLu$zctNtdgd9+t+7OLbA2UgW9pm6ME+rhljrOnFKyT2DSoU0zpIj/s1zdzoSJjoD5az5EzWro2/6crv6mcqR6p2Sg==";

/** Few rounds, so tests that only check logic run fast. */
const FAST = { iterations: 1000 } as const;

const canRead = Deno.permissions.querySync({ name: "read" }).state === "granted";
const canWrite = Deno.permissions.querySync({ name: "write" }).state === "granted";
const NEEDS_FS = "(skipped: needs --allow-read --allow-write)";
const encoder = new TextEncoder();

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mqtt-passwd-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function fsTest(name: string, fn: () => Promise<void>): void {
  const allowed = canRead && canWrite;
  Deno.test({ name: allowed ? name : `${name} ${NEEDS_FS}`, ignore: !allowed, fn });
}

// ---- hashes ------------------------------------------------------------------------------------------------

Deno.test("parsePasswordHash() reads Mosquitto's $7$ and $6$ forms, and formatPasswordHash() writes them back", () => {
  for (const line of [ALICE_7, BOB_6]) {
    const text = line.slice(line.indexOf(":") + 1);
    const hash = parsePasswordHash(text);
    assert.equal(hash.salt.length, 12);
    assert.equal(hash.hash.length, 64);
    assert.equal(formatPasswordHash(hash), text);
  }
  const pbkdf2 = parsePasswordHash(ALICE_7.slice(6));
  assert.equal(pbkdf2.kind === "sha512-pbkdf2" && pbkdf2.iterations, 101);
  assert.equal(parsePasswordHash(BOB_6.slice(4)).kind, "sha512");
});

Deno.test("parsePasswordHash() refuses what Mosquitto 2 would drop", () => {
  const salt = "dHdCDCLpZomx1pRZ";
  const hash = ALICE_7.slice(ALICE_7.lastIndexOf("$") + 1);
  const cases: [string, RegExp][] = [
    ["plaintext", /not hashed/],
    [`$5$${salt}$${hash}`, /unknown hash type "\$5\$"/],
    [`$7$0$${salt}$${hash}`, /iteration count "0"/],
    [`$7$-5$${salt}$${hash}`, /iteration count/],
    [`$7$1e3$${salt}$${hash}`, /iteration count/],
    [`$7$101$${salt}`, /\$7\$ITERATIONS\$SALT\$HASH/],
    [`$7$101$${salt}AAAA$${hash}`, /salt is 15 bytes; it must be 12/],
    [`$7$101$${salt}$AAAA`, /hash is 3 bytes; it must be 64/],
    [`$7$101$${salt}$${hash.replace("+", "-")}`, /hash is not base64/],
    [`$6$${salt}`, /\$6\$SALT\$HASH/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parsePasswordHash(text), message, text);
  }
});

Deno.test("hashPassword() is PBKDF2-HMAC-SHA512 with a 12-byte salt, as node:crypto computes it", async () => {
  const salt = Uint8Array.from({ length: 12 }, (_, i) => i * 7);
  const text = await hashPassword("correct horse", { iterations: 1234, salt });
  const expected = pbkdf2Sync("correct horse", salt, 1234, 64, "sha512").toString("base64");
  assert.equal(text, `$7$1234$${btoa(String.fromCharCode(...salt))}$${expected}`);
});

Deno.test("hashPassword() uses 100,000 rounds and a fresh salt by default", async () => {
  const [a, b] = await Promise.all([hashPassword("same"), hashPassword("same")]);
  assert.match(a, /^\$7\$100000\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/);
  assert.notEqual(a, b);
});

Deno.test("hashPassword() refuses a bad iteration count or salt", async () => {
  await assert.rejects(hashPassword("x", { iterations: 0 }), RangeError);
  await assert.rejects(hashPassword("x", { iterations: 1.5 }), RangeError);
  await assert.rejects(hashPassword("x", { iterations: 10, salt: new Uint8Array(16) }), /12 bytes/);
});

// ---- the file --------------------------------------------------------------------------------------------

Deno.test("verify() accepts passwords hashed by mosquitto_passwd: $7$ (2.0) and $6$ (1.6)", async () => {
  const file = PasswordFile.parse(`${ALICE_7}\n${BOB_6}\n`);
  assert.deepEqual(file.usernames(), ["alice", "bob"]);
  assert.equal(await file.verify("alice", "secret"), true);
  assert.equal(await file.verify("alice", "Secret"), false);
  assert.equal(await file.verify("bob", "pw"), true);
  assert.equal(await file.verify("bob", encoder.encode("pw")), true);
  assert.equal(await file.verify("bob", "pw "), false);
  assert.equal(await file.verify("carol", "secret"), false);
});

Deno.test("PasswordFile.parse() skips comments and blank lines, trims blanks and CR like Mosquitto", async () => {
  const text = `# users\n\n   \n  ${ALICE_7.replace(":", " : ")}  \r\n# end\n`;
  const file = PasswordFile.parse(text);
  assert.deepEqual(file.usernames(), ["alice"]);
  assert.equal(await file.verify("alice", "secret"), true);
});

Deno.test("PasswordFile.parse() names the line of a malformed entry", () => {
  const cases: [string, RegExp][] = [
    [`${ALICE_7}\njust-a-name\n`, /^<text>:2: not a user:hash entry/],
    [`${ALICE_7}\n:$6$x$y\n`, /^<text>:2: the entry has an empty user name/],
    [`# c\n${ALICE_7}\n${ALICE_7}\n`, /^<text>:3: user "alice" has a second entry/],
    [`${BOB_6}\ncarol:secret\n`, /^<text>:2: user "carol": the password is not hashed/],
    [`carol:$7$101$abc$def\n`, /^<text>:1: user "carol": the salt is/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => PasswordFile.parse(text), (error: unknown) => {
      assert.ok(error instanceof PasswordFileError);
      assert.match(error.message, message);
      return true;
    });
  }
  assert.throws(() => PasswordFile.parse("x\n", { path: "/etc/pw" }), { message: /^\/etc\/pw:1: / });
});

Deno.test("setPasswordEntry() replaces a user's line in place and keeps everything else", async () => {
  const hash = await hashPassword("new", FAST);
  const text = `# header\n${ALICE_7}\n${BOB_6}\n`;
  const changed = setPasswordEntry(text, "alice", hash);
  assert.equal(changed.found, true);
  assert.equal(changed.text, `# header\nalice:${hash}\n${BOB_6}\n`);
  const added = setPasswordEntry(text, "carol", hash);
  assert.equal(added.found, false);
  assert.equal(added.text, `${text}carol:${hash}\n`);
  assert.throws(() => setPasswordEntry("garbage\n", "carol", hash), /<text>:1: not a user:hash entry/);
  assert.throws(() => setPasswordEntry(text, "a:b", hash), /contains ":"/);
});

Deno.test("a verified pair is answered from the cache; a reload empties the cache", async () => {
  const file = PasswordFile.parse(`alice:${await hashPassword("one", { iterations: 20_000 })}\n`);
  let start = performance.now();
  assert.equal(await file.verify("alice", "one"), true);
  const first = performance.now() - start;
  start = performance.now();
  assert.equal(await file.verify("alice", "one"), true);
  const cached = performance.now() - start;
  assert.ok(
    cached < first / 5,
    `cached verify took ${cached.toFixed(2)} ms, the first ${first.toFixed(2)} ms`,
  );
  // Wrong passwords are never cached and never match a cached pair.
  assert.equal(await file.verify("alice", "two"), false);
  assert.equal(await file.verify("alice", "two"), false);
});

fsTest(
  "load() and reload(): a good file replaces the users, a bad one keeps them and names file and line",
  async () => {
    await withTempDir(async (dir) => {
      const path = `${dir}/passwords`;
      await writePasswordFile(path, `alice:${await hashPassword("one", FAST)}\n`);
      const file = await PasswordFile.load(path);
      assert.equal(file.path, path);
      assert.equal(await file.verify("alice", "one"), true); // now cached

      await writePasswordFile(
        path,
        `alice:${await hashPassword("two", FAST)}\nbob:${await hashPassword("b", FAST)}\n`,
      );
      await file.reload();
      assert.equal(
        await file.verify("alice", "one"),
        false,
        "the cached old password must not survive a reload",
      );
      assert.equal(await file.verify("alice", "two"), true);
      assert.equal(await file.verify("bob", "b"), true);

      await Deno.writeTextFile(path, `alice:${await hashPassword("three", FAST)}\nbob\n`);
      await assert.rejects(file.reload(), (error: unknown) => {
        assert.ok(error instanceof PasswordFileError);
        assert.equal(error.message, `${path}:2: not a user:hash entry (no ":")`);
        assert.equal(error.line, 2);
        return true;
      });
      assert.equal(await file.verify("alice", "two"), true, "old users stay after a failed reload");
      assert.equal(await file.verify("alice", "three"), false);

      await Deno.remove(path);
      await assert.rejects(file.reload(), { message: new RegExp(`^${path}: cannot read the password file`) });
      assert.equal(await file.verify("bob", "b"), true);
      await assert.rejects(PasswordFile.load(`${dir}/missing`), PasswordFileError);
    });
  },
);

fsTest(
  "writePasswordFile() replaces the file atomically with mode 0600 and leaves no temporary file",
  async () => {
    await withTempDir(async (dir) => {
      const path = `${dir}/passwords`;
      await Deno.writeTextFile(path, "old\n", { mode: 0o644 });
      await writePasswordFile(path, `${ALICE_7}\n`);
      assert.equal(await Deno.readTextFile(path), `${ALICE_7}\n`);
      if (Deno.build.os !== "windows") assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
      const names = [];
      for await (const entry of Deno.readDir(dir)) names.push(entry.name);
      assert.deepEqual(names, ["passwords"]);
    });
  },
);

// ---- timing ----------------------------------------------------------------------------------------------

Deno.test("verify() takes as long for an unknown user, a wrong password or a weaker entry as for the right one", async () => {
  const rounds = 20_000;
  const file = PasswordFile.parse(
    [
      `alice:${await hashPassword("right", { iterations: rounds })}`,
      ALICE_7.replace("alice", "old"), // Mosquitto's 101 rounds: padded up to 20,000
      BOB_6, // one SHA-512: padded too
      "",
    ].join("\n"),
    { cacheSize: 0 },
  );
  const cases: Record<string, () => Promise<boolean>> = {
    right: () => file.verify("alice", "right"),
    wrong: () => file.verify("alice", "wrong"),
    unknown: () => file.verify("nobody", "right"),
    weaker101: () => file.verify("old", "wrong"),
    sha512: () => file.verify("bob", "wrong"),
  };
  const times: Record<string, number[]> = {};
  for (const name in cases) times[name] = [];
  await cases.right!(); // warm up
  for (let round = 0; round < 7; round++) {
    for (const [name, fn] of Object.entries(cases)) {
      const start = performance.now();
      assert.equal(await fn(), name === "right");
      times[name]!.push(performance.now() - start);
    }
  }
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1]!;
  const right = median(times.right!);
  for (const name of ["wrong", "unknown", "weaker101", "sha512"]) {
    const ratio = median(times[name]!) / right;
    assert.ok(
      ratio > 0.5 && ratio < 2,
      `${name}/right = ${ratio.toFixed(2)} (right: ${right.toFixed(1)} ms)`,
    );
  }
});

// ---- the authenticator -----------------------------------------------------------------------------------

function info(fields: Partial<Omit<ConnectInfo, "password">> & { password?: string }): ConnectInfo {
  const { password, ...rest } = fields;
  return {
    clientId: "c1",
    remoteAddress: "127.0.0.1:50000",
    allowAnonymous: false,
    ...rest,
    ...(password === undefined ? {} : { password: encoder.encode(password) }),
  };
}

Deno.test("PasswordFileAuthenticator: CONNACK codes for each kind of client", async () => {
  const auth = new PasswordFileAuthenticator(PasswordFile.parse(`${ALICE_7}\n`));
  const cases: [string, ConnectInfo, number, string | undefined][] = [
    ["right password", info({ username: "alice", password: "secret" }), 0x00, "alice"],
    ["wrong password", info({ username: "alice", password: "nope" }), 0x86, undefined],
    ["no password", info({ username: "alice" }), 0x86, undefined],
    ["unknown user", info({ username: "mallory", password: "secret" }), 0x86, undefined],
    [
      "unknown user, anonymous allowed",
      info({ username: "x", password: "y", allowAnonymous: true }),
      0x86,
      undefined,
    ],
    ["anonymous, not allowed", info({}), 0x87, undefined],
    ["anonymous, allowed", info({ allowAnonymous: true }), 0x00, undefined],
    ["certificate CN, no user name", info({ certificateCommonName: "device-7" }), 0x00, "device-7"],
    [
      "certificate CN and a user name: the password is checked",
      info({ certificateCommonName: "device-7", username: "alice", password: "nope" }),
      0x86,
      undefined,
    ],
  ];
  for (const [name, connect, reasonCode, username] of cases) {
    const result = await auth.authenticate(connect);
    assert.equal(result.reasonCode, reasonCode, name);
    assert.equal(result.username, username, name);
  }
});

// ---- Mosquitto interoperability --------------------------------------------------------------------------

function programUnavailable(program: string): string | undefined {
  if (!(canRead && canWrite)) return "needs --allow-read --allow-write";
  if (Deno.permissions.querySync({ name: "run", command: program }).state !== "granted") {
    return "needs --allow-run";
  }
  try {
    new Deno.Command(program, { args: ["-h"], stdout: "null", stderr: "null" }).outputSync();
    return undefined;
  } catch {
    return `needs ${program} installed`;
  }
}

const noPasswd = programUnavailable("mosquitto_passwd");
Deno.test({
  name: noPasswd === undefined
    ? "a file made by mosquitto_passwd -b -c verifies with our code"
    : `a file made by mosquitto_passwd verifies with our code (skipped: ${noPasswd})`,
  ignore: noPasswd !== undefined,
  fn: () =>
    withTempDir(async (dir) => {
      const path = `${dir}/passwords`;
      const run = async (...args: string[]): Promise<void> => {
        const out = await new Deno.Command("mosquitto_passwd", { args, stdout: "piped", stderr: "piped" })
          .output();
        assert.ok(out.success, new TextDecoder().decode(out.stderr));
      };
      await run("-b", "-c", path, "alice", "s3cret pass");
      await run("-b", "-I", "5000", path, "bob", "ünïcødé");
      await run("-H", "sha512", "-b", path, "carol", "old-style");
      const file = await PasswordFile.load(path);
      assert.equal(await file.verify("alice", "s3cret pass"), true);
      assert.equal(await file.verify("alice", "s3cret"), false);
      assert.equal(await file.verify("bob", "ünïcødé"), true);
      assert.equal(await file.verify("carol", "old-style"), true);
      assert.equal(await file.verify("carol", "old"), false);
    }),
});

const noMosquitto = programUnavailable("mosquitto_pub") ?? mosquittoUnavailable();
Deno.test({
  name: noMosquitto === undefined
    ? "Mosquitto accepts a file we write: mosquitto_pub -u -P connects with the right password only"
    : `Mosquitto accepts a file we write (skipped: ${noMosquitto})`,
  ignore: noMosquitto !== undefined,
  fn: () =>
    withTempDir(async (dir) => {
      const path = `${dir}/passwords`;
      await writePasswordFile(path, `dave:${await hashPassword("p@ss w0rd", { iterations: 20_000 })}\n`);
      // "user root" keeps a root-started Mosquitto from switching to a user that cannot read the temp dir.
      const mosquitto = await startMosquitto({
        port: freePort(),
        extraConfig: ["allow_anonymous false", `password_file ${path}`, "user root"],
      });
      assert.ok(mosquitto !== undefined);
      try {
        const pub = async (password: string): Promise<boolean> => {
          const args = ["-h", "127.0.0.1", "-p", `${mosquitto.port}`, "-u", "dave", "-P", password];
          const out = await new Deno.Command("mosquitto_pub", {
            args: [...args, "-t", "t", "-m", "m"],
            stdout: "null",
            stderr: "null",
          }).output();
          return out.success;
        };
        assert.equal(await pub("p@ss w0rd"), true, "the right password is accepted");
        assert.equal(await pub("p@ss"), false, "a wrong password is refused");
      } finally {
        await mosquitto.stop();
      }
    }),
});
