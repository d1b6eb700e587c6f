/**
 * How the SQLite store says what went wrong: SQLite's result codes sorted into the few causes a user can act on
 * (locked by another broker, corrupt, not writable), each turned into a message naming the store.
 * Private to `SqlitePersistence`.
 *
 * @module
 */

import { dirname } from "node:path";

/** An error whose message is already complete (it names the store), thrown as is. */
export class StoreError extends Error {}

/** A class of SQLite failures: its result codes, and SQLite's own text for each. */
export interface SqliteErrorKind {
  readonly codes: readonly number[];
  readonly texts: readonly string[];
}

/**
 * SQLite result codes that decide the error message, with SQLite's own text for each: `node:sqlite` sets
 * `errcode` on statement errors but not on `exec()` errors, so both are checked.
 */
const LOCKED = { codes: [5, 6], texts: ["database is locked", "database table is locked"] } as const;
const CORRUPT = {
  codes: [11, 26],
  texts: ["database disk image is malformed", "file is not a database"],
} as const;
/** READONLY, IOERR, CANTOPEN: what SQLite says for a file or directory it may not write. */
const UNWRITABLE = {
  codes: [8, 10, 14],
  texts: ["attempt to write a readonly database", "disk I/O error", "unable to open database file"],
} as const;
/** A foreign key refused a row (a queue row for a session that is not stored). */
export const CONSTRAINT: SqliteErrorKind = { codes: [19], texts: ["FOREIGN KEY constraint failed"] };

/** Whether `error` is an SQLite error of `kind`. */
export function isSqliteError(error: unknown, kind: SqliteErrorKind): boolean {
  if (typeof error !== "object" || error === null) return false;
  if ("errcode" in error && typeof error.errcode === "number") {
    return kind.codes.includes(error.errcode & 0xff);
  }
  const message = errorMessage(error);
  return kind.texts.some((text) => message.includes(text));
}

/**
 * An Error whose message says what failed (`what`, e.g. "Cannot open") on which store (`name`) and why, keeping
 * SQLite's error as the cause. `path` is the database file, probed when SQLite only says it cannot write.
 */
export function storeError(what: string, name: string, path: string, error: unknown): Error {
  let reason = errorMessage(error);
  if (isSqliteError(error, LOCKED)) {
    reason = `it is locked by another process (is another broker using it?): ${reason}`;
  } else if (isSqliteError(error, CORRUPT)) {
    reason =
      `the file is corrupt or not an SQLite database (${reason}); restore it from a backup or move it away`;
  } else if (isSqliteError(error, UNWRITABLE) && path !== ":memory:") {
    // SQLite says "disk I/O error" or "unable to open database file"; find out which of the two places is not ours.
    const problem = unwritable(path);
    if (problem !== undefined) reason = `${problem} (SQLite: ${reason})`;
  }
  return new Error(`${what} ${name}: ${reason}`, { cause: error });
}

/** Why the broker cannot write `path` or the journal beside it, or undefined when it can. */
function unwritable(path: string): string | undefined {
  try {
    Deno.openSync(path, { write: true }).close();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      return `the file ${path} is not writable (${errorMessage(error)})`;
    }
  }
  const dir = dirname(path);
  const probe = `${dir}/.${crypto.randomUUID().slice(0, 8)}.write-test`;
  try {
    Deno.openSync(probe, { write: true, createNew: true }).close();
    Deno.removeSync(probe);
  } catch (error) {
    return `the directory ${dir} is not writable (${
      errorMessage(error)
    }), and SQLite keeps its journal there`;
  }
  return undefined;
}

/** The message of an Error, or the thrown value as text. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
