/**
 * The client's state machine: where an `MqttClient` is, with what each state holds, and the view of it
 * callers see ({@linkcode ClientState}). Every handler of `client.ts` starts from it.
 *
 * @module
 */

import type { TimerId } from "../clock.ts";
import { MqttError } from "../mqtt_error.ts";
import { REASON_CODE } from "../packet/reason_code.ts";
import type { Connection } from "./connection.ts";
import type { Handshake } from "./handshake.ts";
import type { KeepAlive } from "./keepalive.ts";
import type { ClientState, ConnectResult } from "./options.ts";

/** Where the client is; every handler starts from it. */
export type State =
  | { kind: "new" }
  | { kind: "connecting"; attempt: number; handshake: Handshake }
  | {
    kind: "connected";
    conn: Connection;
    connack: ConnectResult;
    keepAlive: KeepAlive;
    disconnect: Error | undefined;
  }
  | { kind: "reconnecting"; attempt: number; delayMs: number; error: Error; timer: TimerId; wake: () => void }
  | { kind: "closing" }
  | { kind: "closed"; error: Error | undefined };

/** What callers see of `state`: its kind and what they may read, not the connection or timers behind it. */
export function publicState(state: State): ClientState {
  switch (state.kind) {
    case "connecting":
      return { kind: "connecting", attempt: state.attempt };
    case "connected":
      return { kind: "connected", connack: state.connack };
    case "reconnecting":
      return { kind: "reconnecting", attempt: state.attempt, delayMs: state.delayMs, error: state.error };
    case "closed":
      return state.error === undefined ? { kind: "closed" } : { kind: "closed", error: state.error };
    default:
      return { kind: state.kind };
  }
}

/**
 * Throws unless `operation` may be asked for in `state`: not before connect(), not once closing.
 *
 * @throws {Error} before connect().
 * @throws {MqttError} 0x80 once the client is closing or closed (caused by the error that closed it).
 */
export function assertUsable(state: State, operation: string): void {
  if (state.kind === "new") throw new Error(`Cannot ${operation}: call connect() first`);
  if (state.kind === "closing" || state.kind === "closed") {
    throw new MqttError(REASON_CODE.UnspecifiedError, `Cannot ${operation}: the client is ${state.kind}`, {
      ...(state.kind === "closed" && state.error !== undefined ? { cause: state.error } : {}),
    });
  }
}
