/**
 * The line format the password file and the SCRAM file share: one `user:value` entry a line, whole-line `#`
 * comments and blank lines kept as they are. Parsing and editing of those lines are written once here; each file
 * brings its own value format and error class.
 *
 * @module
 */

/** Makes the file's own error for `line` (1-based; 0 for the whole file). */
export type LineError = (line: number, message: string, options?: { cause?: unknown }) => Error;

/** The file's lines, without line ends (CRLF or LF) and without the empty piece after a final newline. */
export function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split("\n").map((line) => line.endsWith("\r") ? line.slice(0, -1) : line);
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

/** The text of `lines`, each ended by a newline. */
export function joinLines(lines: readonly string[]): string {
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

/**
 * The user name of an entry line; `undefined` for a comment or blank line.
 *
 * @throws what `fail` makes, for a line with no `:` (`entry` names the expected form) or an empty user name.
 */
export function entryName(line: string, lineNo: number, entry: string, fail: LineError): string | undefined {
  const trimmed = line.trim();
  if (trimmed === "" || trimmed.startsWith("#")) return undefined;
  const colon = line.indexOf(":");
  if (colon === -1) throw fail(lineNo, `not a ${entry} entry (no ":")`);
  const username = line.slice(0, colon).trim();
  if (username === "") throw fail(lineNo, "the entry has an empty user name");
  return username;
}

/** What {@linkcode setEntry} and {@linkcode deleteEntry} return. */
export interface EditResult {
  /** The new file text. */
  readonly text: string;
  /** Whether the user had an entry before. */
  readonly found: boolean;
}

/** Sets `username`'s entry to `value`: replaces its line in place, or appends one; other lines stay as they are. */
export function setEntry(
  text: string,
  username: string,
  value: string,
  entry: string,
  fail: LineError,
): EditResult {
  let found = false;
  const out: string[] = [];
  splitLines(text).forEach((line, index) => {
    if (entryName(line, index + 1, entry, fail) !== username) out.push(line);
    else if (!found) {
      found = true;
      out.push(`${username}:${value}`);
    }
  });
  if (!found) out.push(`${username}:${value}`);
  return { text: joinLines(out), found };
}

/** Removes `username`'s entry; other lines stay as they are. */
export function deleteEntry(text: string, username: string, entry: string, fail: LineError): EditResult {
  const lines = splitLines(text);
  const out = lines.filter((line, index) => entryName(line, index + 1, entry, fail) !== username);
  return { text: joinLines(out), found: out.length !== lines.length };
}

/** Reads the file, or throws the file's own error naming it (`what`: "the password file"). */
export async function readUserFile(path: string, what: string, fail: LineError): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw fail(0, `cannot read ${what}: ${(error as Error).message}`, { cause: error });
  }
}
