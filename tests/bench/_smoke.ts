/**
 * What the benchmark smoke tests share: they start brokers (and Redis) as child processes and read `/proc`, so
 * they need every permission and Linux, and are otherwise skipped with the reason in their name (as
 * `tests/_permissions.ts` does for the others). A benchmark leaves streams and timers of its children behind
 * until they exit, so the op and resource sanitizers are off.
 *
 * @module
 */

const NEEDED = ["run", "env", "sys", "read", "write", "net"] as const;

/** Why a benchmark cannot run here, or undefined when it can. */
export async function benchUnavailable(): Promise<string | undefined> {
  const permissions = await Promise.all(NEEDED.map((name) => Deno.permissions.query({ name })));
  if (permissions.some((p) => p.state !== "granted")) {
    return "needs --allow-run --allow-env --allow-sys --allow-read --allow-write --allow-net";
  }
  return Deno.build.os !== "linux" ? "runs on Linux only" : undefined;
}

/**
 * Registers a benchmark smoke test, or, when `skipped` gives a reason, a skipped test whose name says it.
 * Sanitizers off (see the module doc).
 */
export function benchTest(name: string, skipped: string | undefined, fn: () => Promise<void>): void {
  Deno.test({
    name: skipped === undefined ? name : `${name} (skipped: ${skipped})`,
    ignore: skipped !== undefined,
    sanitizeOps: false,
    sanitizeResources: false,
    fn,
  });
}
