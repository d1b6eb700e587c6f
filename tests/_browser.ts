/**
 * Headless Chromium for the browser tests: where it is, the flags, and why a test must skip.
 *
 * Needs the Debian `chromium` package (`/usr/bin/chromium`) and `--allow-all`: Playwright starts and talks to
 * the browser (run, read, write, env, sys), and when it loads it probes `/proc/sys`, which Deno opens only to
 * `--allow-all`.
 *
 * @module
 */

/** The browser Playwright drives. */
export const CHROMIUM = "/usr/bin/chromium";

const WSL_PROBE = "/proc/sys/fs/binfmt_misc/WSLInterop";

/** Headless, no sandbox (we are often root in CI), nothing that phones home. */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Why Chromium cannot be driven here, or undefined when it can. */
export function browserUnavailable(): string | undefined {
  for (const name of ["read", "write", "env", "sys"] as const) {
    if (Deno.permissions.querySync({ name }).state !== "granted") return `needs --allow-${name}`;
  }
  if (Deno.permissions.querySync({ name: "run", command: CHROMIUM }).state !== "granted") {
    return "needs --allow-run";
  }
  try {
    Deno.statSync(CHROMIUM);
  } catch {
    return `needs Chromium at ${CHROMIUM} (apt-get install chromium)`;
  }
  // Playwright looks for WSL when it loads, and Deno lets only --allow-all read /proc/sys.
  try {
    Deno.statSync(WSL_PROBE);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) return `needs --allow-all (Playwright reads ${WSL_PROBE})`;
  }
  return undefined;
}
