/**
 * The help texts: each fits 80 columns, lists every flag the command takes by its long name (and short one),
 * and names no flag the command would refuse.
 */

import assert from "node:assert/strict";
import { PUB_FLAGS, PUB_HELP } from "../../cli/pub.ts";
import { RR_FLAGS, RR_HELP } from "../../cli/rr.ts";
import { commandHelp, SHELL_FLAGS, SHELL_HELP } from "../../cli/shell.ts";
import { SUB_FLAGS, SUB_HELP } from "../../cli/sub.ts";
import { cliUnavailable, runCli } from "./_cli.ts";

type FlagTable = Readonly<Record<string, { readonly type: string; readonly short?: string }>>;

const COMMANDS: readonly (readonly [string, string, FlagTable])[] = [
  ["pub", PUB_HELP, PUB_FLAGS],
  ["sub", SUB_HELP, SUB_FLAGS],
  ["rr", RR_HELP, RR_FLAGS],
  ["shell", SHELL_HELP, SHELL_FLAGS],
];

/** -D / --property is taken out before the flags are parsed (it takes 3-4 values), so no table lists it. */
const EXTRACTED = new Set(["property"]);

function tooWide(text: string): string[] {
  return text.split("\n").filter((line) => line.length > 80);
}

for (const [command, help, flags] of COMMANDS) {
  Deno.test(`${command} --help fits 80 columns`, () => {
    assert.deepEqual(tooWide(help), []);
  });

  Deno.test(`${command} --help lists every flag by its long and short name, and only flags that work`, () => {
    // Deno's own flags (--allow-write=PATH for --unix) are named too: they are not ours.
    const listed = new Set(
      [...help.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)].map((m) => m[1]!).filter((name) =>
        !name.startsWith("allow-") && !name.startsWith("unsafely-")
      ),
    );
    for (const name of Object.keys(flags)) assert.ok(listed.has(name), `--${name} is missing from the help`);
    for (const name of listed) {
      assert.ok(name in flags || EXTRACTED.has(name), `the help lists --${name}, which ${command} refuses`);
    }
    for (const [name, spec] of Object.entries(flags)) {
      if (spec.short === undefined) continue;
      assert.match(
        help,
        new RegExp(`(?<![\\w-])-${spec.short}[ ,]`),
        `-${spec.short} (--${name}) is missing`,
      );
    }
  });
}

Deno.test("the shell's help command fits 80 columns", () => {
  assert.deepEqual(commandHelp().filter((line) => line.length > 80), []);
  assert.ok(commandHelp().some((line) => line.includes("send PINGREQ")));
});

const unavailable = cliUnavailable();
Deno.test({
  name: `client.ts --help, and each command's --help, print within 80 columns on stdout${
    unavailable === undefined ? "" : ` (skipped: ${unavailable})`
  }`,
  ignore: unavailable !== undefined,
  async fn() {
    for (
      const args of [["--help"], ["pub", "--help"], ["sub", "--help"], ["rr", "--help"], ["shell", "--help"]]
    ) {
      const result = await runCli(args);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(tooWide(result.stdout), [], args.join(" "));
    }
    const pub = await runCli(["pub", "--help"]);
    for (
      const name of ["--host", "--port", "--topic", "--message", "--qos", "--retain", "--username", "--url"]
    ) {
      assert.ok(pub.stdout.includes(name), `pub --help lists ${name}`);
    }
  },
});
