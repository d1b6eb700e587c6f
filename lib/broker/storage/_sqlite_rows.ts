/**
 * How the broker's state maps to the SQLite store's rows: a {@linkcode Message} as its seven columns,
 * subscriptions and subscription identifiers as JSON columns, v5 properties as their wire bytes, and the reading
 * of a whole store back into a {@linkcode PersistedState}. A JSON column that does not parse is reported with the
 * file, table and row. Private to `SqlitePersistence`.
 *
 * @module
 */

import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import { decodeProperties, encodeProperties } from "./_property_codec.ts";
import { errorMessage, StoreError } from "./_sqlite_errors.ts";
import type { ProtocolVersion, QoS } from "../../packet/packet_type.ts";
import type { Subscription } from "../../topic/subscription.ts";
import type {
  LoadedSession,
  Message,
  OutgoingMessage,
  OutgoingState,
  PendingWill,
  PersistedState,
} from "./persistence.ts";

/** A message's columns, in the order {@linkcode messageValues} gives them. */
export const MESSAGE_FIELDS = "topic, payload, qos, retain, properties, expires_at, origin";

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
 * Makes `statement` return rows as arrays, which `node:sqlite` builds about twice as fast as objects.
 * `setReturnArrays()` exists at run time (Deno 2.x, Node 24) but not yet in the bundled `node:sqlite` types.
 */
export function returningArrays(statement: StatementSync): StatementSync {
  const arrays = statement as StatementSync & { setReturnArrays?: (enabled: boolean) => void };
  if (typeof arrays.setReturnArrays !== "function") {
    throw new Error(
      "node:sqlite StatementSync.setReturnArrays() is missing; upgrade Deno",
    );
  }
  arrays.setReturnArrays(true);
  return statement;
}

/** The values of `message`'s {@linkcode MESSAGE_FIELDS} columns. */
export function messageValues(message: Message): SQLInputValue[] {
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

/** The `sessions.subscriptions` column of a session with `subscriptions`. */
export function subscriptionsJson(subscriptions: readonly Subscription[]): string {
  return JSON.stringify(subscriptions.map(subscriptionToTuple));
}

/**
 * Reads the whole store at `db` (`name` names it in errors). Each stored message is read once, however many
 * sessions queue it, and is noted in `ids` with its row id so the next commits can refer to it.
 *
 * @throws {StoreError} naming the table and row when a JSON column does not parse.
 */
export function readState(db: DatabaseSync, name: string, ids: WeakMap<Message, number>): PersistedState {
  const rows = (sql: string): unknown[][] => {
    return returningArrays(db.prepare(sql)).all() as unknown as unknown[][];
  };
  const json = (value: unknown, table: string, row: readonly unknown[], column: string): unknown =>
    parseJsonColumn(name, value, table, row, column);
  const retained = rows(`SELECT ${MESSAGE_FIELDS} FROM retained`).map((row) =>
    rowToMessage(row as MessageRow)
  );
  const wills = rows(`SELECT client_id, send_at, username, ${MESSAGE_FIELDS} FROM wills`).map((row) => {
    const will: Mutable<PendingWill> = {
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
    ids.set(message, row[0] as number);
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
        entry.subscriptionIds = json(row[5], "outgoing", row, "subscription_ids") as number[];
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
      subscriptions: (json(row[4], "sessions", row, "subscriptions") as SubscriptionTuple[]).map(
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

/** Parses a JSON column; a row that is not JSON is named (file, table, row) instead of a bare SyntaxError. */
function parseJsonColumn(
  name: string,
  value: unknown,
  table: string,
  row: readonly unknown[],
  column: string,
): unknown {
  try {
    if (typeof value !== "string") throw new Error(`a ${typeof value}, not text`);
    return JSON.parse(value);
  } catch (error) {
    throw new StoreError(
      `Cannot load ${name}: table ${table}, row client_id ${JSON.stringify(row[0])}: column ${column} ` +
        `is not valid JSON (${errorMessage(error)}); restore the file from a backup or remove that row`,
      { cause: error },
    );
  }
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
