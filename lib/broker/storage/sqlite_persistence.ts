/**
 * {@linkcode SqlitePersistence}: the default {@linkcode Persistence}, one SQLite file through `node:sqlite`.
 *
 * Durability: the file is in WAL mode. With `synchronous: "normal"` (the default) a commit is written to the WAL
 * but not fsynced, so a crashed or killed process (SIGKILL included) loses nothing that was committed; only a
 * power loss or OS crash can lose the last commits (the database itself stays consistent). With
 * `synchronous: "full"` every commit is fsynced before it resolves and survives power loss too, at the cost of
 * one fsync per commit. Commits run synchronously on the calling thread.
 *
 * Schema (version {@linkcode SQLITE_SCHEMA_VERSION}, in `PRAGMA user_version`; `application_id` "MQTT"):
 * - `retained(topic PK, …message)` and `wills(client_id PK, send_at, …message, username)`: one message each,
 *   inline.
 * - `sessions(client_id PK, protocol_version, expiry_interval, disconnected_at, subscriptions JSON, username)`.
 * - `messages(id PK, …message)`, referenced by `outgoing(client_id, seq PK, message_id, qos, retain,
 *   subscription_ids JSON, packet_id, state)`: a message queued to many sessions is stored once, and is deleted
 *   by the commit that removes its last outgoing row.
 * - `incoming(client_id, packet_id PK)`.
 *
 * "…message" is `topic, payload BLOB, qos, retain, properties BLOB (the v5 property block as on the wire),
 * expires_at, origin`.
 *
 * @module
 */

import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { dirname } from "node:path";
import { decodeProperties, encodeProperties } from "./_property_codec.ts";
import type { ProtocolVersion, QoS } from "../../packet/packet_type.ts";
import type { Subscription } from "../../topic/router.ts";
import type {
  LoadedSession,
  Message,
  OutgoingMessage,
  OutgoingState,
  PendingWill,
  PersistedState,
  Persistence,
  PersistenceOp,
} from "./persistence.ts";

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

/** `PRAGMA application_id` of a broker store: "MQTT" in ASCII. */
const APPLICATION_ID = 0x4d515454;

const MESSAGE_COLUMNS = `
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL CHECK (qos BETWEEN 0 AND 2),
    retain INTEGER NOT NULL CHECK (retain BETWEEN 0 AND 1),
    properties BLOB,
    expires_at INTEGER,
    origin TEXT`;

/**
 * `MIGRATIONS[n]` takes a store from schema version n to n + 1. Append only; never edit a shipped one.
 * CHECKs avoid `IN (…)` lists, which SQLite evaluates through a temporary b-tree on every row written: with
 * them an outgoing insert took 10.9 µs instead of 3.7 µs (Deno 2.9, SQLite 3.53); the gain shows in
 * `bench/storage_bench.ts`.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE retained (topic TEXT NOT NULL PRIMARY KEY, ${MESSAGE_COLUMNS});
  CREATE TABLE sessions (
    client_id TEXT NOT NULL PRIMARY KEY,
    protocol_version INTEGER NOT NULL,
    expiry_interval INTEGER NOT NULL,
    disconnected_at INTEGER,
    subscriptions TEXT NOT NULL
  );
  CREATE TABLE messages (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, ${MESSAGE_COLUMNS});
  CREATE TABLE outgoing (
    client_id TEXT NOT NULL REFERENCES sessions (client_id),
    seq INTEGER NOT NULL,
    message_id INTEGER NOT NULL REFERENCES messages (id),
    qos INTEGER NOT NULL CHECK (qos BETWEEN 0 AND 2),
    retain INTEGER NOT NULL CHECK (retain BETWEEN 0 AND 1),
    subscription_ids TEXT,
    packet_id INTEGER,
    state TEXT NOT NULL CHECK (state = 'queued' OR state = 'sent' OR state = 'released'),
    PRIMARY KEY (client_id, seq)
  ) WITHOUT ROWID;
  CREATE INDEX outgoing_by_message ON outgoing (message_id);
  CREATE TABLE incoming (
    client_id TEXT NOT NULL REFERENCES sessions (client_id),
    packet_id INTEGER NOT NULL,
    PRIMARY KEY (client_id, packet_id)
  ) WITHOUT ROWID;
  CREATE TABLE wills (client_id TEXT NOT NULL PRIMARY KEY, send_at INTEGER NOT NULL, topic TEXT NOT NULL,
    ${MESSAGE_COLUMNS});
  PRAGMA application_id = ${APPLICATION_ID};
  `,
  // 2: the owner's user name, so deliveries to an offline session are authorized as that user after a restart.
  `ALTER TABLE sessions ADD COLUMN username TEXT;`,
  // 3: the will's owner, so a will restored after a crash is authorized as its user.
  `ALTER TABLE wills ADD COLUMN username TEXT;`,
];

/** The schema version this code writes; a store with a higher `user_version` is refused. */
export const SQLITE_SCHEMA_VERSION: number = MIGRATIONS.length;

/**
 * Per connection, not stored: outgoing rows that go away (or switch message) note their message id, and the end
 * of each commit deletes the noted messages nothing refers to any more. Deferring it to the end of the commit
 * keeps a message alive when the same batch removes its last entry and queues it again.
 */
const CONNECTION_SCHEMA = `
  PRAGMA temp_store = MEMORY;
  CREATE TEMP TABLE unreferenced (id INTEGER PRIMARY KEY);
  CREATE TEMP TRIGGER outgoing_deleted AFTER DELETE ON main.outgoing
  BEGIN
    INSERT OR IGNORE INTO unreferenced (id) VALUES (OLD.message_id);
  END;
  CREATE TEMP TRIGGER outgoing_message_changed AFTER UPDATE OF message_id ON main.outgoing
    WHEN OLD.message_id <> NEW.message_id
  BEGIN
    INSERT OR IGNORE INTO unreferenced (id) VALUES (OLD.message_id);
  END;
`;

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
const CONSTRAINT = { codes: [19], texts: ["FOREIGN KEY constraint failed"] } as const;

const MESSAGE_FIELDS = "topic, payload, qos, retain, properties, expires_at, origin";

/** A message as selected with {@linkcode MESSAGE_FIELDS}. */
type MessageRow = [
  topic: string,
  payload: Uint8Array,
  qos: number,
  retain: number,
  properties: Uint8Array | null,
  expiresAt: number | null,
  origin: string | null,
];

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A stored subscription: `[filter, qos, noLocal, retainAsPublished, retainHandling, subscriptionId?]`. */
type SubscriptionTuple = [string, number, number, number, number, number?];

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
        throw this.#error("Cannot open", error);
      }
    }
    return this.#read(this.#db);
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
        error instanceof StoreError ? error : this.#error(`Cannot commit ${ops.length} op(s) to`, error),
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

  /** Opens, locks, checks and migrates; closes the handle again on any failure. */
  #open(): DatabaseSync {
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(this.#path, { timeout: 0 });
    } catch (error) {
      throw this.#error("Cannot open", error);
    }
    try {
      // EXCLUSIVE before WAL: the WAL index lives in this process (no -shm file) and the file lock, taken now,
      // is held until close, so a second broker on the same file fails here. The OS drops it if we die.
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      db.exec("BEGIN EXCLUSIVE; COMMIT");
      this.#check(db);
      const mode = db.prepare("PRAGMA journal_mode = WAL").get()?.journal_mode;
      if (mode !== "wal" && mode !== "memory") {
        throw new Error(`cannot switch to WAL mode (journal_mode ${mode})`);
      }
      db.exec(`PRAGMA synchronous = ${this.#synchronous === "full" ? "FULL" : "NORMAL"}`);
      db.exec("PRAGMA foreign_keys = ON");
      this.#migrate(db);
      return db;
    } catch (error) {
      db.close();
      throw error instanceof StoreError ? error : this.#error("Cannot open", error);
    }
  }

  /** Refuses a damaged file, someone else's database and a newer schema. */
  #check(db: DatabaseSync): void {
    if (this.#quickCheck) {
      const problems = db.prepare("PRAGMA quick_check(5)").all().map((row) => String(row.quick_check));
      if (problems.length !== 1 || problems[0] !== "ok") {
        throw new StoreError(
          `Cannot open ${this.name}: the file is corrupt (PRAGMA quick_check: ${problems.join("; ")}); ` +
            `restore it from a backup or move it away`,
        );
      }
    }
    const applicationId = Number(db.prepare("PRAGMA application_id").get()?.application_id);
    const version = Number(db.prepare("PRAGMA user_version").get()?.user_version);
    if (applicationId !== APPLICATION_ID) {
      const objects = Number(db.prepare("SELECT count(*) AS n FROM sqlite_schema").get()?.n);
      if (applicationId !== 0 || version !== 0 || objects !== 0) {
        throw new StoreError(
          `Cannot open ${this.name}: not a broker store (application_id 0x${applicationId.toString(16)}, ` +
            `user_version ${version}, ${objects} schema object(s)); refusing to touch it`,
        );
      }
    }
    if (version > SQLITE_SCHEMA_VERSION) {
      throw new StoreError(
        `Cannot open ${this.name}: its schema version ${version} is newer than this broker supports ` +
          `(${SQLITE_SCHEMA_VERSION}); run a newer broker`,
      );
    }
  }

  /** Runs each missing migration in its own transaction, bumping `user_version` with it. */
  #migrate(db: DatabaseSync): void {
    let version = Number(db.prepare("PRAGMA user_version").get()?.user_version);
    while (version < SQLITE_SCHEMA_VERSION) {
      db.exec("BEGIN IMMEDIATE");
      try {
        db.exec(MIGRATIONS[version]!);
        db.exec(`PRAGMA user_version = ${version + 1}`);
        db.exec("COMMIT");
      } catch (error) {
        db.exec("ROLLBACK");
        throw new StoreError(
          `Cannot open ${this.name}: migrating its schema from version ${version} to ${
            version + 1
          } failed: ` +
            errorMessage(error),
        );
      }
      version++;
    }
  }

  #read(db: DatabaseSync): PersistedState {
    const rows = (sql: string): unknown[][] => {
      return returningArrays(db.prepare(sql)).all() as unknown as unknown[][];
    };
    const retained = rows(`SELECT ${MESSAGE_FIELDS} FROM retained`).map((row) =>
      rowToMessage(row as MessageRow)
    );
    const wills = rows(`SELECT client_id, send_at, username, ${MESSAGE_FIELDS} FROM wills`).map((row) => {
      const will: { -readonly [K in keyof PendingWill]: PendingWill[K] } = {
        clientId: row[0] as string,
        sendAt: row[1] as number,
        message: rowToMessage(row.slice(3) as MessageRow),
      };
      if (row[2] !== null && row[2] !== undefined) will.username = row[2] as string;
      return will;
    });

    const messages = new Map<number, Message>();
    for (const row of rows(`SELECT id, ${MESSAGE_FIELDS} FROM messages`)) {
      const message = rowToMessage(row.slice(1) as MessageRow);
      messages.set(row[0] as number, message);
      this.#ids.set(message, row[0] as number);
    }
    const outgoing = groupByClient(
      rows(
        `SELECT client_id, seq, message_id, qos, retain, subscription_ids, packet_id, state
        FROM outgoing ORDER BY client_id, seq`,
      ),
      (row): OutgoingMessage => {
        const entry: Mutable<OutgoingMessage> = {
          seq: row[1] as number,
          message: messages.get(row[2] as number)!,
          qos: row[3] as QoS,
          retain: row[4] === 1,
          state: row[7] as OutgoingState,
        };
        if (row[5] !== null) {
          entry.subscriptionIds = this.#json(row[5], "outgoing", row, "subscription_ids") as number[];
        }
        if (row[6] !== null) entry.packetId = row[6] as number;
        return entry;
      },
    );
    const incoming = groupByClient(
      rows("SELECT client_id, packet_id FROM incoming ORDER BY client_id, packet_id"),
      (row) => row[1] as number,
    );

    const sessions = rows(
      "SELECT client_id, protocol_version, expiry_interval, disconnected_at, subscriptions, username FROM sessions",
    ).map((row): LoadedSession => {
      const clientId = row[0] as string;
      const session: Mutable<LoadedSession> = {
        clientId,
        protocolVersion: row[1] as ProtocolVersion,
        expiryInterval: row[2] as number,
        subscriptions: (this.#json(row[4], "sessions", row, "subscriptions") as SubscriptionTuple[]).map(
          tupleToSubscription,
        ),
        outgoing: outgoing.get(clientId) ?? [],
        incoming: incoming.get(clientId) ?? [],
      };
      if (row[3] !== null) session.disconnectedAt = row[3] as number;
      if (row[5] !== null && row[5] !== undefined) session.username = row[5] as string;
      return session;
    });
    return { retained, sessions, wills };
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
          JSON.stringify(session.subscriptions.map(subscriptionToTuple)),
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

  /** Parses a JSON column; a row that is not JSON is named (file, table, row) instead of a bare SyntaxError. */
  #json(value: unknown, table: string, row: readonly unknown[], column: string): unknown {
    try {
      if (typeof value !== "string") throw new Error(`a ${typeof value}, not text`);
      return JSON.parse(value);
    } catch (error) {
      throw new StoreError(
        `Cannot load ${this.name}: table ${table}, row client_id ${
          JSON.stringify(row[0])
        }: column ${column} ` +
          `is not valid JSON (${errorMessage(error)}); restore the file from a backup or remove that row`,
        { cause: error },
      );
    }
  }

  /** An Error whose message says what failed and where, keeping SQLite's error as the cause. */
  #error(what: string, error: unknown): Error {
    let reason = errorMessage(error);
    if (isSqliteError(error, LOCKED)) {
      reason = `it is locked by another process (is another broker using it?): ${reason}`;
    } else if (isSqliteError(error, CORRUPT)) {
      reason =
        `the file is corrupt or not an SQLite database (${reason}); restore it from a backup or move it away`;
    } else if (isSqliteError(error, UNWRITABLE) && this.#path !== ":memory:") {
      // SQLite says "disk I/O error" or "unable to open database file"; find out which of the two places is not ours.
      const problem = unwritable(this.#path);
      if (problem !== undefined) reason = `${problem} (SQLite: ${reason})`;
    }
    return new Error(`${what} ${this.name}: ${reason}`, { cause: error });
  }
}

/** An error whose message is already complete (it names the store), thrown as is. */
class StoreError extends Error {}

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

/**
 * Makes `statement` return rows as arrays, which `node:sqlite` builds about twice as fast as objects.
 * `setReturnArrays()` exists at run time (Deno 2.x, Node 24) but not yet in the bundled `node:sqlite` types.
 */
function returningArrays(statement: StatementSync): StatementSync {
  const arrays = statement as StatementSync & { setReturnArrays?: (enabled: boolean) => void };
  if (typeof arrays.setReturnArrays !== "function") {
    throw new Error(
      "node:sqlite StatementSync.setReturnArrays() is missing; upgrade Deno",
    );
  }
  arrays.setReturnArrays(true);
  return statement;
}

function messageValues(message: Message): SQLInputValue[] {
  return [
    message.topic,
    message.payload,
    message.qos,
    message.retain ? 1 : 0,
    message.properties === undefined ? null : encodeProperties(message.properties),
    message.expiresAt ?? null,
    message.origin ?? null,
  ];
}

function rowToMessage(row: MessageRow): Message {
  const [topic, payload, qos, retain, properties, expiresAt, origin] = row;
  const message: Mutable<Message> = { topic, payload, qos: qos as QoS, retain: retain === 1 };
  if (properties !== null) message.properties = decodeProperties(properties);
  if (expiresAt !== null) message.expiresAt = expiresAt;
  if (origin !== null) message.origin = origin;
  return message;
}

/** Rows whose first column is a client id, mapped and grouped by it (row order kept within a client). */
function groupByClient<T>(rows: readonly unknown[][], map: (row: unknown[]) => T): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const clientId = row[0] as string;
    let list = groups.get(clientId);
    if (list === undefined) groups.set(clientId, list = []);
    list.push(map(row));
  }
  return groups;
}

function subscriptionToTuple(sub: Subscription): SubscriptionTuple {
  const tuple: SubscriptionTuple = [
    sub.filter,
    sub.qos,
    sub.noLocal ? 1 : 0,
    sub.retainAsPublished ? 1 : 0,
    sub.retainHandling,
  ];
  if (sub.subscriptionId !== undefined) tuple.push(sub.subscriptionId);
  return tuple;
}

function tupleToSubscription(tuple: SubscriptionTuple): Subscription {
  const [filter, qos, noLocal, retainAsPublished, retainHandling, subscriptionId] = tuple;
  const sub: Mutable<Subscription> = {
    filter,
    qos: qos as QoS,
    noLocal: noLocal === 1,
    retainAsPublished: retainAsPublished === 1,
    retainHandling: retainHandling as 0 | 1 | 2,
  };
  if (subscriptionId !== undefined) sub.subscriptionId = subscriptionId;
  return sub;
}

function isSqliteError(
  error: unknown,
  kind: { readonly codes: readonly number[]; readonly texts: readonly string[] },
): boolean {
  if (typeof error !== "object" || error === null) return false;
  if ("errcode" in error && typeof error.errcode === "number") {
    return kind.codes.includes(error.errcode & 0xff);
  }
  const message = errorMessage(error);
  return kind.texts.some((text) => message.includes(text));
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

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
