/**
 * File names given on the command line are the caller's: `deno task` runs in the repository root but sets
 * `INIT_CWD` to the directory it was called from, so `cd certs && deno task client pub --cafile ca.crt …` reads
 * `certs/ca.crt`. Without permission to read `INIT_CWD` (`--allow-env=INIT_CWD`), or outside `deno task`,
 * relative names stay relative to the current directory.
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";

/** The directory `deno task` was called from, when it is set and readable without a permission prompt. */
export function callerDirectory(): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: "INIT_CWD" }).state !== "granted") {
      return undefined;
    }
    const dir = Deno.env.get("INIT_CWD");
    return dir === undefined || dir === "" ? undefined : dir;
  } catch {
    return undefined;
  }
}

/** `path` as the caller meant it: relative names are resolved against {@linkcode callerDirectory}. */
export function callerPath(path: string): string {
  const dir = callerDirectory();
  return dir === undefined || isAbsolute(path) ? path : resolve(dir, path);
}
