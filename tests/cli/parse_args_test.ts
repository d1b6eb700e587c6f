import assert from "node:assert/strict";
import { parseArgs as nodeParseArgs } from "node:util";
import { FlagError, parseArgs } from "../../cli/_parse_args.ts";

/** The broker's flags, in the shapes `broker.ts` uses. */
const OPTIONS = {
  config: { type: "string", short: "c" },
  port: { type: "string", short: "p" },
  "log-level": { type: "string" },
  verbose: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
} as const;

/** `node:util`'s parseArgs, which this one replaces at the broker's start, is the oracle. */
function oracle(args: string[]): Record<string, unknown> {
  const { values } = nodeParseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false });
  return { ...values };
}

const VALID: string[][] = [
  [],
  ["-p", "0"],
  ["-p0"],
  ["--port", "1883", "--port=1884"],
  ["--port="],
  ["-c", "b.json", "--log-level", "debug"],
  ["--log-level=-x"],
  ["-v"],
  ["-vh"],
  ["-vp", "7"],
  ["-vp7"],
  ["--verbose", "--help"],
  ["-p", "-"],
  ["--"],
  ["-p", "1", "--"],
];

const INVALID: string[][] = [
  ["--bogus"],
  ["--bogus=1"],
  ["-z"],
  ["-vz"],
  ["stray"],
  ["-p", "0", "stray"],
  ["--", "stray"],
  ["-p"],
  ["--port"],
  ["--log-level"],
  ["--verbose=yes"],
  ["-p", "-1"],
  ["-vp", "-1"],
  ["--port", "--help"],
  ["--log-level", "-x"],
];

Deno.test("parseArgs() reads valid flags as node:util parseArgs does", () => {
  for (const args of VALID) assert.deepEqual({ ...parseArgs(args, OPTIONS) }, oracle(args), args.join(" "));
});

Deno.test("parseArgs() refuses what node:util parseArgs refuses, with its message", () => {
  for (const args of INVALID) {
    let expected = "";
    assert.throws(() => oracle(args), (error: Error) => (expected = error.message, true), args.join(" "));
    assert.throws(() => parseArgs(args, OPTIONS), (error: unknown) => {
      assert.ok(error instanceof FlagError, args.join(" "));
      assert.equal(error.message, expected, args.join(" "));
      return true;
    });
  }
});
