/**
 * Reconnecting after a lost connection: which errors end the client instead (a refusal another attempt will not
 * fix, a server that moved), the backoff loop between attempts, and resuming the session on the new connection
 * (release QoS 2 messages, subscribe again when the server kept no session, send what waited) [MQTT-4.4.0-1 (5.0)].
 *
 * @module
 */

import { MqttError } from "../mqtt_error.ts";
import type { DisconnectPacket } from "../packet/disconnect.ts";
import { REASON_CODE, reasonName } from "../packet/reason_code.ts";
import { backoffDelay } from "./backoff.ts";
import type { Connection } from "./connection.ts";
import type { IncomingFlows } from "./incoming.ts";
import type { ReconnectOptions } from "./options.ts";
import type { OutgoingFlows } from "./outgoing.ts";
import type { Requests } from "./requests.ts";

/** CONNACK refusals that another attempt will not fix. */
const PERMANENT_REFUSALS: ReadonlySet<number> = new Set([
  REASON_CODE.UnsupportedProtocolVersion,
  REASON_CODE.ClientIdentifierNotValid,
  REASON_CODE.BadUserNameOrPassword,
  REASON_CODE.NotAuthorized,
  REASON_CODE.Banned,
  REASON_CODE.BadAuthenticationMethod,
  REASON_CODE.TopicNameInvalid,
  REASON_CODE.PacketTooLarge,
  REASON_CODE.PayloadFormatInvalid,
  REASON_CODE.RetainNotSupported,
  REASON_CODE.QoSNotSupported,
  REASON_CODE.UseAnotherServer,
  REASON_CODE.ServerMoved,
]);

/** Server DISCONNECT reasons after which reconnecting would be wrong. */
const FINAL_DISCONNECTS: ReadonlySet<number> = new Set([
  REASON_CODE.SessionTakenOver,
  REASON_CODE.UseAnotherServer,
  REASON_CODE.ServerMoved,
]);

/** Errors that end the client instead of triggering another reconnect attempt. */
const FINAL_ERRORS = new WeakSet<Error>();

/** Marks `error` as one no reconnect can fix; returns it. */
export function markFinal<E extends Error>(error: E): E {
  FINAL_ERRORS.add(error);
  return error;
}

/** Whether `error` ends the client rather than starting another attempt. */
export function isFinal(error: Error): boolean {
  return FINAL_ERRORS.has(error);
}

/** Whether a CONNACK refusal with `reasonCode` (a v5 code) is permanent. */
export function isPermanentRefusal(reasonCode: number): boolean {
  return PERMANENT_REFUSALS.has(reasonCode);
}

/** The error a server's DISCONNECT ends the connection with; final when it forbids reconnecting (taken over, moved). */
export function disconnectError(packet: DisconnectPacket): MqttError {
  const reason = packet.properties?.reasonString;
  const error = new MqttError(
    packet.reasonCode,
    `The server sent DISCONNECT: ${reasonName(packet.reasonCode)}${
      reason === undefined ? "" : ` (${reason})`
    }`,
  );
  return FINAL_DISCONNECTS.has(packet.reasonCode) ? markFinal(error) : error;
}

/** What the reconnect loop asks of the client, whose state it changes. */
export interface ReconnectSteps {
  /**
   * Waits `delayMs` before attempt `attempt` (the client is "reconnecting" meanwhile); resolves false when
   * close() cut the wait short.
   */
  wait(attempt: number, delayMs: number, error: Error): Promise<boolean>;
  /** One connect attempt. */
  attempt(attempt: number): Promise<unknown>;
  /** Whether close() is under way or done (read fresh: it changes across awaits). */
  ending(): boolean;
  /** Ends the client with `error`. */
  finish(error: Error): void;
}

/**
 * Tries to connect again after `error`, waiting the backoff delay before each attempt, until one succeeds, the
 * client closes, an error is final, or `options.maxAttempts` attempts failed in a row.
 */
export async function reconnectLoop(
  error: Error,
  options: ReconnectOptions,
  random: (() => number) | undefined,
  steps: ReconnectSteps,
): Promise<void> {
  const maxAttempts = options.maxAttempts ?? Infinity;
  let last = error;
  for (let failures = 0;; failures++) {
    if (failures >= maxAttempts) {
      steps.finish(last);
      return;
    }
    if (!await steps.wait(failures + 1, backoffDelay(failures, options, random), last)) return;
    try {
      await steps.attempt(failures + 1);
      return;
    } catch (caught) {
      if (steps.ending()) return;
      last = caught instanceof Error ? caught : new Error(String(caught));
      if (isFinal(last)) {
        steps.finish(last);
        return;
      }
    }
  }
}

/** The parts of a client's session that a new connection resumes. */
export interface SessionParts {
  readonly outgoing: OutgoingFlows;
  readonly incoming: IncomingFlows;
  readonly requests: Requests;
  /** Subscribe again when the server kept no session. */
  readonly resubscribe: boolean;
}

/** Picks up where the last connection stopped [MQTT-4.4.0-1 (5.0)], in the order the packets must go out. */
export function resumeSession(conn: Connection, sessionPresent: boolean, parts: SessionParts): void {
  parts.incoming.connected(sessionPresent);
  parts.outgoing.resume(conn, sessionPresent);
  if (!sessionPresent && parts.resubscribe) parts.requests.resubscribe(conn);
  parts.requests.resume(conn);
  parts.outgoing.pump(conn);
}
