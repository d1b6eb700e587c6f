/**
 * One client connection: the read loop (framer + decoder), the protocol state machine, keep-alive, the batched
 * output, and the one place where an error becomes the spec's answer (a CONNACK or DISCONNECT reason code, or a
 * closed socket for v3).
 *
 * @module
 */

import { MqttError, protocolError } from "../mqtt_error.ts";
import { Framer } from "../codec/framer.ts";
import { decodePacket } from "../packet/decode.ts";
import { isWellFormedUtf8 } from "../codec/utf8.ts";
import { VARINT_MAX } from "../codec/varint.ts";
import { PACKET_TYPE, packetName, type ProtocolVersion, type QoS } from "../packet/packet_type.ts";
import type { Packet } from "../packet/packet.ts";
import type { Properties } from "../packet/properties.ts";
import { connackCodeV3, REASON_CODE, reasonName, subackCodeV3 } from "../packet/reason_code.ts";
import { type ConnectPacket, type WillMessage } from "../packet/connect.ts";
import { encodeConnack } from "../packet/connack.ts";
import type { PublishPacket } from "../packet/publish.ts";
import { encodePuback } from "../packet/puback.ts";
import { encodePubrec } from "../packet/pubrec.ts";
import { encodePubrel } from "../packet/pubrel.ts";
import { encodePubcomp } from "../packet/pubcomp.ts";
import type { SubscribePacket } from "../packet/subscribe.ts";
import { encodeSuback } from "../packet/suback.ts";
import type { UnsubscribePacket } from "../packet/unsubscribe.ts";
import { encodeUnsuback } from "../packet/unsuback.ts";
import { encodePingresp } from "../packet/pingresp.ts";
import { type DisconnectPacket, encodeDisconnect } from "../packet/disconnect.ts";
import type { AuthPacket } from "../packet/auth.ts";
import { encodeAuth } from "../packet/auth.ts";
import {
  isWildcardFilter,
  parseSharedFilter,
  validateTopicFilter,
  validateTopicName,
} from "../topic/topic.ts";
import type { ByteStream } from "../transport/transport.ts";
import { Output, type OutputOwner } from "./output.ts";
import { logs } from "./logger.ts";
import type { Deadline } from "./deadlines.ts";
import { hostOf, TokenBucket } from "./limits.ts";
import type { Session, SessionLink } from "./session.ts";
import { EncodeCache } from "./session.ts";
import { RetainedBacklog, type RetainedHost } from "./retained_backlog.ts";
import type { Message } from "./storage/persistence.ts";
import type { AuthOutcome, BrokerCore } from "./core.ts";
import { EXPIRY_NEVER } from "./options.ts";
import type { ClientIdentity } from "./auth/auth.ts";

/** The connection's place in the protocol. */
export type ConnectionState =
  /** socket open, CONNECT not yet received [MQTT-3.1.0-1] */
  | "awaiting-connect"
  /** CONNECT received; authentication (possibly an AUTH exchange) in progress */
  | "authenticating"
  /** CONNACK sent with success */
  | "connected"
  /** closed, or closing */
  | "closed";

/**
 * The read buffer of a quiet connection, which its pending read pins: 256 B rather than 512 B saves 256 B per
 * idle connection (bench/load_bench.ts "idle"), and a CONNECT without a long will or password fits in one read.
 */
const READ_MIN = 256;
const READ_MAX = 64 * 1024;
/** A read shorter than this gives a grown buffer back (READ_MIN replaces it). */
const SHRINK_BELOW = 256;
/**
 * A socket that always has data waiting is read without a trip through the event loop: after this many
 * milliseconds spent on full reads in a row, its connection gives the others and the timers a turn. Without it
 * a flooding client held another client's PINGREQ for 14 s; with it, under 50 ms (tests/hostile/hostile_test.ts).
 */
const YIELD_MS = 10;

/** Where a connection came from. */
export interface ConnectionInfo {
  /** The peer as `host:port` (`[v6]:port`); per-address limits count its host part. */
  readonly remoteAddress: string;
  /** Whether the listener lets clients in without credentials. */
  readonly allowAnonymous: boolean;
  /** Verified TLS client certificate CN, if any. */
  readonly certificateCommonName?: string;
}

/** A client connection. */
export class Connection implements SessionLink, OutputOwner {
  readonly #core: BrokerCore;
  readonly #stream: ByteStream;
  readonly #framer: Framer;
  readonly #output: Output;
  /** Where the connection came from, as its listener reported it. */
  readonly info: ConnectionInfo;
  #state: ConnectionState = "awaiting-connect";
  /** The protocol CONNECT asked for; 4 (3.1.1) until then. */
  protocolVersion: ProtocolVersion = 4;
  /** The client identifier from CONNECT, or the one the broker assigned; empty before CONNECT. */
  clientId = "";
  /** Who the authorizer sees: set once authentication succeeds. */
  identity: ClientIdentity = { clientId: "" };
  /** The session attached when CONNECT was accepted. */
  session: Session | undefined;
  /** See {@linkcode SessionLink}. */
  sendWindow = 0;
  /** 0 for none; stored as a small integer, not as a boxed Infinity (16 bytes per connection). */
  #maxPacketSize = 0;
  topicAliasMaximum = 0;
  #keepAliveMs = 0;
  #lastActivity = 0;
  /** This connection's entry in the broker's deadline queue (connect timeout, then keep alive). */
  #deadline: Deadline<Connection> | undefined;
  #will: WillMessage | undefined;
  /** Created by the first Topic Alias (most connections never use one). */
  #inboundAliases: Map<number, string> | undefined;
  /** Inbound QoS 1 PUBLISH not yet acknowledged (counts against our Receive Maximum). */
  #inboundPending = 0;
  #ackChain: Promise<void> | undefined;
  /** v5 Request Problem Information: 0 means no Reason String / User Property on acks [MQTT-3.1.2-29]. */
  #problemInfo = true;
  #closed: Promise<void> | undefined;
  /** Retained messages a SUBSCRIBE still owes, made on the first SUBSCRIBE that matches any. */
  #retainedBacklog: RetainedBacklog | undefined;
  /** Whether CONNECT carried a will (stored durably while the connection lives). */
  #armedWill = false;
  /** PUBLISH rate and byte quota of this client (Infinity: off). */
  #messageRate: TokenBucket | undefined;
  #byteQuota: TokenBucket | undefined;
  /** What CONNECT asked for, kept while authentication runs. */
  #pendingConnect:
    | { packet: ConnectPacket; assigned: boolean; keepAlive: number; serverKeepAlive: number | undefined }
    | undefined;
  #disconnectReason = "connection lost";

  /** Serves one client on `stream`; nothing is read until {@linkcode Connection.run}. */
  constructor(core: BrokerCore, stream: ByteStream, info: ConnectionInfo) {
    this.#core = core;
    this.#stream = stream;
    this.info = info;
    this.#framer = new Framer({ maxPacketSize: core.options.maxPacketSize });
    this.#output = new Output(stream, this);
  }

  /** See {@linkcode OutputOwner.writeFailed}: the peer went away. */
  writeFailed(): void {
    this.close("write failed", true);
  }

  /** See {@linkcode OutputOwner.written}. */
  written(bytes: number): void {
    this.#core.stats.bytesSent += bytes;
  }

  /** The client's Maximum Packet Size (v5), or Infinity. */
  get maxPacketSize(): number {
    return this.#maxPacketSize === 0 ? Infinity : this.#maxPacketSize;
  }

  /** The protocol state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** See {@linkcode SessionLink.congested}. */
  get congested(): boolean {
    return this.#output.pending > this.#core.options.maxOutputBytes;
  }

  /** Bytes accepted for this client and not yet written. */
  get pendingOutput(): number {
    return this.#output.pending;
  }

  send(bytes: Uint8Array): void {
    if (this.#state === "closed") return;
    this.#output.send(bytes);
    this.#core.stats.packetsSent++;
  }

  sendPublish(bytes: Uint8Array, idOffset: number, packetId: number, dup: boolean): void {
    if (this.#state === "closed") return;
    this.#output.sendPublish(bytes, idOffset, packetId, dup);
    this.#core.stats.messagesSent++;
    this.#core.stats.packetsSent++;
  }

  sendPubrel(packetId: number): void {
    this.send(encodePubrel({ packetId, reasonCode: 0 }, this.protocolVersion));
  }

  /**
   * Reads and handles packets until the peer goes away or the connection is closed. Never rejects: an error
   * becomes the peer's answer here, so the broker need not attach a handler to every connection.
   */
  async run(): Promise<void> {
    const core = this.#core;
    let buffer = new Uint8Array(READ_MIN);
    let busy = 0;
    try {
      this.#lastActivity = core.clock.monotonic();
      this.#deadline = core.deadlines.schedule(this, this.#lastActivity + core.options.connectTimeout);
      while (this.#state !== "closed") {
        const n = await this.#stream.read(buffer);
        if (n === null) break;
        // Only a full read can start a run of busy reads: time those alone (two ops fewer per packet otherwise).
        const full = n === buffer.length;
        const readAt = full ? performance.now() : 0;
        core.stats.bytesReceived += n;
        this.#lastActivity = core.clock.monotonic();
        this.#framer.push(buffer.subarray(0, n));
        for (let pending = this.#frames(); pending !== undefined; pending = this.#frames()) {
          await pending;
          if (this.#isClosed()) return;
        }
        if (this.#isClosed()) return;
        if (full) busy += performance.now() - readAt;
        if (this.#output.pending > core.options.maxOutputBytes) {
          // A peer that sends and never reads (PINGREQ, QoS 1 PUBLISH: each is answered) would grow our output
          // without bound: read nothing more from it until it has taken what it is owed.
          await this.#output.drain();
          busy = 0;
        } else if (n < buffer.length) {
          busy = 0; // the socket is drained: the next read waits in the event loop
        } else if (busy > YIELD_MS) {
          busy = 0;
          // setTimeout, not setImmediate: after setImmediate the other sockets' reads still wait (another
          // client's PINGREQ took up to 850 ms beside a flood; 60 ms with setTimeout).
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
        // Grow while the peer keeps the buffer full; fall back to a small one when it goes quiet, so an idle
        // connection does not pin 64 KiB in its pending read (DESIGN.md, "Rules that make it fast").
        if (n === buffer.length && buffer.length < READ_MAX) buffer = new Uint8Array(buffer.length * 4);
        else if (n < SHRINK_BELOW && buffer.length > READ_MIN) buffer = new Uint8Array(READ_MIN);
      }
      if (this.#state !== "closed") this.close(this.#disconnectReason, true);
    } catch (error) {
      if (this.#state !== "closed") this.fail(error);
    }
  }

  #isClosed(): boolean {
    return this.#state === "closed";
  }

  /**
   * Handles the frames read so far, up to the first whose handler must be awaited (its promise is returned; call
   * again after it settles). Packets are decoded here rather than in run(): a variable of that async loop keeps
   * its last value while the next read waits, which held every idle client's CONNECT packet.
   */
  #frames(): Promise<void> | undefined {
    const stats = this.#core.stats;
    for (let frame = this.#framer.next(); frame !== undefined; frame = this.#framer.next()) {
      stats.packetsReceived++;
      const pending = this.#handle(decodePacket(frame.header, frame.body, this.protocolVersion));
      if (pending !== undefined) return pending;
      if (this.#isClosed()) return undefined;
    }
    return undefined;
  }

  #handle(packet: Packet): void | Promise<void> {
    switch (this.#state) {
      case "awaiting-connect":
        if (packet.type !== PACKET_TYPE.CONNECT) {
          throw protocolError(`Expected CONNECT, got ${packetName(packet.type)} [MQTT-3.1.0-1]`);
        }
        return this.#onConnect(packet);
      case "authenticating":
        if (packet.type === PACKET_TYPE.AUTH) return this.#onAuth(packet);
        throw protocolError(`Expected AUTH during authentication, got ${packetName(packet.type)}`);
      case "closed":
        return;
      case "connected":
        break;
    }
    switch (packet.type) {
      case PACKET_TYPE.PUBLISH:
        return this.#onPublish(packet);
      case PACKET_TYPE.PUBACK:
        this.session?.acknowledge(packet.packetId, this.#core.clock.now());
        this.#retainedBacklog?.pump(); // the window has room again
        return;
      case PACKET_TYPE.PUBREC:
        if (this.session?.received(packet.packetId, packet.reasonCode, this.#core.clock.now()) !== true) {
          // Unknown identifier: answer so the client's flow can end (section 4.3.3).
          this.send(
            encodePubrel(
              { packetId: packet.packetId, reasonCode: REASON_CODE.PacketIdentifierNotFound },
              this.protocolVersion,
            ),
          );
        }
        return;
      case PACKET_TYPE.PUBREL:
        return this.#onPubrel(packet.packetId);
      case PACKET_TYPE.PUBCOMP:
        this.session?.completed(packet.packetId, this.#core.clock.now());
        this.#retainedBacklog?.pump(); // the window has room again
        return;
      case PACKET_TYPE.SUBSCRIBE:
        return this.#onSubscribe(packet);
      case PACKET_TYPE.UNSUBSCRIBE:
        return this.#onUnsubscribe(packet);
      case PACKET_TYPE.PINGREQ:
        this.send(encodePingresp());
        return;
      case PACKET_TYPE.DISCONNECT:
        return this.#onDisconnect(packet);
      case PACKET_TYPE.AUTH:
        return this.#onReauth(packet);
      case PACKET_TYPE.CONNECT:
        throw protocolError("A second CONNECT on one connection [MQTT-3.1.0-2]");
      default:
        throw protocolError(`${packetName(packet.type)} is sent by servers, not clients`);
    }
  }

  // ---- CONNECT ---------------------------------------------------------------------------------------------

  #onConnect(packet: ConnectPacket): void | Promise<void> {
    const core = this.#core;
    const options = core.options;
    this.protocolVersion = packet.protocolVersion;
    this.#state = "authenticating";
    const v5 = packet.protocolVersion === 5;
    const props = packet.properties;
    // The client's Maximum Packet Size bounds every answer, a refusing CONNACK too [MQTT-3.1.2-24].
    // Clamped to the largest packet MQTT can express: the same limit, and it stays a small integer.
    if (v5) this.#maxPacketSize = Math.min(props?.maximumPacketSize ?? 0, VARINT_MAX + 5);

    let clientId = packet.clientId;
    let assigned = false;
    if (clientId === "") {
      // An empty id is allowed only for a clean session in 3.1.1, and always in 5.0 [MQTT-3.1.3-7] [MQTT-3.1.3-8].
      if (packet.protocolVersion === 3 || (packet.protocolVersion === 4 && !packet.cleanStart)) {
        return this.#refuse(
          REASON_CODE.ClientIdentifierNotValid,
          "empty client identifier without a clean session",
        );
      }
      clientId = core.assignClientId();
      assigned = true;
    } else if (packet.protocolVersion === 3 && clientId.length > 23) {
      return this.#refuse(
        REASON_CODE.ClientIdentifierNotValid,
        "MQTT 3.1 client identifier longer than 23 characters",
      );
    }
    this.clientId = clientId;

    if (
      options.connectRatePerAddress !== Infinity && !core.connectLimiter.take(hostOf(this.info.remoteAddress))
    ) {
      return this.#refuse(REASON_CODE.ConnectionRateExceeded, "connection rate exceeded for this address");
    }

    const redirect = options.redirect;
    if (redirect !== undefined) {
      // Server redirection (section 4.11): 0x9D Server moved (permanent) or 0x9C Use another server.
      return this.#refuse(
        redirect.permanent ? REASON_CODE.ServerMoved : REASON_CODE.UseAnotherServer,
        `use ${redirect.reference}`,
        { serverReference: redirect.reference },
      );
    }

    let keepAlive = packet.keepAlive;
    let serverKeepAlive: number | undefined;
    if (keepAlive > options.maxKeepAlive || (keepAlive === 0 && options.maxKeepAlive < 65535)) {
      if (!v5) {
        // 3.1.1 cannot tell the client another value, so refuse it as Mosquitto does (max_keepalive).
        return this.#refuse(
          REASON_CODE.ClientIdentifierNotValid,
          `keep alive ${keepAlive} s is outside the broker's maximum ${options.maxKeepAlive} s`,
        );
      }
      keepAlive = serverKeepAlive = options.maxKeepAlive;
    }
    this.#keepAliveMs = keepAlive * 1000;
    const now = core.clock.now();
    if (options.messageRatePerClient !== Infinity) {
      this.#messageRate = new TokenBucket(options.messageRatePerClient, options.messageRatePerClient, now);
    }
    if (options.publishBytesPerSecond !== Infinity) {
      this.#byteQuota = new TokenBucket(options.publishBytesPerSecond, options.publishBytesPerSecond, now);
    }

    if (v5) {
      this.sendWindow = Math.min(props?.receiveMaximum ?? 65535, options.maxInflight);
      this.topicAliasMaximum = options.topicAliasOut ? (props?.topicAliasMaximum ?? 0) : 0;
      this.#problemInfo = props?.requestProblemInformation !== 0;
    } else {
      this.sendWindow = options.maxInflight;
    }

    const will = packet.will;
    if (will !== undefined) {
      try {
        validateTopicName(will.topic, options.topicLimits);
      } catch (error) {
        return this.#refuse(REASON_CODE.TopicNameInvalid, `will topic: ${(error as Error).message}`);
      }
      if (will.qos > options.maxQoS) {
        return this.#refuse(
          REASON_CODE.QoSNotSupported,
          `will QoS ${will.qos} is above the maximum ${options.maxQoS}`,
        );
      }
      if (will.retain && !options.retainAvailable) {
        return this.#refuse(REASON_CODE.RetainNotSupported, "retained will, but retain is not available");
      }
      if (v5 && will.properties?.payloadFormatIndicator === 1 && !isWellFormedUtf8(will.payload)) {
        return this.#refuse(
          REASON_CODE.PayloadFormatInvalid,
          "will payload is not UTF-8 as its format indicator says",
        );
      }
      if (v5 && isWildcardFilter(will.properties?.responseTopic ?? "")) {
        return this.#refuse(REASON_CODE.ProtocolError, "will Response Topic with a wildcard [MQTT-3.3.2-14]");
      }
    }

    this.#pendingConnect = {
      packet: will === undefined ? packet : { ...packet, will: { ...will, payload: will.payload.slice() } },
      assigned,
      keepAlive,
      serverKeepAlive,
    };
    // An authenticator that answers at once gets its CONNACK out in this turn, with no promise in between.
    const outcome = core.authenticate(this, packet);
    if (outcome instanceof Promise) return outcome.then((result) => this.#afterAuth(result));
    this.#afterAuth(outcome);
  }

  /** AUTH received while authenticating (v5 enhanced authentication, section 4.12). */
  async #onAuth(packet: AuthPacket): Promise<void> {
    if (packet.reasonCode !== REASON_CODE.ContinueAuthentication) {
      throw protocolError(
        `AUTH with reason ${reasonName(packet.reasonCode)} during authentication (section 4.12)`,
      );
    }
    this.#afterAuth(await this.#core.continueAuth(this, packet));
  }

  /** Re-authentication requested by a connected client (AUTH 0x19, or 0x18 continuing it). */
  async #onReauth(packet: AuthPacket): Promise<void> {
    const outcome = await this.#core.reauthenticate(this, packet);
    if (this.#state !== "connected") return;
    if ("challenge" in outcome) {
      this.sendAuth(REASON_CODE.ContinueAuthentication, outcome.challenge);
    } else if (outcome.reasonCode === REASON_CODE.Success) {
      this.sendAuth(REASON_CODE.Success, outcome.properties);
    } else {
      this.disconnect(outcome.reasonCode, outcome.reason ?? "re-authentication failed");
    }
  }

  #afterAuth(outcome: AuthOutcome): void {
    if (this.#state !== "authenticating") return;
    if ("challenge" in outcome) {
      this.sendAuth(REASON_CODE.ContinueAuthentication, outcome.challenge);
      return;
    }
    if (outcome.reasonCode !== REASON_CODE.Success) {
      return this.#refuse(outcome.reasonCode, outcome.reason ?? "not authorized");
    }
    this.#finishConnect(outcome);
  }

  #finishConnect(auth: Extract<AuthOutcome, { reasonCode: number }>): void {
    const core = this.#core;
    const options = core.options;
    const { packet, assigned, keepAlive, serverKeepAlive } = this.#pendingConnect!;
    this.#pendingConnect = undefined;
    const v5 = packet.protocolVersion === 5;
    const props = packet.properties;
    const clientId = this.clientId;

    let expiry = v5 ? (props?.sessionExpiryInterval ?? 0) : (packet.cleanStart ? 0 : EXPIRY_NEVER);
    let expiryChanged = false;
    if (expiry > options.maxSessionExpiry) {
      expiry = options.maxSessionExpiry;
      expiryChanged = true;
    }
    const responseInformation = v5 && props?.requestResponseInformation === 1
      ? options.responseInformation
      : undefined;
    // undefined: the shared CONNACK with the broker's capabilities only.
    let properties: Properties | undefined;
    if (
      v5 &&
      (assigned || serverKeepAlive !== undefined || expiryChanged || responseInformation !== undefined ||
        auth.properties !== undefined)
    ) {
      properties = {
        ...(assigned ? { assignedClientIdentifier: clientId } : {}),
        ...(serverKeepAlive === undefined ? {} : { serverKeepAlive }),
        ...(expiryChanged ? { sessionExpiryInterval: expiry } : {}),
        ...core.connackProperties,
        ...(responseInformation === undefined ? {} : { responseInformation }),
        ...(auth.properties ?? {}),
      };
    }
    if (v5 && this.#maxPacketSize !== 0) {
      // The CONNACK too must fit in the client's Maximum Packet Size [MQTT-3.1.2-24]: shed what the client can
      // do without; if even the rest is too large, close without CONNACK (as Mosquitto does).
      const full = properties ?? core.connackProperties;
      if (connackSize(full) > this.#maxPacketSize) {
        const slim = essentialConnackProperties(full);
        if (connackSize(slim) > this.#maxPacketSize) {
          const reason = `its Maximum Packet Size (${this.#maxPacketSize}) cannot hold a CONNACK ` +
            `(${connackSize(slim)} bytes at the least) [MQTT-3.1.2-24]`;
          core.logger.info(
            `refused client ${clientId || "(empty id)"} from ${this.info.remoteAddress}: ${reason}`,
          );
          this.close(reason, false);
          return;
        }
        properties = slim;
      }
    }

    this.identity = auth.username === undefined ? { clientId } : { clientId, username: auth.username };
    this.#will = packet.will;
    this.#armedWill = packet.will !== undefined;
    const { session, present } = core.openSession(this, packet, expiry);
    this.session = session;
    this.#state = "connected";

    if (!v5) {
      this.send(present ? CONNACK_V3_PRESENT : CONNACK_V3);
    } else if (properties === undefined) {
      this.send(successConnack(core.connackProperties, present));
    } else {
      this.send(
        encodeConnack({ type: PACKET_TYPE.CONNACK, sessionPresent: present, reasonCode: 0, properties }, 5),
      );
    }
    if (logs(core.logger, "info")) {
      core.logger.info(
        `client ${clientId} connected from ${this.info.remoteAddress} (MQTT ${
          versionName(this.protocolVersion)
        }, clean ${packet.cleanStart}, keep alive ${keepAlive}s${present ? ", session resumed" : ""})`,
      );
    }
    core.attach(this, session);
    // The connect timeout's entry becomes the keep alive's when it comes up (checkDeadline returns the next
    // deadline), so a young connection holds one entry in the queue, not two; only a sooner keep alive needs its own.
    const deadline = this.#deadline;
    const keepAliveAt = this.#lastActivity + this.#keepAliveMs * 1.5;
    if (this.#keepAliveMs === 0) {
      core.deadlines.cancel(deadline);
      this.#deadline = undefined;
    } else if (deadline === undefined || deadline.item === undefined || keepAliveAt < deadline.at) {
      core.deadlines.cancel(deadline);
      this.#deadline = core.deadlines.schedule(this, keepAliveAt);
    }
  }

  /** Answers a CONNECT with a failure reason code and closes (v3: the closest 3.1.1 return code). */
  #refuse(reasonCode: number, reason: string, extra?: Properties): void {
    const v3Code = this.protocolVersion === 5 ? undefined : connackCodeV3(reasonCode);
    if (this.protocolVersion !== 5 && v3Code === undefined) {
      // 3.1.1 has no return code for a CONNECT that breaks the rules: close without CONNACK [MQTT-3.2.2-6].
      this.#core.logger.info(
        `refused client ${this.clientId || "(empty id)"} from ${this.info.remoteAddress}: ${reason}`,
      );
      this.close(reason, false);
      return;
    }
    const code = v3Code ?? reasonCode;
    const props: Properties | undefined = this.protocolVersion === 5
      ? { ...extra, ...(this.#problemInfo ? { reasonString: reason } : {}) }
      : undefined;
    const connack = (properties: Properties | undefined) =>
      encodeConnack(
        {
          type: PACKET_TYPE.CONNACK,
          sessionPresent: false,
          reasonCode: code,
          ...(properties === undefined ? {} : { properties }),
        },
        this.protocolVersion,
      );
    let bytes = connack(props);
    // No Reason String when it would not fit the client's Maximum Packet Size [MQTT-3.2.2-19].
    if (bytes.length > this.maxPacketSize) bytes = connack(extra);
    this.send(bytes);
    this.#core.logger.info(
      `refused client ${this.clientId || "(empty id)"} from ${this.info.remoteAddress}: ${reason} (${
        reasonName(reasonCode)
      })`,
    );
    this.close(reason, false);
  }

  /** Sends the final packet of an enhanced-authentication exchange or a re-authentication. */
  sendAuth(reasonCode: number, properties: Properties | undefined): void {
    this.send(encodeAuth({ reasonCode, ...(properties === undefined ? {} : { properties }) }));
  }

  // ---- PUBLISH ---------------------------------------------------------------------------------------------

  #onPublish(packet: PublishPacket): void {
    const core = this.#core;
    const options = core.options;
    const v5 = this.protocolVersion === 5;
    core.stats.messagesReceived++;
    if (this.#messageRate !== undefined && !this.#messageRate.take(core.clock.now())) {
      throw new MqttError(
        REASON_CODE.MessageRateTooHigh,
        `more than ${options.messageRatePerClient} PUBLISH per second`,
      );
    }
    let topic = packet.topic;
    const props = packet.properties;
    if (v5 && props !== undefined) {
      const alias = props.topicAlias;
      if (alias !== undefined) {
        if (alias === 0 || alias > options.topicAliasMaximum) {
          throw new MqttError(
            REASON_CODE.TopicAliasInvalid,
            `Topic Alias ${alias} is outside 1..${options.topicAliasMaximum} [MQTT-3.3.2-9] [MQTT-3.3.2-10]`,
          );
        }
        if (topic === "") {
          const known = this.#inboundAliases?.get(alias);
          if (known === undefined) {
            throw protocolError(`Topic Alias ${alias} was never set (section 3.3.2.3.4)`);
          }
          topic = known;
        } else {
          (this.#inboundAliases ??= new Map()).set(alias, topic);
        }
      }
      if (props.subscriptionIdentifiers !== undefined) {
        throw protocolError("A PUBLISH from a client carries a Subscription Identifier [MQTT-3.3.4-6]");
      }
      if (props.responseTopic !== undefined && isWildcardFilter(props.responseTopic)) {
        throw protocolError("A Response Topic with a wildcard [MQTT-3.3.2-14]");
      }
    }
    if (topic === "") {
      // v5: "a Protocol Error if the Topic Name is zero length and there is no Topic Alias" (section 3.3.2.1).
      throw protocolError("PUBLISH with an empty topic name and no Topic Alias [MQTT-4.7.3-1]");
    }
    validateTopicName(topic, options.topicLimits); // 0x90, wildcards [MQTT-3.3.2-2]
    if (packet.qos > options.maxQoS) {
      throw new MqttError(
        REASON_CODE.QoSNotSupported,
        `PUBLISH QoS ${packet.qos} is above the maximum [MQTT-3.2.2-11]`,
      );
    }
    if (packet.retain && !options.retainAvailable) {
      throw new MqttError(
        REASON_CODE.RetainNotSupported,
        "retained PUBLISH, but retain is not available [MQTT-3.2.2-14]",
      );
    }
    const session = this.session!;
    if (packet.qos === 2 && session.incoming.has(packet.packetId!)) {
      // A resent QoS 2 PUBLISH we already took: answer again, deliver nothing (section 4.3.3).
      this.#ack(encodePubrec({ packetId: packet.packetId!, reasonCode: 0 }, this.protocolVersion), false);
      return;
    }
    // Only v5 clients know our Receive Maximum; a 3.1.1 client is bounded by its 16-bit packet ids.
    if (v5 && packet.qos > 0 && this.#inboundPending + session.incoming.size >= options.receiveMaximum) {
      throw new MqttError(
        REASON_CODE.ReceiveMaximumExceeded,
        `more than Receive Maximum (${options.receiveMaximum}) unacknowledged QoS 1/2 PUBLISH [MQTT-3.3.4-9]`,
      );
    }
    let reasonCode: number = REASON_CODE.Success;
    let reason: string | undefined;
    if (
      v5 && options.checkPayloadFormat && props?.payloadFormatIndicator === 1 &&
      !isWellFormedUtf8(packet.payload)
    ) {
      if (packet.qos === 0) {
        throw new MqttError(
          REASON_CODE.PayloadFormatInvalid,
          "payload is not UTF-8 as its format indicator says",
        );
      }
      reasonCode = REASON_CODE.PayloadFormatInvalid;
      reason = "payload is not UTF-8 as its format indicator says";
    } else if (
      this.#byteQuota !== undefined && !this.#byteQuota.take(core.clock.now(), packet.payload.length)
    ) {
      reasonCode = REASON_CODE.QuotaExceeded;
      reason = `more than ${options.publishBytesPerSecond} payload bytes per second`;
    } else if (isSysTopic(topic)) {
      // $SYS/… is the broker's own: a client may not publish (or retain) values there that others would take
      // for the broker's (section 4.7.2: the Server SHOULD prevent Clients from using $ topics to exchange
      // messages). As an ACL denial: v5 0x87, v3 acknowledged and dropped.
      reasonCode = REASON_CODE.NotAuthorized;
      reason = `${topic} is reserved for the broker`;
      core.logger.debug(`denied PUBLISH to ${topic} from ${this.clientId}: reserved`);
    } else if (!core.authorizer.canPublish(this.identity, topic)) {
      reasonCode = REASON_CODE.NotAuthorized;
      reason = `not authorized to publish to ${topic}`;
      core.logger.debug(`denied PUBLISH to ${topic} from ${this.clientId}`);
    }
    const before = core.store?.recorded ?? 0;
    if (reasonCode === REASON_CODE.Success) {
      const message = core.messageFrom(topic, packet, this.clientId);
      const receivers = core.publish(message);
      if (receivers === 0 && v5) reasonCode = REASON_CODE.NoMatchingSubscribers;
    }
    if (packet.qos === 0) return;
    const id = packet.packetId!;
    // A Reason String only when the client did not refuse it [MQTT-3.1.2-29].
    const ack = v5
      ? {
        packetId: id,
        reasonCode,
        ...(reason !== undefined && this.#problemInfo ? { properties: { reasonString: reason } } : {}),
      }
      : { packetId: id, reasonCode: 0 };
    const encode = packet.qos === 1 ? encodePuback : encodePubrec;
    let bytes = encode(ack, this.protocolVersion);
    // ...and only when it fits the client's Maximum Packet Size [MQTT-3.4.2-2] [MQTT-3.5.2-2].
    if (bytes.length > this.maxPacketSize) bytes = encode({ packetId: id, reasonCode }, this.protocolVersion);
    if (packet.qos === 1) {
      this.#inboundPending++;
      this.#ack(bytes, (core.store?.recorded ?? 0) !== before, () => this.#inboundPending--);
      return;
    }
    if (reasonCode < 0x80) {
      session.addIncoming(id);
      if (session.persistent) core.store?.add({ kind: "putIncoming", clientId: this.clientId, packetId: id });
    }
    this.#ack(bytes, (core.store?.recorded ?? 0) !== before);
  }

  /**
   * Sends an acknowledgement in order with earlier ones; when `durable`, only after the commit holding this
   * message's effects (a QoS 1/2 message is acknowledged only once it cannot be lost).
   */
  #ack(bytes: Uint8Array, durable: boolean, done?: () => void): void {
    if (!durable && this.#ackChain === undefined) {
      this.send(bytes);
      done?.();
      return;
    }
    const wait = durable ? this.#core.store!.settled() : undefined;
    const chain = (this.#ackChain ?? Promise.resolve()).then(() => wait).then(() => {
      this.send(bytes);
      done?.();
    });
    this.#ackChain = chain;
    chain.then(
      () => {
        if (this.#ackChain === chain) this.#ackChain = undefined;
      },
      (error) => this.fail(new MqttError(REASON_CODE.UnspecifiedError, "storage failed", { cause: error })),
    );
  }

  #onPubrel(packetId: number): void {
    const session = this.session!;
    let reasonCode: number = REASON_CODE.Success;
    if (session.deleteIncoming(packetId)) {
      if (session.persistent) {
        this.#core.store?.add({ kind: "deleteIncoming", clientId: this.clientId, packetId });
      }
    } else {
      reasonCode = REASON_CODE.PacketIdentifierNotFound;
    }
    this.#ack(encodePubcomp({ packetId, reasonCode }, this.protocolVersion), false);
  }

  // ---- SUBSCRIBE / UNSUBSCRIBE -----------------------------------------------------------------------------

  #onSubscribe(packet: SubscribePacket): void {
    const core = this.#core;
    const options = core.options;
    const v5 = this.protocolVersion === 5;
    const failure: number = v5 ? REASON_CODE.UnspecifiedError : subackCodeV3(REASON_CODE.UnspecifiedError);
    const subscriptionId = packet.properties?.subscriptionIdentifiers?.[0];
    if (subscriptionId !== undefined && !options.subscriptionIdentifiersAvailable) {
      throw new MqttError(
        REASON_CODE.SubscriptionIdentifiersNotSupported,
        "Subscription Identifiers are not supported",
      );
    }
    const session = this.session!;
    const codes: number[] = [];
    const retained: { filter: string; qos: QoS }[] = [];
    let count = core.router.subscriptionCount(this.clientId);
    for (const request of packet.subscriptions) {
      const filter = request.filter;
      let shared;
      try {
        validateTopicFilter(filter, options.topicLimits);
        shared = parseSharedFilter(filter);
      } catch (error) {
        core.logger.debug(`client ${this.clientId}: ${(error as Error).message}`);
        codes.push(v5 ? REASON_CODE.TopicFilterInvalid : failure);
        continue;
      }
      if (shared !== undefined && request.noLocal) {
        throw protocolError("No Local on a shared subscription [MQTT-3.8.3-4]");
      }
      if (shared !== undefined && !options.sharedSubscriptionsAvailable) {
        codes.push(v5 ? REASON_CODE.SharedSubscriptionsNotSupported : failure);
        continue;
      }
      if (!options.wildcardSubscriptionsAvailable && (filter.includes("+") || filter.includes("#"))) {
        codes.push(v5 ? REASON_CODE.WildcardSubscriptionsNotSupported : failure);
        continue;
      }
      if (!core.authorizer.canSubscribe(this.identity, filter)) {
        codes.push(v5 ? REASON_CODE.NotAuthorized : failure);
        continue;
      }
      if (count >= options.maxSubscriptionsPerClient) {
        // Only replacing an existing subscription is still allowed.
        if (!core.router.hasSubscription(this.clientId, filter)) {
          codes.push(v5 ? REASON_CODE.QuotaExceeded : failure);
          continue;
        }
      }
      const qos = Math.min(request.qos, options.maxQoS) as QoS;
      const existed = core.router.subscribe(this.clientId, {
        filter,
        qos,
        noLocal: request.noLocal,
        retainAsPublished: request.retainAsPublished,
        retainHandling: request.retainHandling,
        ...(subscriptionId === undefined ? {} : { subscriptionId }),
      });
      if (!existed) count++;
      codes.push(qos);
      // Retained messages are not sent for a shared subscription [MQTT-3.8.4-?] (section 4.8.2).
      if (
        shared === undefined && (request.retainHandling === 0 || (request.retainHandling === 1 && !existed))
      ) {
        retained.push({ filter, qos });
      }
    }
    this.send(encodeSuback({ packetId: packet.packetId, reasonCodes: codes }, this.protocolVersion));
    core.sessionChanged(session);
    if (retained.length > 0) {
      const ids = subscriptionId === undefined ? undefined : [subscriptionId];
      const backlog = this.#retainedBacklog ??= new RetainedBacklog(this.#retainedHost(session));
      // A client that re-subscribes without taking what it is owed could make the backlog grow without end:
      // it holds at most one copy of the store (plus 1,000); past that a SUBSCRIBE's retained messages drop.
      const limit = core.retained.size + 1000;
      for (const { filter, qos } of retained) {
        let messages = core.retained.match(filter);
        const room = Math.max(0, limit - backlog.size); // the store may have shrunk since the backlog grew
        if (messages.length > room) {
          core.logger.warn(
            `client ${this.clientId}: ${messages.length - room} retained message(s) for ${filter} dropped: ` +
              `${backlog.size} still owed to it`,
          );
          session.dropped += messages.length - room;
          messages = messages.slice(0, room);
        }
        backlog.add({ messages, qos, subscriptionIds: ids });
      }
      // Sent as the client takes them: past the output limit or the queue they would be dropped.
      backlog.pump();
    }
  }

  /** What a {@linkcode RetainedBacklog} needs from this connection (made once, on the first use). */
  #retainedHost(session: Session): RetainedHost {
    const core = this.#core;
    return {
      isClosed: () => this.#isClosed(),
      isCongested: () => this.congested,
      // Retained QoS 1/2 messages enter only while the window has room, so they never fill the queue that live
      // messages need.
      isQueueFull: () => session.queued > 0 || session.inflight.size >= this.sendWindow,
      drained: () => this.#output.drain(),
      current: (topic) => core.retained.get(topic),
      send: (message, qos, subscriptionIds) => this.#deliverRetained(session, message, qos, subscriptionIds),
    };
  }

  /** Gives `session` one retained message at `qos`, unless it expired or the client may not receive it. */
  #deliverRetained(
    session: Session,
    message: Message,
    qos: QoS,
    subscriptionIds: readonly number[] | undefined,
  ): void {
    const core = this.#core;
    const now = core.clock.now();
    if (message.expiresAt !== undefined && message.expiresAt <= now) return;
    if (!core.authorizer.canReceive(this.identity, message.topic)) return;
    // Sent with RETAIN set [MQTT-3.3.1-9] (3.1.1: [MQTT-3.3.1-8]). An EncodeCache holds the forms of ONE
    // message, so each retained message gets its own.
    session.deliver(message, qos, true, subscriptionIds, new EncodeCache(now));
  }

  #onUnsubscribe(packet: UnsubscribePacket): void {
    const core = this.#core;
    const codes: number[] = [];
    for (const filter of packet.filters) {
      try {
        validateTopicFilter(filter, core.options.topicLimits);
      } catch {
        codes.push(REASON_CODE.TopicFilterInvalid);
        continue;
      }
      codes.push(
        core.router.unsubscribe(this.clientId, filter)
          ? REASON_CODE.Success
          : REASON_CODE.NoSubscriptionExisted,
      );
    }
    this.send(encodeUnsuback({ packetId: packet.packetId, reasonCodes: codes }, this.protocolVersion));
    core.sessionChanged(this.session!);
  }

  // ---- DISCONNECT, keep-alive, closing ---------------------------------------------------------------------

  #onDisconnect(packet: DisconnectPacket): void {
    const session = this.session!;
    const expiry = packet.properties?.sessionExpiryInterval;
    if (expiry !== undefined) {
      if (session.expiryInterval === 0 && expiry !== 0) {
        throw protocolError("DISCONNECT sets a Session Expiry Interval after CONNECT set 0 [MQTT-3.14.2-2]");
      }
      session.expiryInterval = Math.min(expiry, this.#core.options.maxSessionExpiry);
    }
    // A normal DISCONNECT discards the will; 0x04 asks for it to be sent [MQTT-3.14.4-3].
    const sendWill = this.protocolVersion === 5 &&
      packet.reasonCode === REASON_CODE.DisconnectWithWillMessage;
    this.close(`client disconnected (${reasonName(packet.reasonCode)})`, sendWill);
  }

  /**
   * Called by the broker's deadline queue (one timer for all connections, `deadlines.ts`) when this connection's
   * deadline passes. Closes a connection that finished no CONNECT within the connect timeout, and disconnects one
   * silent for 1.5 times its keep alive [MQTT-3.1.2-24] (v5 0x8D). Returns the next deadline, or undefined when
   * there is nothing left to watch.
   */
  checkDeadline(now: number): number | undefined {
    switch (this.#state) {
      case "awaiting-connect":
      case "authenticating": {
        const at = this.#deadline?.at ?? 0; // scheduled at the connection's start plus the connect timeout
        if (now < at) return at;
        this.close("no CONNECT within the connect timeout", false);
        return undefined;
      }
      case "connected": {
        const limit = this.#keepAliveMs * 1.5;
        if (limit === 0) return undefined;
        const at = this.#lastActivity + limit;
        if (now < at) return at;
        this.disconnect(REASON_CODE.KeepAliveTimeout, `keep alive timeout (${limit / 1000} s)`);
        return undefined;
      }
      case "closed":
        return undefined;
    }
  }

  /** The one place an error becomes the peer's answer: CONNACK before CONNECT completed, DISCONNECT after (v5). */
  fail(error: unknown): void {
    if (this.#state === "closed") return;
    const mqttError = error instanceof MqttError
      ? error
      : new MqttError(REASON_CODE.ImplementationSpecificError, `internal error: ${String(error)}`, {
        cause: error,
      });
    const log = error instanceof MqttError ? this.#core.logger.warn : this.#core.logger.error;
    log(`client ${this.clientId || "(unknown)"} ${this.info.remoteAddress}: ${mqttError.message}`);
    if (this.#state === "authenticating") {
      this.#refuse(mqttError.reasonCode, mqttError.message);
      return;
    }
    if (
      this.#state === "awaiting-connect" && mqttError.reasonCode === REASON_CODE.UnsupportedProtocolVersion
    ) {
      // Unknown protocol level: answer in the 3.1.1 form, which every version's client can read [MQTT-3.1.2-2].
      this.send(encodeConnack({ type: PACKET_TYPE.CONNACK, sessionPresent: false, reasonCode: 0x01 }, 4));
      this.close(mqttError.message, false);
      return;
    }
    this.disconnect(mqttError.reasonCode, mqttError.message);
  }

  /** Server-initiated disconnect: v5 DISCONNECT with `reasonCode` (and a reason string), then close with the will. */
  disconnect(reasonCode: number, reason: string, properties?: Properties): void {
    if (this.#state === "closed") return;
    if (this.#state === "connected" && this.protocolVersion === 5) {
      const props: Properties = { ...properties, ...(this.#problemInfo ? { reasonString: reason } : {}) };
      let bytes = encodeDisconnect({ reasonCode, properties: props }, 5);
      // No Reason String when it would not fit the client's Maximum Packet Size [MQTT-3.14.2-3].
      if (bytes.length > this.maxPacketSize) {
        bytes = encodeDisconnect({ reasonCode, properties: { ...properties } }, 5);
      }
      this.send(bytes);
    }
    this.close(`${reason} (${reasonName(reasonCode)})`, true);
  }

  /**
   * Closes the connection once: writes what is queued (bounded wait), closes the socket and detaches the
   * session, publishing the will when `sendWill`.
   */
  close(reason: string, sendWill: boolean): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    const wasConnected = this.#state === "connected";
    this.#state = "closed";
    const core = this.#core;
    core.deadlines.cancel(this.#deadline);
    this.#deadline = undefined;
    const will = sendWill ? this.#will : undefined;
    this.#will = undefined;
    if (wasConnected && this.session !== undefined) {
      if (logs(core.logger, "info")) {
        core.logger.info(
          `client ${this.clientId} disconnected from ${this.info.remoteAddress} ` +
            `(MQTT ${versionName(this.protocolVersion)}): ${reason}`,
        );
      }
      core.detach(this, this.session, will);
      this.#queueOwedRetained(this.session);
    }
    this.#closed = (async () => {
      let timer: number | undefined;
      await Promise.race([
        this.#output.drain(),
        new Promise<void>((resolve) => timer = setTimeout(resolve, 1000) as unknown as number),
      ]);
      clearTimeout(timer);
      this.#output.close();
      try {
        this.#stream.close();
      } catch {
        // already closed by the peer
      }
      core.connectionClosed(this);
    })();
    return this.#closed;
  }

  /**
   * The connection closed with retained messages still owed: the QoS 1/2 ones go to the session's queue if
   * the session lives on (they would have been queued had they been sent at the SUBSCRIBE); QoS 0 ones go.
   */
  #queueOwedRetained(session: Session): void {
    const owed = this.#retainedBacklog?.abandon();
    this.#retainedBacklog = undefined;
    if (owed === undefined || owed.length === 0) return;
    if (!session.persistent && session.link === undefined) return; // the session ended with the connection
    for (const { message, qos, subscriptionIds } of owed) {
      this.#deliverRetained(session, message, qos, subscriptionIds);
    }
  }

  /** Whether CONNECT carried a will (it is kept in storage while the connection lives). */
  get armedWill(): boolean {
    return this.#armedWill;
  }
}

/** `$SYS` or `$SYS/…`: the broker's statistics, which clients may read but not publish. */
function isSysTopic(topic: string): boolean {
  return topic.startsWith("$SYS") && (topic.length === 4 || topic.charCodeAt(4) === 0x2f);
}

/** Bytes of a v5 success CONNACK with `properties`. */
function connackSize(properties: Properties): number {
  return encodeConnack({ type: PACKET_TYPE.CONNACK, sessionPresent: false, reasonCode: 0, properties }, 5)
    .length;
}

/**
 * A CONNACK's properties without those a client can do without: Reason String, User Properties, Response
 * Information, Topic Alias Maximum (absent: no aliases, which is safe) and the capabilities that say what their
 * absence says anyway (Retain, Wildcard, Subscription Identifiers and Shared Subscriptions Available = 1). What
 * stays changes what the client may do (Receive Maximum, Maximum QoS, Maximum Packet Size, Server Keep Alive,
 * Session Expiry Interval, Assigned Client Identifier, authentication).
 */
function essentialConnackProperties(properties: Properties): Properties {
  const {
    reasonString: _reason,
    userProperties: _user,
    responseInformation: _response,
    topicAliasMaximum: _aliases,
    ...rest
  } = properties;
  const slim: { -readonly [K in keyof Properties]: Properties[K] } = { ...rest };
  if (slim.retainAvailable === 1) delete slim.retainAvailable;
  if (slim.wildcardSubscriptionAvailable === 1) delete slim.wildcardSubscriptionAvailable;
  if (slim.subscriptionIdentifiersAvailable === 1) delete slim.subscriptionIdentifiersAvailable;
  if (slim.sharedSubscriptionAvailable === 1) delete slim.sharedSubscriptionAvailable;
  return slim;
}

// Success CONNACKs are the same bytes for most clients: encoded once, shared (Output never writes into them).
const CONNACK_V3 = encodeConnack({ type: PACKET_TYPE.CONNACK, sessionPresent: false, reasonCode: 0 }, 4);
const CONNACK_V3_PRESENT = encodeConnack(
  { type: PACKET_TYPE.CONNACK, sessionPresent: true, reasonCode: 0 },
  4,
);
const SUCCESS_CONNACKS = new WeakMap<Properties, readonly [Uint8Array, Uint8Array]>();

/** The v5 success CONNACK that carries only the broker's own properties, encoded once per broker. */
function successConnack(properties: Properties, sessionPresent: boolean): Uint8Array {
  let pair = SUCCESS_CONNACKS.get(properties);
  if (pair === undefined) {
    const encode = (present: boolean) =>
      encodeConnack({ type: PACKET_TYPE.CONNACK, sessionPresent: present, reasonCode: 0, properties }, 5);
    pair = [encode(false), encode(true)];
    SUCCESS_CONNACKS.set(properties, pair);
  }
  return pair[sessionPresent ? 1 : 0];
}

function versionName(version: ProtocolVersion): string {
  return version === 3 ? "3.1" : version === 4 ? "3.1.1" : "5.0";
}
