/**
 * CONNECT (section 3.1): the checks before authentication, authentication (which may become an AUTH exchange,
 * see `auth.ts`), then the session and the CONNACK. The rules themselves are the pure functions of
 * `connect_negotiation.ts`; this file applies their answers to a connection.
 *
 * @module
 */

import type { ConnectPacket } from "../../packet/connect.ts";
import type { StoredSession } from "../storage/persistence.ts";
import { REASON_CODE, reasonName } from "../../packet/reason_code.ts";
import type { AuthOutcome } from "../core.ts";
import type { Connection } from "../connection.ts";
import { hostOf, TokenBucket } from "../limits.ts";
import { logs, printable } from "../logger.ts";
import { emitClientEvent, refusalReason } from "../events.ts";
import {
  checkConnect,
  clientMaxPacketSize,
  type ConnectRefusal,
  type ConnectTerms,
  negotiateConnack,
  refusalConnack,
  successConnack,
} from "./connect_negotiation.ts";

/** What CONNECT asked for, kept while authentication runs. */
export interface PendingConnect {
  /** The CONNECT without its password, its will copied out of the read buffer. */
  readonly packet: ConnectPacket;
  /** What the checks before authentication settled. */
  readonly terms: ConnectTerms;
  /** Aborted when the connection closes first: the authenticator may drop its work (`ConnectInfo.signal`). */
  readonly abort: AbortController;
}

/** CONNECT received on a new connection. */
export function onConnect(connection: Connection, packet: ConnectPacket): void | Promise<void> {
  const core = connection.core;
  const options = core.options;
  connection.protocolVersion = packet.protocolVersion;
  connection.beginAuthentication();
  // The client's Maximum Packet Size and Request Problem Information shape a refusing CONNACK too.
  connection.packetSizeLimit = clientMaxPacketSize(packet);
  connection.problemInfo = packet.protocolVersion !== 5 || packet.properties?.requestProblemInformation !== 0;
  connection.clientId = packet.clientId;

  const terms = checkConnect(packet, options);
  if (terms.kind === "refuse") return refuse(connection, terms);
  if (terms.assignClientId) connection.clientId = core.assignClientId();
  if (
    options.connectRatePerAddress !== Infinity &&
    !core.connectLimiter.take(hostOf(connection.info.remoteAddress))
  ) {
    return refuse(connection, {
      kind: "refuse",
      reasonCode: REASON_CODE.ConnectionRateExceeded,
      reason: "connection rate exceeded for this address",
    });
  }
  connection.sendWindow = terms.sendWindow;
  connection.topicAliasMaximum = terms.topicAliasMaximum;
  const now = core.clock.monotonic();
  if (options.messageRatePerClient !== Infinity) {
    connection.messageRate = new TokenBucket(options.messageRatePerClient, options.messageRatePerClient, now);
  }
  if (options.publishBytesPerSecond !== Infinity) {
    connection.byteQuota = new TokenBucket(options.publishBytesPerSecond, options.publishBytesPerSecond, now);
  }

  const abort = new AbortController();
  connection.pendingConnect = { packet: keptConnect(packet), terms, abort };
  // An authenticator that answers at once gets its CONNACK out in this turn, with no promise in between.
  const outcome = core.authenticate(connection, packet, abort.signal);
  if (outcome instanceof Promise) return outcome.then((result) => afterAuth(connection, result));
  return afterAuth(connection, outcome);
}

/**
 * What of a CONNECT is kept while its authentication waits: not the password (the authenticator has its own copy,
 * and a hash may wait long, issue 15 item 8), and the will's payload copied, as it is a view of the read buffer
 * that the connection reads into again meanwhile (property values are copies already).
 */
function keptConnect(packet: ConnectPacket): ConnectPacket {
  const { password: _password, ...kept } = packet;
  const will = packet.will;
  return will === undefined ? kept : { ...kept, will: { ...will, payload: will.payload.slice() } };
}

/** The authenticator (or the last step of an enhanced authentication) has decided. */
export function afterAuth(connection: Connection, outcome: AuthOutcome): void | Promise<void> {
  if (connection.state !== "authenticating") return;
  if ("challenge" in outcome) {
    connection.sendAuth(REASON_CODE.ContinueAuthentication, outcome.challenge);
    return;
  }
  if (outcome.reasonCode !== REASON_CODE.Success) {
    return refuse(connection, {
      kind: "refuse",
      reasonCode: outcome.reasonCode,
      reason: outcome.reason ?? "not authorized",
    });
  }
  return finishConnect(connection, outcome);
}

function finishConnect(
  connection: Connection,
  auth: Extract<AuthOutcome, { reasonCode: number }>,
): void | Promise<void> {
  const core = connection.core;
  const { packet, terms } = connection.pendingConnect!;
  connection.pendingConnect = undefined;
  const clientId = connection.clientId;
  const plan = negotiateConnack({
    packet,
    options: core.options,
    brokerProperties: core.connackProperties,
    terms,
    clientId,
    authProperties: auth.properties,
  });
  if (plan.kind === "close") {
    core.logger.info(
      `refused client ${
        printable(clientId || "(empty id)")
      } from ${connection.info.remoteAddress}: ${plan.reason}`,
      {
        event: "client.refused",
        clientId,
        remote: connection.info.remoteAddress,
        protocol: versionName(packet.protocolVersion),
        reason: "protocol",
      },
    );
    connection.close(plan.reason, false, "protocol");
    return;
  }

  connection.identity = auth.username === undefined ? { clientId } : { clientId, username: auth.username };
  connection.will = packet.will;
  connection.armedWill = packet.will !== undefined;
  // In a cluster the client id is claimed first (maybe taken over from another node) and the will stored. The
  // connection stays "authenticating" meanwhile, so packets read after CONNECT wait for the answer; while another
  // node lets go of the session, the CONNACK may go first ("resuming"), the packets still waiting.
  const claimed = core.cluster?.beforeConnack(
    connection,
    (stored) => answerEarly(connection, packet, stored, plan.properties),
  );
  if (claimed !== undefined) {
    return claimed.then((refusal) => {
      if (connection.isClosed) return;
      const answered = connection.state === "resuming";
      if (refusal === undefined) {
        openAndAck(connection, packet, terms.keepAlive, plan.expiry, plan.properties, answered);
      } else if (!answered) {
        refuse(connection, refusal);
      } else {
        // A DISCONNECT cannot say 0x88 (Server unavailable): 0x89 (Server busy) is the nearest.
        const code = refusal.reasonCode === REASON_CODE.ServerUnavailable
          ? REASON_CODE.ServerBusy
          : refusal.reasonCode;
        connection.disconnect(code, refusal.reason);
      }
    });
  }
  openAndAck(connection, packet, terms.keepAlive, plan.expiry, plan.properties, false);
}

/**
 * The CONNACK of a CONNECT whose session another cluster node holds, sent before that node has let go, when the
 * session record stored then (`stored`, without its queues) settles Session Present: a clean start (0) or a
 * stored session of the same user that has not expired (1). A session's record is stored before any message
 * queued for it, so a CONNECT whose record is missing waits: what is committed for it may still be on its way.
 * Not for a CONNECT with a will, which is stored by the claim's last step (before its CONNACK, so that a node
 * dying after the CONNACK leaves it to its adopter). Returns the Session Present sent, or `undefined`.
 */
function answerEarly(
  connection: Connection,
  packet: ConnectPacket,
  stored: StoredSession | undefined,
  properties: Parameters<typeof successConnack>[1],
): boolean | undefined {
  if (connection.state !== "authenticating" || packet.will !== undefined) return undefined;
  const core = connection.core;
  // Another user's session is refused when it is opened (`sessions.ts`): that answer waits for the claim.
  if (stored !== undefined && stored.username !== connection.identity.username) return undefined;
  let present: boolean;
  if (packet.cleanStart) present = false;
  else if (stored === undefined || expired(stored, core.clock.now())) return undefined;
  else present = true;
  connection.acknowledged();
  connection.send(successConnack(packet.protocolVersion, properties, core.connackProperties, present));
  connection.flush();
  return present;
}

/** Whether a stored session has outlived its expiry interval (it would end as it is restored). */
function expired(stored: StoredSession, now: number): boolean {
  const at = stored.disconnectedAt;
  return at !== undefined && stored.expiryInterval !== NEVER_EXPIRES &&
    at + stored.expiryInterval * 1000 <= now;
}

const NEVER_EXPIRES = 0xFFFFFFFF;

/**
 * Opens the session and answers CONNACK (Session Present as the session says), unless it was `answered` while
 * the session was taken from another node.
 */
function openAndAck(
  connection: Connection,
  packet: ConnectPacket,
  keepAlive: number,
  expiry: number,
  properties: Parameters<typeof successConnack>[1],
  answered: boolean,
): void {
  const core = connection.core;
  const clientId = connection.clientId;
  const { session, present } = core.openSession(connection, packet, expiry);
  connection.session = session;
  connection.established(keepAlive);
  if (!answered) {
    connection.send(successConnack(packet.protocolVersion, properties, core.connackProperties, present));
    // A resumed session's backlog is encoded by attach() below: the CONNACK's write starts first, so the client
    // does not wait for that encoding. It stays the first packet sent [MQTT-3.2.0-1 (5.0)] [MQTT-3.2.0-1 (3.1.1)].
    if (present) connection.flush();
  }
  if (logs(core.logger, "info")) {
    core.logger.info(
      `client ${printable(clientId)} connected from ${connection.info.remoteAddress} (MQTT ${
        versionName(packet.protocolVersion)
      }, clean ${packet.cleanStart}, keep alive ${keepAlive}s${present ? ", session resumed" : ""})`,
      {
        event: "client.connected",
        clientId,
        username: connection.identity.username,
        remote: connection.info.remoteAddress,
        protocol: versionName(packet.protocolVersion),
        keepAlive,
        cleanStart: packet.cleanStart,
        sessionPresent: present,
      },
    );
  }
  if (core.events.listening) {
    emitClientEvent(core.events, connection, { event: "connected", reason: "", at: core.clock.now() });
  }
  core.attach(connection, session);
}

/** Answers a CONNECT with a failure reason code and closes (v3: the closest 3.1.1 return code, or nothing). */
export function refuse(connection: Connection, refusal: ConnectRefusal): void {
  const bytes = refusalConnack(
    connection.protocolVersion,
    refusal,
    connection.problemInfo,
    connection.packetSizeLimit,
  );
  // 3.1.1 has no return code for a CONNECT that breaks the rules: close without CONNACK [MQTT-3.2.2-6 (3.1.1)].
  if (bytes !== undefined) connection.send(bytes);
  const reason = refusalReason(refusal.reasonCode);
  connection.core.logger.info(
    `refused client ${
      printable(connection.clientId || "(empty id)")
    } from ${connection.info.remoteAddress}: ` +
      `${printable(refusal.reason)}${bytes === undefined ? "" : ` (${reasonName(refusal.reasonCode)})`}`,
    {
      event: reason === "auth" ? "auth.failed" : "client.refused",
      clientId: connection.clientId,
      username: connection.pendingConnect?.packet.username,
      remote: connection.info.remoteAddress,
      protocol: versionName(connection.protocolVersion),
      reason,
      reasonCode: refusal.reasonCode,
    },
  );
  connection.close(refusal.reason, false, reason, refusal.reasonCode);
}

/** "3.1", "3.1.1" or "5.0". */
export function versionName(version: number): string {
  return version === 3 ? "3.1" : version === 4 ? "3.1.1" : "5.0";
}
