/**
 * The SQLite store's file format: its tables, the migrations from each schema version to the next, and the
 * checks that refuse a damaged file, someone else's database and a newer schema. Private to `SqlitePersistence`.
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

import type { DatabaseSync } from "node:sqlite";
import { errorMessage, StoreError } from "./_sqlite_errors.ts";

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
export const CONNECTION_SCHEMA = `
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
 * Refuses a damaged file (when `quickCheck`), someone else's database and a newer schema; `name` names the
 * store in the error.
 *
 * @throws {StoreError} saying which, and what to do about it.
 */
export function checkSchema(db: DatabaseSync, name: string, quickCheck: boolean): void {
  if (quickCheck) {
    const problems = db.prepare("PRAGMA quick_check(5)").all().map((row) => String(row.quick_check));
    if (problems.length !== 1 || problems[0] !== "ok") {
      throw new StoreError(
        `Cannot open ${name}: the file is corrupt (PRAGMA quick_check: ${problems.join("; ")}); ` +
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
        `Cannot open ${name}: not a broker store (application_id 0x${applicationId.toString(16)}, ` +
          `user_version ${version}, ${objects} schema object(s)); refusing to touch it`,
      );
    }
  }
  if (version > SQLITE_SCHEMA_VERSION) {
    throw new StoreError(
      `Cannot open ${name}: its schema version ${version} is newer than this broker supports ` +
        `(${SQLITE_SCHEMA_VERSION}); run a newer broker`,
    );
  }
}

/**
 * Runs each missing migration in its own transaction, bumping `user_version` with it.
 *
 * @throws {StoreError} naming the store (`name`) and the step that failed; earlier steps stay applied.
 */
export function migrateSchema(db: DatabaseSync, name: string): void {
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
        `Cannot open ${name}: migrating its schema from version ${version} to ${version + 1} failed: ` +
          errorMessage(error),
      );
    }
    version++;
  }
}
