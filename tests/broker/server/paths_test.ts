import assert from "node:assert/strict";
import { dirname, isAbsolute, resolve } from "node:path";
import { directoryOf, isAbsolutePath, resolvePath } from "../../../lib/broker/server/paths.ts";
import { testIf } from "../../_permissions.ts";

/** `node:path`, which these helpers replace at start, is the oracle on this platform. */
const POSIX = Deno.build.os !== "windows";

const PATHS = [
  "a",
  "a/b",
  "./a",
  "../a",
  "a/../../b",
  "/x",
  "/x/./y/../z",
  "//x//y/",
  "/",
  ".",
  "..",
  "a/",
  "/..",
];
const BASES = ["/", "/etc/mqtt", "/etc/mqtt/", "/a/b/../c"];

Deno.test({
  name: "isAbsolutePath() agrees with node:path isAbsolute",
  ignore: !POSIX,
  fn: () => {
    for (const path of PATHS) assert.equal(isAbsolutePath(path), isAbsolute(path), path);
  },
});

Deno.test({
  name: "resolvePath() agrees with node:path resolve against an absolute base",
  ignore: !POSIX,
  fn: () => {
    for (const base of BASES) {
      for (const path of PATHS) {
        assert.equal(resolvePath(path, base), resolve(base, path), `${base} + ${path}`);
      }
    }
  },
});

/** The current directory needs read permission, here as for `node:path`. */
const readUnavailable = Deno.permissions.querySync({ name: "read" }).state === "granted"
  ? undefined
  : "needs --allow-read";

testIf(
  "resolvePath() without a base, or with a relative one, starts from the current directory",
  [POSIX ? undefined : "POSIX paths", readUnavailable],
  // deno-lint-ignore require-await
  async () => {
    for (const path of PATHS) {
      assert.equal(resolvePath(path), resolve(path), path);
      assert.equal(resolvePath(path, "sub/dir"), resolve("sub/dir", path), path);
    }
  },
);

Deno.test({
  name: "directoryOf() agrees with node:path dirname for absolute paths",
  ignore: !POSIX,
  fn: () => {
    for (const path of ["/", "/x", "/x/y", "/x/y/", "/x//y", "/x/./y/../z/f.json"]) {
      assert.equal(directoryOf(path), dirname(resolve(path)), path);
    }
  },
});
