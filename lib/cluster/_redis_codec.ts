/**
 * How the Redis engine stores messages, sessions and wills: JSON with short field names, binary as base64, v5
 * properties as their wire bytes (`_property_codec.ts`, the same encoding SQLite stores).
 *
 * @module
 */

import type { QoS } from "../packet/packet_type.ts";
import { decodeProperties, encodeProperties } from "../broker/storage/_property_codec.ts";
import type {
  Message,
  OutgoingMessage,
  OutgoingState,
  PendingWill,
  StoredSession,
} from "../broker/storage/persistence.ts";
import type { NodeStats } from "./engine.ts";

interface MessageJson {
  t: string;
  p: string;
  q: QoS;
  r?: 1;
  x?: string;
  e?: number;
  o?: string;
}

interface OutgoingJson {
  n: number;
  m: MessageJson;
  q: QoS;
  r?: 1;
  s?: readonly number[];
  p?: number;
  st: OutgoingState;
}

interface WillJson {
  c: string;
  m: MessageJson;
  a: number;
  u?: string;
}

function messageJson(message: Message): MessageJson {
  const json: MessageJson = { t: message.topic, p: message.payload.toBase64(), q: message.qos };
  if (message.retain) json.r = 1;
  if (message.properties !== undefined) json.x = encodeProperties(message.properties).toBase64();
  if (message.expiresAt !== undefined) json.e = message.expiresAt;
  if (message.origin !== undefined) json.o = message.origin;
  return json;
}

function messageFromJson(json: MessageJson): Message {
  const message: { -readonly [K in keyof Message]: Message[K] } = {
    topic: json.t,
    payload: Uint8Array.fromBase64(json.p),
    qos: json.q,
    retain: json.r === 1,
  };
  if (json.x !== undefined) message.properties = decodeProperties(Uint8Array.fromBase64(json.x));
  if (json.e !== undefined) message.expiresAt = json.e;
  if (json.o !== undefined) message.origin = json.o;
  return message;
}

/** A message as stored (the retained hash, the ctl stream). */
export function encodeMessage(message: Message): string {
  return JSON.stringify(messageJson(message));
}

/** The inverse of {@linkcode encodeMessage}. */
export function decodeMessage(text: string): Message {
  return messageFromJson(JSON.parse(text) as MessageJson);
}

/** A session without its queues (its subscriptions are plain data). */
export function encodeSession(session: StoredSession): string {
  return JSON.stringify(session);
}

/** The inverse of {@linkcode encodeSession}. */
export function decodeSession(text: string): StoredSession {
  return JSON.parse(text) as StoredSession;
}

/** One outgoing entry of a session. */
export function encodeOutgoing(entry: OutgoingMessage): string {
  const json: OutgoingJson = { n: entry.seq, m: messageJson(entry.message), q: entry.qos, st: entry.state };
  if (entry.retain) json.r = 1;
  if (entry.subscriptionIds !== undefined) json.s = entry.subscriptionIds;
  if (entry.packetId !== undefined) json.p = entry.packetId;
  return JSON.stringify(json);
}

/** The inverse of {@linkcode encodeOutgoing}. */
export function decodeOutgoing(text: string): OutgoingMessage {
  const json = JSON.parse(text) as OutgoingJson;
  const entry: { -readonly [K in keyof OutgoingMessage]: OutgoingMessage[K] } = {
    seq: json.n,
    message: messageFromJson(json.m),
    qos: json.q,
    retain: json.r === 1,
    state: json.st,
  };
  if (json.s !== undefined) entry.subscriptionIds = json.s;
  if (json.p !== undefined) entry.packetId = json.p;
  return entry;
}

/** A pending will. */
export function encodeWill(will: PendingWill): string {
  const json: WillJson = { c: will.clientId, m: messageJson(will.message), a: will.sendAt };
  if (will.username !== undefined) json.u = will.username;
  return JSON.stringify(json);
}

/** The inverse of {@linkcode encodeWill}. */
export function decodeWill(text: string): PendingWill {
  const json = JSON.parse(text) as WillJson;
  const will: { -readonly [K in keyof PendingWill]: PendingWill[K] } = {
    clientId: json.c,
    message: messageFromJson(json.m),
    sendAt: json.a,
  };
  if (json.u !== undefined) will.username = json.u;
  return will;
}

/** A node's counters as hash fields. */
export function statsFields(stats: NodeStats): string[] {
  return [
    "clientsConnected",
    String(stats.clientsConnected),
    "messagesReceived",
    String(stats.messagesReceived),
    "messagesSent",
    String(stats.messagesSent),
    "subscriptions",
    String(stats.subscriptions),
  ];
}

/** The inverse of {@linkcode statsFields}. */
export function statsFromHash(node: string, hash: Record<string, string>): NodeStats {
  return {
    node,
    clientsConnected: Number(hash.clientsConnected ?? 0),
    messagesReceived: Number(hash.messagesReceived ?? 0),
    messagesSent: Number(hash.messagesSent ?? 0),
    subscriptions: Number(hash.subscriptions ?? 0),
  };
}
