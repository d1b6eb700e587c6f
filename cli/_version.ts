/**
 * `--version`: the project's version (the one the broker reports) and Deno's. The broker module is imported only
 * when asked, so the commands do not load it at every start.
 *
 * @module
 */

/** The `--version` line, e.g. `deno task client pub: deno-mqtt 0.1.0 (Deno 2.1.0)`. */
export async function versionText(command?: string): Promise<string> {
  const { BROKER_VERSION } = await import("../lib/broker/broker.ts");
  const name = command === undefined ? "deno task client" : `deno task client ${command}`;
  return `${name}: ${BROKER_VERSION} (Deno ${Deno.version.deno})`;
}
