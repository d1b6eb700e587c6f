/**
 * The MQTT client command line: `deno task client pub|sub|rr|shell …`. Only dispatches; each command lives in
 * `cli/`.
 *
 * @module
 */

import { EXIT } from "./cli/_flags.ts";
import { writeErr, writeOut } from "./cli/_io.ts";
import { runPub } from "./cli/pub.ts";
import { runRr } from "./cli/rr.ts";
import { runShell } from "./cli/shell.ts";
import { runSub } from "./cli/sub.ts";
import { versionText } from "./cli/_version.ts";

const USAGE = `Usage: deno task client <command> [flags]

Commands:
  pub     publish a message (as mosquitto_pub)
  sub     subscribe and print messages (as mosquitto_sub)
  rr      publish an MQTT 5 request and print its response (as mosquitto_rr)
  shell   an interactive session

Run "deno task client <command> --help" for the flags of a command,
"deno task client --version" for the version.`;

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  pub: runPub,
  sub: runSub,
  rr: runRr,
  shell: runShell,
};

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined) {
    writeErr(`Error: no command given\n${USAGE}\n`); // a usage error: stderr, exit 2
    return EXIT.USAGE;
  }
  if (command === "--help" || command === "help") {
    writeOut(`${USAGE}\n`);
    return EXIT.OK;
  }
  if (command === "--version" || command === "version") {
    writeOut(`${await versionText()}\n`);
    return EXIT.OK;
  }
  const run = COMMANDS[command];
  if (run === undefined) {
    writeErr(`Error: unknown command "${command}"\n${USAGE}`);
    return EXIT.USAGE;
  }
  return await run(rest);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
