/**
 * Tests that need a permission they may not have been given (`deno test --allow-net` alone) skip themselves and
 * say why in their name.
 *
 * @module
 */

/** Why files cannot be read and written here (a temporary database, a password file), or undefined when they can. */
export function filesUnavailable(): string | undefined {
  for (const name of ["read", "write"] as const) {
    if (Deno.permissions.querySync({ name }).state !== "granted") return `needs --allow-${name}`;
  }
  return undefined;
}

/**
 * Registers `fn` as a test, or, when one of `unavailable` (reasons from the `…Unavailable()` checks) is set, as
 * a skipped test whose name says why.
 */
export function testIf(
  name: string,
  unavailable: readonly (string | undefined)[],
  fn: () => Promise<void>,
): void {
  const reason = unavailable.find((r) => r !== undefined);
  if (reason === undefined) Deno.test(name, fn);
  else Deno.test({ name: `${name} (skipped: ${reason})`, ignore: true, fn });
}
