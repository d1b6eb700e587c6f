/**
 * {@linkcode SqlitePersistence}: the default {@linkcode Persistence}, one SQLite file through `node:sqlite`.
 *
 * Durability: the file is in WAL mode. With `synchronous: "normal"` (the default) a commit is written to the WAL
 * but not fsynced, so a crashed or killed process (SIGKILL included) loses nothing that was committed; only a
 * power loss or OS crash can lose the last commits (the database itself stays consistent). With
 * `synchronous: "full"` every commit is fsynced before it resolves and survives power loss too, at the cost of
 * one fsync per commit. Commits run synchronously on the calling thread.
 *
 * The file format (tables, schema versions and their migrations) is in `_sqlite_schema.ts`, the mapping of the
 * broker's state to rows in `_sqlite_rows.ts`, and the wording of SQLite failures in `_sqlite_errors.ts`.
 *
 * @module
 */

import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { dirname } from "node:path";
import { CONSTRAINT, isSqliteError, StoreError, storeError } from "./_sqlite_errors.ts";
import { checkSchema, CONNECTION_SCHEMA, migrateSchema } from "./_sqlite_schema.ts";
import {
  MESSAGE_FIELDS,
  messageValues,
  readState,
  returningArrays,
  subscriptionsJson,
} from "./_sqlite_rows.ts";
import type { Message, PersistedState, Persistence, PersistenceOp } from "./persistence.ts";

export { SQLITE_SCHEMA_VERSION } from "./_sqlite_schema.ts";

/** Options for {@linkcode SqlitePersistence}. */
export interface SqlitePersistenceOptions {
  /**
   * `PRAGMA synchronous`. `"normal"`: a commit survives a process crash or SIGKILL, and only a power loss can
   * lose the last commits. `"full"`: every commit is fsynced and survives power loss too (slower, see
   * `bench/storage_bench.ts`).
   *
   * @default {"normal"}
   */
  readonly synchronous?: "normal" | "full";
  /**
   * Whether {@linkcode SqlitePersistence.load} runs `PRAGMA quick_check` and refuses a damaged file. It reads the
   * whole file, so a very large store may want to skip it.
   *
   * @default {true}
   */
  readonly quickCheck?: boolean;
}

/**
 * The statements a commit uses, prepared once at load. Writes go through `get()`, which `node:sqlite` runs about
 * twice as fast as `run()`, which builds a result object (1.2 µs against 2.5 µs per INSERT, Deno 2.9).
 */
interface Statements {
  putRetained: StatementSync;
  deleteRetained: StatementSync;
  putSession: StatementSync;
  sessionExists: StatementSync;
  deleteSessionOutgoing: StatementSync;
  deleteSessionIncoming: StatementSync;
  deleteSession: StatementSync;
  messageExists: StatementSync;
  insertMessage: StatementSync;
  deleteUnreferenced: StatementSync;
  clearUnreferenced: StatementSync;
  putOutgoing: StatementSync;
  deleteOutgoing: StatementSync;
  putIncoming: StatementSync;
  deleteIncoming: StatementSync;
  putWill: StatementSync;
  deleteWill: StatementSync;
}

/**
 * A {@linkcode Persistence} in one SQLite file (WAL mode), held exclusively by this process from
 * {@linkcode SqlitePersistence.load} to {@linkcode SqlitePersistence.close}.
 *
 * A message queued to several sessions is stored once when the broker passes the same {@linkcode Message}
 * object in their `putOutgoing` ops: it is recognised by identity, so a committed Message must not be mutated.
 * Messages returned by `load()` are shared the same way.
 *
 * @example
 * ```ts ignore
 * import { SqlitePersistence } from "./sqlite_persistence.ts";
 * const store = new SqlitePersistence("./data/broker.db", { synchronous: "normal" });
 * const state = await store.load(); // throws if the file is corrupt, newer or used by another broker
 * await store.commit([{ kind: "deleteRetained", topic: "a/b" }]);
 * await store.close();
 * ```
 */
export class SqlitePersistence implements Persistence {
  /** `sqlite:<path>`. */
  readonly name: string;
  readonly #path: string;
  readonly #synchronous: "normal" | "full";
  readonly #quickCheck: boolean;
  #db: DatabaseSync | undefined;
  #statements: Statements | undefined;
  /** Stored message ids by Message object, so a fan-out stores its message once. */
  #ids = new WeakMap<Message, number>();
  /** Ids are handed out here and never reused while open, so a stale entry in `#ids` can never hit. */
  #nextMessageId = 1;
  /** Message ids known to exist in the current commit (nothing is deleted before its end). */
  readonly #verified = new Set<number>();

  /** `path` is the database file; its directory is created at load. `":memory:"` gives a throwaway store. */
  constructor(path: string, options: SqlitePersistenceOptions = {}) {
    this.#path = path;
    this.name = `sqlite:${path}`;
    this.#synchronous = options.synchronous ?? "normal";
    this.#quickCheck = options.quickCheck ?? true;
  }

  /**
   * Opens the file (creating it and its directory if needed), takes the exclusive lock, checks it, migrates the
   * schema and returns what it holds. Called again while open, it reads the state again.
   *
   * @throws {Error} naming the path when the file is locked by another process, is not an SQLite database or a
   * broker store, is damaged, or has a newer schema version. The file is left untouched.
   */
  async load(): Promise<PersistedState> {
    if (this.#db === undefined) {
      if (this.#path !== ":memory:") await Deno.mkdir(dirname(this.#path), { recursive: true });
      const db = this.#open();
      try {
        db.exec(CONNECTION_SCHEMA);
        this.#statements = prepare(db);
        // A commit removes unreferenced messages; this is only a safety net.
        db.exec("DELETE FROM messages WHERE id NOT IN (SELECT message_id FROM outgoing)");
        this.#nextMessageId = Number(db.prepare("SELECT max(id) AS id FROM messages").get()?.id ?? 0) + 1;
        this.#db = db;
      } catch (error) {
        db.close();
        throw this.#describe("Cannot open", error);
      }
    }
    return readState(this.#db, this.name, this.#ids);
  }

  /**
   * Applies `ops` in one `BEGIN IMMEDIATE … COMMIT`: all or none.
   *
   * @throws {Error} when the store is not loaded, when putOutgoing/putIncoming names a session that is not
   * stored, or when SQLite fails (e.g. disk full); nothing of the batch is then applied.
   */
  commit(ops: readonly PersistenceOp[]): Promise<void> {
    const db = this.#db;
    const s = this.#statements;
    if (db === undefined || s === undefined) {
      return Promise.reject(
        new Error(`Cannot commit to ${this.name}: the store is not open (call load() first)`),
      );
    }
    if (ops.length === 0) return Promise.resolve();
    this.#verified.clear();
    try {
      db.exec("BEGIN IMMEDIATE");
      try {
        for (const op of ops) this.#apply(s, op);
        s.deleteUnreferenced.get();
        s.clearUnreferenced.get();
        db.exec("COMMIT");
      } catch (error) {
        if (db.isTransaction) db.exec("ROLLBACK");
        throw error;
      }
    } catch (error) {
      return Promise.reject(
        error instanceof StoreError ? error : this.#describe(`Cannot commit ${ops.length} op(s) to`, error),
      );
    }
    return Promise.resolve();
  }

  /** Closes the file (checkpointing the WAL into it) and releases the lock. {@linkcode load} opens it again. */
  close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    this.#statements = undefined;
    this.#ids = new WeakMap();
    db?.close();
    return Promise.resolve();
  }

  /** {@linkcode storeError} for this store. */
  #describe(what: string, error: unknown): Error {
    return storeError(what, this.name, this.#path, error);
  }

  /** Opens, locks, checks and migrates; closes the handle again on any failure. */
  #open(): DatabaseSync {
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(this.#path, { timeout: 0 });
    } catch (error) {
      throw this.#describe("Cannot open", error);
    }
    try {
      // EXCLUSIVE before WAL: the WAL index lives in this process (no -shm file) and the file lock, taken now,
      // is held until close, so a second broker on the same file fails here. The OS drops it if we die.
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      db.exec("BEGIN EXCLUSIVE; COMMIT");
      checkSchema(db, this.name, this.#quickCheck);
      const mode = db.prepare("PRAGMA journal_mode = WAL").get()?.journal_mode;
      if (mode !== "wal" && mode !== "memory") {
        throw new Error(`cannot switch to WAL mode (journal_mode ${mode})`);
      }
      db.exec(`PRAGMA synchronous = ${this.#synchronous === "full" ? "FULL" : "NORMAL"}`);
      db.exec("PRAGMA foreign_keys = ON");
      migrateSchema(db, this.name);
      return db;
    } catch (error) {
      db.close();
      throw error instanceof StoreError ? error : this.#describe("Cannot open", error);
    }
  }

  #apply(s: Statements, op: PersistenceOp): void {
    switch (op.kind) {
      case "putRetained":
        s.putRetained.get(...messageValues(op.message));
        return;
      case "deleteRetained":
        s.deleteRetained.get(op.topic);
        return;
      case "putSession": {
        const session = op.session;
        s.putSession.get(
          session.clientId,
          session.protocolVersion,
          session.expiryInterval,
          session.disconnectedAt ?? null,
          subscriptionsJson(session.subscriptions),
          session.username ?? null,
        );
        return;
      }
      case "deleteSession":
        s.deleteSessionOutgoing.get(op.clientId);
        s.deleteSessionIncoming.get(op.clientId);
        s.deleteWill.get(op.clientId);
        s.deleteSession.get(op.clientId);
        return;
      case "putOutgoing": {
        const entry = op.entry;
        this.#queueWrite(s, op, s.putOutgoing, [
          op.clientId,
          entry.seq,
          this.#messageId(s, entry.message),
          entry.qos,
          entry.retain ? 1 : 0,
          entry.subscriptionIds === undefined ? null : JSON.stringify(entry.subscriptionIds),
          entry.packetId ?? null,
          entry.state,
        ]);
        return;
      }
      case "deleteOutgoing":
        s.deleteOutgoing.get(op.clientId, op.seq);
        return;
      case "putIncoming":
        this.#queueWrite(s, op, s.putIncoming, [op.clientId, op.packetId]);
        return;
      case "deleteIncoming":
        s.deleteIncoming.get(op.clientId, op.packetId);
        return;
      case "putWill":
        s.putWill.get(
          op.will.clientId,
          op.will.sendAt,
          op.will.username ?? null,
          ...messageValues(op.will.message),
        );
        return;
      case "deleteWill":
        s.deleteWill.get(op.clientId);
        return;
    }
  }

  /** Writes a queue row; the foreign key refuses one for a session that is not stored, and this says which. */
  #queueWrite(
    s: Statements,
    op: { readonly kind: string; readonly clientId: string },
    statement: StatementSync,
    values: SQLInputValue[],
  ): void {
    try {
      statement.get(...values);
    } catch (error) {
      if (isSqliteError(error, CONSTRAINT) && s.sessionExists.get(op.clientId) === undefined) {
        throw new StoreError(
          `Cannot commit ${op.kind} for client ${JSON.stringify(op.clientId)} to ${this.name}: no stored ` +
            `session (commit putSession first)`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  /** The id of `message`'s row, inserting it unless this object was stored before and its row still exists. */
  #messageId(s: Statements, message: Message): number {
    const known = this.#ids.get(message);
    if (known !== undefined && (this.#verified.has(known) || s.messageExists.get(known) !== undefined)) {
      this.#verified.add(known);
      return known;
    }
    const id = this.#nextMessageId++;
    s.insertMessage.get(id, ...messageValues(message));
    this.#ids.set(message, id);
    this.#verified.add(id);
    return id;
  }
}

/** Prepares the statements a commit uses (see {@linkcode Statements}). */
function prepare(db: DatabaseSync): Statements {
  const p = (sql: string): StatementSync => returningArrays(db.prepare(sql));
  return {
    putRetained: p(`INSERT OR REPLACE INTO retained (${MESSAGE_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?)`),
    deleteRetained: p("DELETE FROM retained WHERE topic = ?"),
    putSession: p(
      `INSERT INTO sessions (client_id, protocol_version, expiry_interval, disconnected_at, subscriptions, username)
      VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (client_id) DO UPDATE SET protocol_version = excluded.protocol_version,
      expiry_interval = excluded.expiry_interval, disconnected_at = excluded.disconnected_at,
      subscriptions = excluded.subscriptions, username = excluded.username`,
    ),
    sessionExists: p("SELECT 1 FROM sessions WHERE client_id = ?"),
    deleteSessionOutgoing: p("DELETE FROM outgoing WHERE client_id = ?"),
    deleteSessionIncoming: p("DELETE FROM incoming WHERE client_id = ?"),
    deleteSession: p("DELETE FROM sessions WHERE client_id = ?"),
    messageExists: p("SELECT 1 FROM messages WHERE id = ?"),
    insertMessage: p(`INSERT INTO messages (id, ${MESSAGE_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
    deleteUnreferenced: p(
      `DELETE FROM messages WHERE id IN (SELECT id FROM unreferenced)
      AND NOT EXISTS (SELECT 1 FROM outgoing WHERE message_id = messages.id)`,
    ),
    clearUnreferenced: p("DELETE FROM unreferenced"),
    putOutgoing: p(
      `INSERT INTO outgoing (client_id, seq, message_id, qos, retain, subscription_ids, packet_id, state)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_id, seq) DO UPDATE SET message_id = excluded.message_id,
      qos = excluded.qos, retain = excluded.retain, subscription_ids = excluded.subscription_ids,
      packet_id = excluded.packet_id, state = excluded.state`,
    ),
    deleteOutgoing: p("DELETE FROM outgoing WHERE client_id = ? AND seq = ?"),
    putIncoming: p("INSERT OR IGNORE INTO incoming (client_id, packet_id) VALUES (?, ?)"),
    deleteIncoming: p("DELETE FROM incoming WHERE client_id = ? AND packet_id = ?"),
    putWill: p(
      `INSERT OR REPLACE INTO wills (client_id, send_at, username, ${MESSAGE_FIELDS})
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    deleteWill: p("DELETE FROM wills WHERE client_id = ?"),
  };
}
