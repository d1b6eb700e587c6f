import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { Message, PersistenceOp } from "../../../lib/broker/storage/persistence.ts";
import {
  SQLITE_SCHEMA_VERSION,
  SqlitePersistence,
  type SqlitePersistenceOptions,
} from "../../../lib/broker/storage/sqlite_persistence.ts";
import { persistenceContract, type PersistenceFixture } from "./persistence_contract.ts";

const canWrite = (await Deno.permissions.query({ name: "write" })).state === "granted" &&
  (await Deno.permissions.query({ name: "read" })).state === "granted";
const canRun = (await Deno.permissions.query({ name: "run" })).state === "granted";
const NEEDS = "(needs --allow-read --allow-write)";
const NEEDS_RUN = "(needs --allow-read --allow-write --allow-run)";

interface SqliteFixture extends PersistenceFixture {
  readonly store: SqlitePersistence;
  readonly path: string;
  readonly open: () => SqlitePersistence;
}

/** A store in a new temporary directory; the database sits in a subdirectory that load() must create. */
async function sqliteFixture(options: SqlitePersistenceOptions = {}): Promise<SqliteFixture> {
  const dir = await Deno.makeTempDir({ prefix: "mqtt_sqlite_test_" });
  const path = `${dir}/data/broker.db`;
  const opened: SqlitePersistence[] = [];
  const open = (): SqlitePersistence => {
    const store = new SqlitePersistence(path, options);
    opened.push(store);
    return store;
  };
  return {
    store: open(),
    path,
    open,
    reopen: () => Promise.resolve(open()),
    cleanup: async () => {
      for (const store of opened) await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Registers a test that gets a fresh fixture and always cleans it up. */
function sqliteTest(
  name: string,
  fn: (f: SqliteFixture) => Promise<void>,
  needs: { run?: boolean; options?: SqlitePersistenceOptions } = {},
): void {
  const allowed = canWrite && (!needs.run || canRun);
  Deno.test({
    name: allowed ? name : `${name} ${needs.run ? NEEDS_RUN : NEEDS}`,
    ignore: !allowed,
    fn: async () => {
      const fixture = await sqliteFixture(needs.options);
      try {
        await fn(fixture);
      } finally {
        await fixture.cleanup();
      }
    },
  });
}

/** Runs `fn` on the raw database file (the store must be closed). */
function withRawDb<T>(path: string, fn: (db: DatabaseSync) => T): T {
  const db = new DatabaseSync(path);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

function pragma(db: DatabaseSync, name: string): unknown {
  return db.prepare(`PRAGMA ${name}`).get()?.[name];
}

function count(db: DatabaseSync, table: string): number {
  return Number(db.prepare(`SELECT count(*) AS n FROM ${table}`).get()?.n);
}

function message(topic: string, size = 64): Message {
  return { topic, payload: new Uint8Array(size).fill(7), qos: 1, retain: false };
}

function session(clientId: string): PersistenceOp {
  return {
    kind: "putSession",
    session: { clientId, protocolVersion: 5, expiryInterval: 60, subscriptions: [] },
  };
}

persistenceContract(
  "SqlitePersistence",
  sqliteFixture,
  canWrite ? {} : { ignoreBecause: NEEDS },
);

sqliteTest(
  "SqlitePersistence: load() creates the directory and a WAL-mode file at the current schema",
  async (f) => {
    assert.equal(f.store.name, `sqlite:${f.path}`);
    await f.store.load();
    await f.store.close();
    withRawDb(f.path, (db) => {
      assert.equal(pragma(db, "journal_mode"), "wal");
      assert.equal(pragma(db, "user_version"), SQLITE_SCHEMA_VERSION);
      assert.equal(pragma(db, "application_id"), 0x4d515454);
    });
  },
);

sqliteTest('SqlitePersistence: synchronous "full" stores and loads', async (f) => {
  await f.store.load();
  await f.store.commit([{ kind: "putRetained", message: message("full") }]);
  await f.store.close();
  const again = f.open();
  assert.deepEqual((await again.load()).retained, [message("full")]);
}, { options: { synchronous: "full" } });

sqliteTest(
  "SqlitePersistence: load() refuses a newer schema version and leaves the file alone",
  async (f) => {
    await f.store.load();
    await f.store.close();
    withRawDb(f.path, (db) => db.exec(`PRAGMA user_version = ${SQLITE_SCHEMA_VERSION + 1}`));
    await assert.rejects(
      f.open().load(),
      (error: Error) => {
        assert.ok(error.message.includes(f.path), error.message);
        assert.match(error.message, new RegExp(`schema version ${SQLITE_SCHEMA_VERSION + 1} is newer`));
        return true;
      },
    );
    withRawDb(f.path, (db) => assert.equal(pragma(db, "user_version"), SQLITE_SCHEMA_VERSION + 1));
  },
);

sqliteTest(
  "SqlitePersistence: load() refuses a file of random bytes, naming the path, and keeps it",
  async (f) => {
    await Deno.mkdir(f.path.slice(0, f.path.lastIndexOf("/")), { recursive: true });
    const garbage = crypto.getRandomValues(new Uint8Array(16384));
    await Deno.writeFile(f.path, garbage);
    await assert.rejects(f.store.load(), (error: Error) => {
      assert.ok(error.message.includes(f.path), error.message);
      assert.match(error.message, /corrupt or not an SQLite database/);
      return true;
    });
    assert.deepEqual(await Deno.readFile(f.path), garbage);
  },
);

sqliteTest("SqlitePersistence: load() refuses a store with a damaged page", async (f) => {
  await f.store.load();
  const ops: PersistenceOp[] = [session("c")];
  for (let seq = 1; seq <= 300; seq++) {
    ops.push({
      kind: "putOutgoing",
      clientId: "c",
      entry: { seq, message: message(`t/${seq}`), qos: 1, retain: false, state: "queued" },
    });
  }
  await f.store.commit(ops);
  await f.store.close();
  const bytes = await Deno.readFile(f.path);
  const pageSize = (bytes[16]! << 8) | bytes[17]!;
  assert.ok(bytes.length >= pageSize * 6, `a file of ${bytes.length} bytes`);
  // Overwrite pages 3..5 (b-tree pages of the schema's tables) but keep the header page intact.
  bytes.fill(0xa5, pageSize * 2, pageSize * 5);
  await Deno.writeFile(f.path, bytes);
  await assert.rejects(f.open().load(), (error: Error) => {
    assert.ok(error.message.includes(f.path), error.message);
    assert.match(error.message, /corrupt/);
    return true;
  });
  assert.deepEqual(await Deno.readFile(f.path), bytes);
});

sqliteTest("SqlitePersistence: load() refuses an SQLite database that is not a broker store", async (f) => {
  await Deno.mkdir(f.path.slice(0, f.path.lastIndexOf("/")), { recursive: true });
  withRawDb(f.path, (db) => db.exec("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine')"));
  await assert.rejects(f.store.load(), /not a broker store/);
  withRawDb(f.path, (db) => assert.equal(count(db, "notes"), 1));
});

sqliteTest(
  "SqlitePersistence: a second store on the same file is refused until the first closes",
  async (f) => {
    await f.store.load();
    await f.store.commit([{ kind: "putRetained", message: message("held") }]);
    const second = f.open();
    await assert.rejects(second.load(), (error: Error) => {
      assert.ok(error.message.includes(f.path), error.message);
      assert.match(error.message, /locked by another process/);
      return true;
    });
    await assert.rejects(second.commit([]), /not open/);
    await f.store.close();
    assert.deepEqual((await second.load()).retained, [message("held")]);
  },
);

sqliteTest("SqlitePersistence: migrates an empty version-0 database to the current schema", async (f) => {
  await Deno.mkdir(f.path.slice(0, f.path.lastIndexOf("/")), { recursive: true });
  withRawDb(f.path, (db) => assert.equal(pragma(db, "user_version"), 0));
  assert.deepEqual(await f.store.load(), { retained: [], sessions: [], wills: [] });
  await f.store.commit([{ kind: "putRetained", message: message("migrated") }]);
  await f.store.close();
  withRawDb(f.path, (db) => assert.equal(pragma(db, "user_version"), SQLITE_SCHEMA_VERSION));
  // A zero-byte file is an empty database too.
  await Deno.writeFile(f.path, new Uint8Array(0));
  assert.deepEqual(await f.open().load(), { retained: [], sessions: [], wills: [] });
});

sqliteTest(
  "SqlitePersistence: a version-2 database (wills without an owner) migrates and keeps its wills",
  async (f) => {
    await f.store.load();
    await f.store.commit([{
      kind: "putWill",
      will: { clientId: "old", message: message("will/old"), sendAt: 5 },
    }]);
    await f.store.close();
    // What a version-2 store looked like: no username column in wills.
    withRawDb(f.path, (db) => db.exec("ALTER TABLE wills DROP COLUMN username; PRAGMA user_version = 2"));
    const again = f.open();
    const state = await again.load();
    assert.deepEqual(state.wills, [{ clientId: "old", message: message("will/old"), sendAt: 5 }]);
    await again.commit([{
      kind: "putWill",
      will: { clientId: "new", message: message("will/new"), sendAt: 6, username: "alice" },
    }]);
    await again.close();
    withRawDb(f.path, (db) => assert.equal(pragma(db, "user_version"), SQLITE_SCHEMA_VERSION));
    assert.equal((await f.open().load()).wills.find((w) => w.clientId === "new")?.username, "alice");
  },
);

sqliteTest("SqlitePersistence: commit() before load() and after close() rejects", async (f) => {
  await assert.rejects(
    f.store.commit([{ kind: "deleteRetained", topic: "x" }]),
    /not open \(call load\(\) first\)/,
  );
  await f.store.load();
  await f.store.close();
  await assert.rejects(f.store.commit([{ kind: "deleteRetained", topic: "x" }]), /not open/);
});

sqliteTest(
  "SqlitePersistence: a message queued to many sessions is stored once and removed with its last entry",
  async (f) => {
    await f.store.load();
    const m = message("fan/out", 1000);
    const clients = Array.from({ length: 100 }, (_, i) => `c${i}`);
    await f.store.commit([
      ...clients.map(session),
      ...clients.map((clientId): PersistenceOp => ({
        kind: "putOutgoing",
        clientId,
        entry: { seq: 1, message: m, qos: 1, retain: false, state: "queued" },
      })),
    ]);
    await f.store.close();
    withRawDb(f.path, (db) => {
      assert.equal(count(db, "messages"), 1);
      assert.equal(count(db, "outgoing"), 100);
    });
    const again = f.open();
    const state = await again.load();
    assert.equal(state.sessions.length, 100);
    const loaded = state.sessions[0]!.outgoing[0]!.message;
    assert.ok(
      state.sessions.every((s) => s.outgoing[0]!.message === loaded),
      "one Message object after load",
    );
    await again.commit([
      ...clients.slice(0, 50).map((clientId): PersistenceOp => ({
        kind: "deleteOutgoing",
        clientId,
        seq: 1,
      })),
      ...clients.slice(50).map((clientId): PersistenceOp => ({ kind: "deleteSession", clientId })),
    ]);
    await again.close();
    withRawDb(f.path, (db) => {
      for (const table of ["messages", "outgoing", "incoming", "wills"]) {
        assert.equal(count(db, table), 0, table);
      }
      assert.equal(count(db, "sessions"), 50);
    });
  },
);

sqliteTest("SqlitePersistence: deleteSession leaves no rows behind", async (f) => {
  await f.store.load();
  await f.store.commit([
    session("c"),
    {
      kind: "putOutgoing",
      clientId: "c",
      entry: { seq: 1, message: message("a"), qos: 1, retain: false, state: "queued" },
    },
    {
      kind: "putOutgoing",
      clientId: "c",
      entry: { seq: 2, message: message("b"), qos: 1, retain: false, state: "queued" },
    },
    { kind: "putIncoming", clientId: "c", packetId: 1 },
    { kind: "putWill", will: { clientId: "c", message: message("will"), sendAt: 1 } },
  ]);
  await f.store.commit([{ kind: "deleteSession", clientId: "c" }]);
  await f.store.close();
  withRawDb(f.path, (db) => {
    for (const table of ["sessions", "messages", "outgoing", "incoming", "wills"]) {
      assert.equal(count(db, table), 0, table);
    }
  });
});

sqliteTest(
  "SqlitePersistence: throughput sanity, 2,000 commits of 10 queue ops in a few seconds",
  async (f) => {
    await f.store.load();
    await f.store.commit([session("c")]);
    const started = performance.now();
    let seq = 0;
    for (let i = 0; i < 2000; i++) {
      const ops: PersistenceOp[] = [];
      for (let j = 0; j < 5; j++) {
        seq++;
        ops.push({
          kind: "putOutgoing",
          clientId: "c",
          entry: { seq, message: message("t"), qos: 1, retain: false, state: "queued" },
        });
        ops.push({ kind: "deleteOutgoing", clientId: "c", seq: seq - 2 });
      }
      await f.store.commit(ops);
    }
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds < 10, `2,000 commits took ${seconds.toFixed(2)} s`);
    await f.store.close();
    withRawDb(f.path, (db) => assert.equal(count(db, "messages"), 2));
  },
);

/** Source for a child process that opens the store at `path`, runs `body`, and prints what happened. */
function childScript(path: string, body: string): string {
  const module = new URL("../../../lib/broker/storage/sqlite_persistence.ts", import.meta.url).href;
  return `import { SqlitePersistence } from ${JSON.stringify(module)};
const store = new SqlitePersistence(${JSON.stringify(path)});
try { await store.load(); ${body} } catch (error) { console.log("error: " + error.message); }`;
}

async function readLine(reader: ReadableStreamDefaultReader<string>): Promise<string> {
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  return text.trim();
}

sqliteTest("SqlitePersistence: a broker in another process cannot open a held store", async (f) => {
  await f.store.load();
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", childScript(f.path, 'console.log("opened");')],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  assert.match(text, /error: .*locked by another process/);
  assert.ok(text.includes(f.path), text);
}, { run: true });

sqliteTest(
  "SqlitePersistence: a commit survives SIGKILL of its process, which also releases the lock",
  async (f) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        childScript(
          f.path,
          `await store.commit([{ kind: "putRetained", message: { topic: "k", payload: new Uint8Array([1, 2]), qos: 1, retain: true } }]);
        console.log("committed"); setInterval(() => {}, 1000);`,
        ),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    try {
      assert.equal(await readLine(reader), "committed");
    } finally {
      child.kill("SIGKILL");
      await reader.cancel();
      await child.status;
    }
    const state = await f.store.load();
    assert.deepEqual(state.retained, [{ topic: "k", payload: Uint8Array.of(1, 2), qos: 1, retain: true }]);
  },
  { run: true },
);

/**
 * Makes `path` unwritable even for root (`chattr +i`) or, failing that, by its mode; resolves an undo function,
 * or undefined when neither works here (a file system without the immutable flag, and running as root).
 */
async function makeReadOnly(path: string): Promise<(() => Promise<void>) | undefined> {
  const writable = async () => {
    try {
      (await Deno.open(path, { write: true })).close();
      return true;
    } catch {
      return false;
    }
  };
  await Deno.chmod(path, 0o444);
  if (!await writable()) return () => Deno.chmod(path, 0o644);
  await Deno.chmod(path, 0o644);
  if (!canRun) return undefined;
  const chattr = (flag: string) =>
    new Deno.Command("chattr", { args: [flag, path], stdout: "null", stderr: "null" }).output().catch(() =>
      null
    );
  if ((await chattr("+i"))?.success !== true) return undefined;
  return async () => void await chattr("-i");
}

sqliteTest("SqlitePersistence: load() says a read-only file is not writable, naming it", async (f) => {
  // Issue 15 item 14: this said "disk I/O error".
  await f.store.load();
  await f.store.close();
  const undo = await makeReadOnly(f.path);
  if (undo === undefined) {
    console.warn(
      "skipped: cannot make a file read-only here (not root without chattr, or a file system without it)",
    );
    return;
  }
  try {
    await assert.rejects(f.open().load(), (error: Error) => {
      assert.match(error.message, new RegExp(`the file ${f.path} is not writable`));
      assert.doesNotMatch(error.message, /disk I\/O error$/);
      return true;
    });
  } finally {
    await undo();
  }
}, { run: true });

sqliteTest("SqlitePersistence: load() names the file, table and row of a row it cannot read", async (f) => {
  // Issue 15 item 14: this exited with a bare JSON parse error.
  await f.store.load();
  await f.store.commit([session("dev-7")]);
  await f.store.close();
  withRawDb(
    f.path,
    (db) => db.exec("UPDATE sessions SET subscriptions = '[[\"a\", 1' WHERE client_id = 'dev-7'"),
  );
  await assert.rejects(f.open().load(), (error: Error) => {
    assert.ok(error.message.includes(f.path), error.message);
    assert.match(
      error.message,
      /table sessions, row client_id "dev-7": column subscriptions is not valid JSON/,
    );
    return true;
  });
});
