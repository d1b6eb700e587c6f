/**
 * File names from the command line and the config file: is one absolute, where does a relative one point, which
 * directory holds it. `node:path` would do, but importing any `node:` module at start costs the broker about
 * 1 MiB of RSS (the Node compatibility layer it loads; bench/results/2026-12-07-h4.md), so the three operations
 * the start-up needs live here. POSIX rules, plus drive letters and UNC names on Windows.
 *
 * @module
 */

const WINDOWS = Deno.build.os === "windows";

/** Matches a separator of the current platform. */
const SEPARATOR = WINDOWS ? /[\\/]/ : /\//;

/** The length of `path`'s root (`/`, `C:\`, `\\server\share\`), 0 when it has none. */
function rootLength(path: string): number {
  if (!WINDOWS) return path.startsWith("/") ? 1 : 0;
  if (/^[A-Za-z]:[\\/]/.test(path)) return 3;
  const unc = /^[\\/]{2}[^\\/]+[\\/][^\\/]+[\\/]?/.exec(path);
  if (unc !== null) return unc[0].length;
  return /^[\\/]/.test(path) ? 1 : 0;
}

/** Whether `path` is absolute (on Windows: `C:\x`, `\\server\share\x` or `\x`). */
export function isAbsolutePath(path: string): boolean {
  return rootLength(path) > 0;
}

/** `path` with `.` and `..` segments and repeated separators taken out; its root kept as written. */
function normalize(path: string): string {
  const root = path.slice(0, rootLength(path));
  const kept: string[] = [];
  for (const segment of path.slice(root.length).split(SEPARATOR)) {
    if (segment === "" || segment === ".") continue;
    if (segment === ".." && kept.length > 0 && kept.at(-1) !== "..") kept.pop();
    else if (segment !== ".." || root === "") kept.push(segment);
  }
  const body = kept.join(WINDOWS ? "\\" : "/");
  return root === "" ? (body === "" ? "." : body) : root + body;
}

/**
 * `path` made absolute against `base` (default: the current directory, which needs read permission for it, as
 * `node:path`'s `resolve` does), without `.` and `..` segments.
 *
 * @example
 * ```ts
 * import { resolvePath } from "./paths.ts";
 * if (Deno.build.os !== "windows") console.assert(resolvePath("../b.json", "/etc/mqtt") === "/etc/b.json");
 * ```
 */
export function resolvePath(path: string, base?: string): string {
  if (isAbsolutePath(path)) return normalize(path);
  const from = base === undefined || !isAbsolutePath(base) ? resolvePath(base ?? ".", Deno.cwd()) : base;
  return normalize(`${from}${WINDOWS ? "\\" : "/"}${path}`);
}

/** The directory that holds `path` (absolute), as `node:path`'s `dirname` of an absolute path. */
export function directoryOf(path: string): string {
  const normal = normalize(path);
  const root = normal.slice(0, rootLength(normal));
  const rest = normal.slice(root.length);
  const cut = Math.max(rest.lastIndexOf("/"), WINDOWS ? rest.lastIndexOf("\\") : -1);
  if (cut < 0) return root === "" ? "." : root;
  return root + rest.slice(0, cut);
}
