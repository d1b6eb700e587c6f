/**
 * {@linkcode MemoryPersistence}: the {@linkcode Persistence} that keeps everything in maps. It is the oracle of the
 * persistence contract suite and the store behind `--persistence memory`; nothing survives the process.
 *
 * @module
 */

import type {
  LoadedSession,
  Message,
  OutgoingMessage,
  PendingWill,
  PersistedState,
  Persistence,
  PersistenceOp,
  StoredSession,
} from "./persistence.ts";

interface SessionRecord {
  session: StoredSession;
  readonly outgoing: Map<number, OutgoingMessage>;
  readonly incoming: Set<number>;
}

/**
 * A {@linkcode Persistence} in memory. {@linkcode MemoryPersistence.load} returns what was committed, so loading
 * the same instance again behaves like a broker restart (close() keeps the data).
 *
 * Committed objects are kept by reference, not copied: the broker treats a {@linkcode Message} (payload bytes
 * included) as immutable once it is handed to {@linkcode MemoryPersistence.commit}. `load()` returns fresh arrays
 * and session objects around those shared messages.
 *
 * @example
 * ```ts
 * import { MemoryPersistence } from "./memory_persistence.ts";
 * const store = new MemoryPersistence();
 * await store.load();
 * await store.commit([{ kind: "deleteRetained", topic: "a/b" }]);
 * await store.close();
 * ```
 */
export class MemoryPersistence implements Persistence {
  /** Always `"memory"`. */
  readonly name: string = "memory";
  readonly #retained = new Map<string, Message>();
  readonly #sessions = new Map<string, SessionRecord>();
  readonly #wills = new Map<string, PendingWill>();

  /** Returns what was committed; never throws. */
  load(): Promise<PersistedState> {
    const sessions: LoadedSession[] = [];
    for (const record of this.#sessions.values()) {
      const outgoing = [...record.outgoing.values()].sort((a, b) => a.seq - b.seq);
      sessions.push({
        ...record.session,
        subscriptions: [...record.session.subscriptions],
        outgoing,
        incoming: [...record.incoming].sort((a, b) => a - b),
      });
    }
    return Promise.resolve({
      retained: [...this.#retained.values()],
      sessions,
      wills: [...this.#wills.values()],
    });
  }

  /**
   * Applies `ops` in order, all or none: if one fails (putOutgoing or putIncoming for a session that is not
   * stored), the ones before it are undone and the promise rejects.
   */
  commit(ops: readonly PersistenceOp[]): Promise<void> {
    const undo: (() => void)[] = [];
    try {
      for (const op of ops) undo.push(this.#apply(op));
    } catch (error) {
      for (let i = undo.length - 1; i >= 0; i--) undo[i]!();
      return Promise.reject(error);
    }
    return Promise.resolve();
  }

  /** Nothing to flush; the data stays for the next {@linkcode MemoryPersistence.load}. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Applies one op and returns the function that reverts it. */
  #apply(op: PersistenceOp): () => void {
    switch (op.kind) {
      case "putRetained":
        return restoreEntry(
          this.#retained,
          op.message.topic,
          () => this.#retained.set(op.message.topic, op.message),
        );
      case "deleteRetained":
        return restoreEntry(this.#retained, op.topic, () => this.#retained.delete(op.topic));
      case "putSession": {
        const record = this.#sessions.get(op.session.clientId);
        if (record === undefined) {
          this.#sessions.set(op.session.clientId, {
            session: op.session,
            outgoing: new Map(),
            incoming: new Set(),
          });
          return () => this.#sessions.delete(op.session.clientId);
        }
        const previous = record.session;
        record.session = op.session;
        return () => record.session = previous;
      }
      case "deleteSession": {
        const undoWill = restoreEntry(this.#wills, op.clientId, () => this.#wills.delete(op.clientId));
        const undoSession = restoreEntry(
          this.#sessions,
          op.clientId,
          () => this.#sessions.delete(op.clientId),
        );
        return () => {
          undoSession();
          undoWill();
        };
      }
      case "putOutgoing": {
        const outgoing = this.#record(op).outgoing;
        return restoreEntry(outgoing, op.entry.seq, () => outgoing.set(op.entry.seq, op.entry));
      }
      case "deleteOutgoing": {
        const outgoing = this.#sessions.get(op.clientId)?.outgoing;
        if (outgoing === undefined) return noop;
        return restoreEntry(outgoing, op.seq, () => outgoing.delete(op.seq));
      }
      case "putIncoming": {
        const incoming = this.#record(op).incoming;
        if (incoming.has(op.packetId)) return noop;
        incoming.add(op.packetId);
        return () => incoming.delete(op.packetId);
      }
      case "deleteIncoming": {
        const incoming = this.#sessions.get(op.clientId)?.incoming;
        if (incoming === undefined || !incoming.delete(op.packetId)) return noop;
        return () => incoming.add(op.packetId);
      }
      case "putWill":
        return restoreEntry(this.#wills, op.will.clientId, () => this.#wills.set(op.will.clientId, op.will));
      case "deleteWill":
        return restoreEntry(this.#wills, op.clientId, () => this.#wills.delete(op.clientId));
    }
  }

  #record(op: { readonly kind: string; readonly clientId: string }): SessionRecord {
    const record = this.#sessions.get(op.clientId);
    if (record === undefined) throw noSessionError(op.kind, op.clientId, this.name);
    return record;
  }
}

function noSessionError(kind: string, clientId: string, where: string): Error {
  return new Error(
    `Cannot commit ${kind} for client ${JSON.stringify(clientId)} to ${where}: no stored session ` +
      `(commit putSession first)`,
  );
}

function noop(): void {}

/** Runs `change` on `map[key]` and returns the function that puts back what was there. */
function restoreEntry<K, V>(map: Map<K, V>, key: K, change: () => void): () => void {
  const had = map.has(key);
  const previous = map.get(key);
  change();
  return had ? () => map.set(key, previous as V) : () => map.delete(key);
}
