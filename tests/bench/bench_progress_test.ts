/**
 * `deno task bench` must say what it is doing while it works (the codec group alone runs for half a minute):
 * progress on stderr, tables on stdout. The run is stopped once the first measurement has been announced.
 */

import assert from "node:assert/strict";

const MAIN = new URL("../../bench/main.ts", import.meta.url).pathname;
const canRun = Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state === "granted" &&
  Deno.permissions.querySync({ name: "read" }).state === "granted";

Deno.test({
  name: canRun
    ? "deno task bench codec prints progress on stderr before its first figure"
    : "deno task bench codec prints progress on stderr (skipped: needs --allow-run --allow-read)",
  ignore: !canRun,
  async fn() {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--allow-env", "--allow-read", MAIN, "codec"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    try {
      for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
        stderr += text;
        if (/codec 1\/6: .*: decode\n/.test(stderr)) break;
      }
      assert.match(
        stderr,
        /^bench: codec group…\ncodec 1\/6: PUBLISH QoS 1, 64 B payload \(v3\.1\.1\): decode\n/,
      );
    } finally {
      clearTimeout(timer);
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await child.status;
      await child.stdout.cancel();
    }
  },
});
