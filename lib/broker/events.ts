/**
 * The lifecycle event hub: who connected, who went and why, who was refused. Metrics, the admin event stream and
 * the client history listen here; the connection only emits. Emitting costs one length check when nobody listens,
 * so the sites ask {@linkcode BrokerEvents.listening} before they build an event.
 *
 * The reason a client went or was refused is classified in one place, here ({@linkcode disconnectReason},
 * {@linkcode refusalReason}), from the reason code the broker answered with.
 *
 * @module
 */

import { REASON_CODE } from "../packet/reason_code.ts";

/** Why a connected client went. */
export const DISCONNECT_REASONS = [
  /** the client sent DISCONNECT */
  "normal",
  /** nothing heard for 1.5 times the keep alive */
  "keepalive",
  /** the client broke the protocol or a limit, or the broker failed on its behalf */
  "protocol_error",
  /** another connection took the session over */
  "takeover",
  /** an operator: a kick, or credentials revoked on reload */
  "admin",
  /** the socket closed or failed under the connection */
  "socket_error",
  /** the broker is shutting down */
  "shutdown",
  /** an offline session reached its expiry (no connection closed then) */
  "session_expired",
] as const;

/** One of {@linkcode DISCONNECT_REASONS}. */
export type DisconnectReason = (typeof DISCONNECT_REASONS)[number];

/** Why a connection was refused before it became a client. */
export const REFUSAL_REASONS = [
  /** the connection limit (global or per address) was reached */
  "limit",
  /** too many CONNECTs from this address */
  "rate",
  /** no CONNECT within the connect timeout */
  "timeout",
  /** bad credentials, not authorized, banned, unknown authentication method */
  "auth",
  /** CONNECT (or what came instead) broke the protocol */
  "protocol",
  /** the broker is busy, unavailable, over a quota or shutting down */
  "server_busy",
] as const;

/** One of {@linkcode REFUSAL_REASONS}. */
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** What happened to a client. */
export type ClientEventKind = "connected" | "disconnected" | "refused" | "kicked" | "takeover";

/** One lifecycle event. */
export interface ClientEvent {
  /** What happened. */
  readonly event: ClientEventKind;
  /** The client identifier; empty when refused before CONNECT was read. */
  readonly clientId: string;
  /** The authenticated user name, if any. */
  readonly username?: string;
  /** The peer as `host:port`. */
  readonly remote: string;
  /** The listener's name, when known. */
  readonly listener?: string;
  /** The protocol CONNECT asked for, once known. */
  readonly protocol?: "3.1" | "3.1.1" | "5.0";
  /** One of {@linkcode DISCONNECT_REASONS} or {@linkcode REFUSAL_REASONS}; `""` for `connected`. */
  readonly reason: string;
  /** The reason code sent or received (v5 DISCONNECT, CONNACK), when there was one. */
  readonly reasonCode?: number;
  /** When, epoch ms. */
  readonly at: number;
}

/** Listens to {@linkcode BrokerEvents}. */
export type ClientEventListener = (event: ClientEvent) => void;

/**
 * The hub. A listener that throws is dropped from that one emit's consequences only: the broker goes on and the
 * other listeners still hear the event.
 *
 * @example
 * ```ts
 * import { BrokerEvents } from "./events.ts";
 * const events = new BrokerEvents();
 * const seen: string[] = [];
 * const off = events.on((e) => seen.push(`${e.event} ${e.clientId}`));
 * events.emit({ event: "connected", clientId: "a", remote: "127.0.0.1:1", reason: "", at: 0 });
 * off();
 * console.assert(seen[0] === "connected a" && !events.listening);
 * ```
 */
export class BrokerEvents {
  /** Copied on change, so an emit is a plain loop even when a listener unsubscribes during it. */
  #listeners: readonly ClientEventListener[] = [];

  /** Whether anyone listens: emit sites check this before they build an event. */
  get listening(): boolean {
    return this.#listeners.length !== 0;
  }

  /** Calls `listener` with every event from now on; returns the function that stops it. */
  on(listener: ClientEventListener): () => void {
    this.#listeners = [...this.#listeners, listener];
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  /** Hands `event` to every listener. */
  emit(event: ClientEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A listener's bug must not break a connection's close.
      }
    }
  }
}

/**
 * Why a connected client went, from the reason code of the broker's DISCONNECT (v5; sent or not on 3.x), or
 * `undefined` when the socket went away without one. A client's own DISCONNECT is `normal` and does not come here.
 */
export function disconnectReason(reasonCode: number | undefined): DisconnectReason {
  switch (reasonCode) {
    case undefined:
      return "socket_error";
    case REASON_CODE.KeepAliveTimeout:
      return "keepalive";
    case REASON_CODE.SessionTakenOver:
      return "takeover";
    case REASON_CODE.AdministrativeAction:
    case REASON_CODE.NotAuthorized: // credentials revoked by a reload
      return "admin";
    case REASON_CODE.ServerShuttingDown:
      return "shutdown";
    default:
      return "protocol_error";
  }
}

/** Why a CONNECT was refused, from the CONNACK reason code (v5 numbering) the broker answered or would have. */
export function refusalReason(reasonCode: number): RefusalReason {
  switch (reasonCode) {
    case REASON_CODE.ConnectionRateExceeded:
      return "rate";
    case REASON_CODE.BadUserNameOrPassword:
    case REASON_CODE.NotAuthorized:
    case REASON_CODE.Banned:
    case REASON_CODE.BadAuthenticationMethod:
      return "auth";
    case REASON_CODE.ServerBusy:
    case REASON_CODE.ServerUnavailable:
    case REASON_CODE.ServerShuttingDown:
    case REASON_CODE.QuotaExceeded:
      return "server_busy";
    default:
      return "protocol";
  }
}

/** "3.1", "3.1.1" or "5.0" for a protocol level. */
export function protocolName(version: number): "3.1" | "3.1.1" | "5.0" {
  return version === 3 ? "3.1" : version === 4 ? "3.1.1" : "5.0";
}

/** Why a connection closed: a connected client's {@linkcode DisconnectReason}, or a {@linkcode RefusalReason}. */
export type CloseCause = DisconnectReason | RefusalReason;

/**
 * The one place a closing connection becomes events: a connected client's close is `disconnected` (a socket
 * error when no cause was given), plus `takeover` or `kicked` (v5 0x98 Administrative action); a close before
 * CONNACK with a cause is `refused` (without one, the peer went away: nothing). Call it before the state changes.
 */
export function emitConnectionEnd(
  events: BrokerEvents,
  peer: EventPeer,
  end: {
    readonly state: "awaiting-connect" | "authenticating" | "connected" | "closed";
    readonly cause: CloseCause | undefined;
    readonly reasonCode: number | undefined;
    readonly at: number;
    readonly username: string | undefined;
  },
): void {
  const { cause, reasonCode, at } = end;
  if (end.state === "connected") {
    const reason = cause ?? "socket_error";
    emitClientEvent(events, peer, { event: "disconnected", reason, reasonCode, at });
    if (reason === "takeover") emitClientEvent(events, peer, { event: "takeover", reason, reasonCode, at });
    if (reasonCode === REASON_CODE.AdministrativeAction) {
      emitClientEvent(events, peer, { event: "kicked", reason, reasonCode, at });
    }
  } else if (cause !== undefined && end.state !== "closed") {
    const known = end.state === "authenticating";
    const username = end.username;
    emitClientEvent(events, peer, { event: "refused", reason: cause, reasonCode, at, known, username });
  }
}

/** What an event is built from: a connection, as the emit sites see it. */
export interface EventPeer {
  /** The client identifier; empty before CONNECT. */
  readonly clientId: string;
  /** Who authenticated. */
  readonly identity: { readonly username?: string };
  /** Where it came from. */
  readonly info: { readonly remoteAddress: string; readonly listener?: string };
  /** The protocol level CONNECT asked for (4 before CONNECT). */
  readonly protocolVersion: number;
}

/**
 * Emits one event about `peer` (call it only when {@linkcode BrokerEvents.listening}). `known` is false before
 * CONNECT was read: then there is no protocol to name.
 */
export function emitClientEvent(
  events: BrokerEvents,
  peer: EventPeer,
  change: {
    readonly event: ClientEventKind;
    readonly reason: string;
    readonly reasonCode?: number | undefined;
    readonly at: number;
    readonly known?: boolean;
    /** The user name CONNECT gave, for a refusal before authentication settled who it is. */
    readonly username?: string | undefined;
  },
): void {
  // Built field by field, not with spreads: this runs on every connect and disconnect while someone listens.
  const event: { -readonly [K in keyof ClientEvent]: ClientEvent[K] } = {
    event: change.event,
    clientId: peer.clientId,
    remote: peer.info.remoteAddress,
    reason: change.reason,
    at: change.at,
  };
  const username = change.username ?? peer.identity.username;
  if (username !== undefined) event.username = username;
  const listener = peer.info.listener;
  if (listener !== undefined) event.listener = listener;
  if (change.known !== false) event.protocol = protocolName(peer.protocolVersion);
  if (change.reasonCode !== undefined) event.reasonCode = change.reasonCode;
  events.emit(event);
}
