import assert from "node:assert/strict";
import {
  formatScramEntry,
  hashScramEntry,
  parseScramEntry,
  ScramFile,
  ScramFileError,
  setScramEntry,
} from "../../../lib/broker/auth/scram_file.ts";
import { scramCredential } from "../../../lib/auth/scram.ts";

const KEY = btoa("k".repeat(32));

Deno.test("parseScramEntry() reads RFC 5803's SCRAM-SHA-256$ITERATIONS:SALT$STOREDKEY:SERVERKEY", async () => {
  const credential = await scramCredential("pw", 4096, new Uint8Array([1, 2, 3, 4]));
  const text = formatScramEntry(credential);
  assert.match(text, /^SCRAM-SHA-256\$4096:AQIDBA==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
  assert.deepEqual(parseScramEntry(text), credential);
  assert.deepEqual(parseScramEntry(await hashScramEntry("pw", 10)).iterations, 10);
});

Deno.test("parseScramEntry() refuses what is not an entry, saying what is wrong", () => {
  const cases: [string, RegExp][] = [
    ["$7$101$salt$hash", /not SCRAM-SHA-256\$ITERATIONS:SALT\$STOREDKEY:SERVERKEY/],
    [`SCRAM-SHA-1$4096:AQID$${KEY}:${KEY}`, /unknown scheme "SCRAM-SHA-1"/],
    [`SCRAM-SHA-256$0:AQID$${KEY}:${KEY}`, /iteration count "0"/],
    [`SCRAM-SHA-256$x:AQID$${KEY}:${KEY}`, /iteration count "x"/],
    [`SCRAM-SHA-256$4096:A*ID$${KEY}:${KEY}`, /the salt is not base64/],
    [`SCRAM-SHA-256$4096:AQID$${btoa("short")}:${KEY}`, /the StoredKey is 5 bytes; it must be 32/],
    [`SCRAM-SHA-256$4096:AQID$${KEY}:`, /not SCRAM-SHA-256|the ServerKey is not base64/],
  ];
  for (const [text, message] of cases) assert.throws(() => parseScramEntry(text), message, text);
});

Deno.test("ScramFile.parse() skips comments and blank lines and names the line of a bad entry", async () => {
  const entry = await hashScramEntry("pw", 10);
  const file = ScramFile.parse(`# users\n\nalice:${entry}\r\nbob: ${entry}\n`);
  assert.equal(file.size, 2);
  assert.equal(file.lookup("bob")?.iterations, 10);
  assert.equal(file.lookup("carol"), undefined);
  assert.throws(() => ScramFile.parse(`alice:${entry}\nbob:plain\n`, "users"), {
    name: "ScramFileError",
    message: /^users:2: user "bob": not SCRAM-SHA-256/,
  });
  assert.throws(
    () => ScramFile.parse(`alice:${entry}\nalice:${entry}\n`),
    /<text>:2: user "alice" has a second entry/,
  );
  assert.throws(() => ScramFile.parse("nocolon\n"), ScramFileError);
});

Deno.test("setScramEntry() replaces a user's line or appends one, keeping the others", async () => {
  const a = await hashScramEntry("a", 10);
  const b = await hashScramEntry("b", 10);
  let edit = setScramEntry("# c\n", "alice", a);
  assert.deepEqual(edit, { text: `# c\nalice:${a}\n`, found: false });
  edit = setScramEntry(edit.text, "alice", b);
  assert.deepEqual(edit, { text: `# c\nalice:${b}\n`, found: true });
  assert.throws(() => setScramEntry("", "al:ice", a), /contains ":"/);
});

const noFiles = ["read", "write"].some((name) =>
  Deno.permissions.querySync({ name: name as "read" }).state !== "granted"
);
Deno.test({
  name: `ScramFile.reload() replaces the users; a bad file keeps the old ones and throws${
    noFiles ? " (skipped: needs --allow-read --allow-write)" : ""
  }`,
  ignore: noFiles,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mqtt_scram_file_test_" });
    try {
      const path = `${dir}/users`;
      await Deno.writeTextFile(path, `alice:${await hashScramEntry("a", 10)}\n`);
      const file = await ScramFile.load(path);
      await Deno.writeTextFile(path, `bob:${await hashScramEntry("b", 10)}\n`);
      await file.reload();
      assert.equal(file.lookup("alice"), undefined);
      assert.ok(file.lookup("bob") !== undefined);
      await Deno.writeTextFile(path, "bob:broken\n");
      await assert.rejects(file.reload(), new RegExp(`^ScramFileError: ${path}:1: `));
      assert.ok(file.lookup("bob") !== undefined, "the old users stay");
      await assert.rejects(ScramFile.load(`${dir}/missing`), /cannot read the SCRAM file/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
