/**
 * One client connection: the read loop (framer + decoder, paced by `read_pacing.ts`, reading on while an
 * authentication waits: `auth_read.ts`), the protocol state machine, and dispatch (`dispatch.ts`) to the handlers of
 * `handlers/` (one file per inbound packet family; errors become the peer's answer in `handlers/error.ts`). Its deadline is
 * `keep_alive.ts`'s, its output `output.ts`'s, and the end of its close `closing.ts`'s.
 *
 * @module
 */

import { Framer } from "../codec/framer.ts";
import { decodePacket } from "../packet/decode.ts";
import type { ProtocolVersion } from "../packet/packet_type.ts";
import type { Properties } from "../packet/properties.ts";
import { REASON_CODE, reasonName } from "../packet/reason_code.ts";
import type { WillMessage } from "../packet/connect.ts";
import { encodePubrel } from "../packet/pubrel.ts";
import { encodeDisconnect } from "../packet/disconnect.ts";
import { encodeAuth } from "../packet/auth.ts";
import type { IncomingTopicAliases } from "../topic/topic_alias.ts";
import {
  type ByteStream,
  isPollable,
  type PollableStream,
  type ReadableOwner,
} from "../transport/transport.ts";
import { Output, type OutputOwner } from "./output.ts";
import { countReceived, countSent } from "./counters.ts";
import { logs, printable } from "./logger.ts";
import type { Deadline } from "./deadlines.ts";
import type { TokenBucket } from "./limits.ts";
import type { Session } from "./session.ts";
import type { SessionLink } from "./session_link.ts";
import type { RetainedBacklog } from "./retained_backlog.ts";
import type { BrokerCore } from "./core.ts";
import type { ClientIdentity } from "./auth/auth.ts";
import { type CloseCause, disconnectReason, emitConnectionEnd, refusalReason } from "./events.ts";
import { receivedLine, sendingLine } from "./packet_trace.ts";
import { Linger } from "./linger.ts";
import { closeStream } from "./closing.ts";
import { checkDeadline, keepAliveEntry } from "./keep_alive.ts";
import { type AuthReadOwner, readWhileAuthenticating } from "./auth_read.ts";
import { nextReadBuffer, READ_MIN, YIELD_MS, YIELD_PACKETS, yieldTurn } from "./read_pacing.ts";
import { foreignProtocolLine, isForeignProtocol } from "./foreign_peer.ts";
import { type PendingConnect, versionName } from "./handlers/connect.ts";
import { queueOwedRetained } from "./handlers/subscribe.ts";
import { dispatch } from "./dispatch.ts";
import { answerError } from "./handlers/error.ts";

/** The connection's place in the protocol. */
export type ConnectionState =
  /** socket open, CONNECT not yet received [MQTT-3.1.0-1 (3.1.1)] */
  | "awaiting-connect"
  /** CONNECT received; authentication (possibly an AUTH exchange) in progress */
  | "authenticating"
  /**
   * CONNACK sent with success while the session is still being taken from another cluster node: packets read
   * wait, as while authenticating, until it is opened here (`handlers/connect.ts`)
   */
  | "resuming"
  /** CONNACK sent with success */
  | "connected"
  /** closed, or closing */
  | "closed";

/** Where a connection came from. */
export interface ConnectionInfo {
  /** The peer as `host:port` (`[v6]:port`); per-address limits count its host part. */
  readonly remoteAddress: string;
  /** Whether the listener lets clients in without credentials. */
  readonly allowAnonymous: boolean;
  /** Verified TLS client certificate CN, if any. */
  readonly certificateCommonName?: string;
}

const EMPTY = new Uint8Array(0);

/** The read loop starts with no read done (see {@linkcode Connection.resumed}). */
const NO_READ = -1;
/** The read left under way threw (see {@linkcode Connection.resumed}). */
const READ_FAILED = -2;
/** Nothing to wait for: what {@linkcode Connection.quick} hands the read loop when it need not await a handler. */
const SETTLED: Promise<void> = Promise.resolve();

/**
 * A client connection. Its public fields are the state the handlers of `handlers/` share with it; nothing
 * outside `lib/broker/` sees a connection.
 */
export class Connection implements SessionLink, OutputOwner, AuthReadOwner, ReadableOwner {
  /** The broker, as connections see it. */
  readonly core: BrokerCore;
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
  /** The client's Maximum Packet Size, 0 for none: a small integer, not a boxed Infinity (16 B per connection). */
  packetSizeLimit = 0;
  /** See {@linkcode SessionLink}. */
  topicAliasMaximum = 0;
  #keepAliveMs = 0;
  /** On the monotonic clock (issue #15 item 13): a step of the wall clock neither fires nor delays keep alive. */
  #lastActivity = 0;
  /** This connection's entry in the broker's deadline queue (connect timeout, then keep alive). */
  #deadline: Deadline<Connection> | undefined;
  /** The will CONNECT carried, until it is discarded or handed to the broker at close. */
  will: WillMessage | undefined;
  /** Whether CONNECT carried a will (it is kept in storage while the connection lives). */
  armedWill = false;
  /** @ignore The client's Topic Aliases, created by the first one (most connections never use one). */
  topicAliases: IncomingTopicAliases | undefined;
  /** Inbound QoS 1 PUBLISH not yet acknowledged (counts against our Receive Maximum). */
  inboundPending = 0;
  /** Inbound QoS 2 PUBLISH whose PUBREC waits for a commit (a 3.1.1 client is not held to those). */
  pubrecPending = 0;
  /** @ignore The acknowledgements still waiting for a commit, in order (`handlers/ack_order.ts`). */
  ackChain: Promise<void> | undefined;
  /** v5 Request Problem Information: 0 means no Reason String / User Property on acks [MQTT-3.1.2-29 (5.0)]. */
  problemInfo = true;
  #closed: Promise<void> | undefined;
  /** @ignore Retained messages a SUBSCRIBE still owes, made on the first SUBSCRIBE that matches any. */
  retainedBacklog: RetainedBacklog | undefined;
  /** @ignore PUBLISH rate and byte quota of this client (undefined: off). */
  messageRate: TokenBucket | undefined;
  /** @ignore See {@linkcode Connection.messageRate}. */
  byteQuota: TokenBucket | undefined;
  /** @ignore What CONNECT asked for, kept while authentication runs. */
  pendingConnect: PendingConnect | undefined;
  /** Whether each packet in and out is logged (the logger keeps debug lines); asked once. */
  readonly #traced: boolean;
  /** Packets handled since the read loop last gave the event loop a turn. */
  #sinceYield = 0;
  /** The last read filled the buffer: the peer is sending faster than we read. */
  #peerBusy = false;
  /** Made when the broker closes on a peer still sending (see `linger.ts`). */
  #linger: Linger | undefined;
  /** This client's traffic since it connected, for the admin views: PUBLISH in and out, bytes in and out. */
  msgsIn = 0;
  msgsOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** Resolves the promise of {@linkcode Connection.run} once the read loop has ended. */
  #ended: (() => void) | undefined;
  /** The buffer of the read under way while the read loop is not running (see {@linkcode Connection.resumed}). */
  #readBuffer: Uint8Array<ArrayBuffer> = EMPTY;

  /** Serves one client on `stream`; nothing is read until {@linkcode Connection.run}. */
  constructor(core: BrokerCore, stream: ByteStream, info: ConnectionInfo) {
    this.core = core;
    this.#stream = stream;
    this.info = info;
    this.#framer = new Framer({ maxPacketSize: core.options.maxPacketSize });
    this.#output = new Output(stream, this);
    this.#traced = logs(core.logger, "debug");
  }

  /** See {@linkcode OutputOwner.writeFailed}: the peer went away. */
  writeFailed(): void {
    this.#peerBusy = false; // nobody to linger for
    this.close("write failed", true);
  }

  /** See {@linkcode OutputOwner.written}. */
  written(bytes: number): void {
    this.core.stats.bytesSent += bytes;
    this.bytesOut += bytes;
  }

  /** The client's Maximum Packet Size (v5), or Infinity. */
  get maxPacketSize(): number {
    return this.packetSizeLimit === 0 ? Infinity : this.packetSizeLimit;
  }

  /** The protocol state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** See {@linkcode SessionLink.congested}. */
  get congested(): boolean {
    return this.#output.pending > this.core.options.maxOutputBytes;
  }

  /** The keep alive in force, seconds (0: none). */
  get keepAlive(): number {
    return this.#keepAliveMs / 1000;
  }

  /** Bytes accepted for this client and not yet written. */
  get pendingOutput(): number {
    return this.#output.pending;
  }

  /** Starts writing what is queued now, before the turn's later packets are encoded (see `Output.flush`). */
  flush(): void {
    this.#output.flush();
  }

  /** Resolves when the output queued so far has been written. */
  drained(): Promise<void> {
    return this.#output.drain();
  }

  send(bytes: Uint8Array): void {
    if (this.#state === "closed") return;
    if (this.#traced) this.core.logger.debug(sendingLine(bytes, this.protocolVersion, this.clientId));
    this.#output.send(bytes);
    if (countSent(this.core.stats, bytes)) this.msgsOut++; // a PUBLISH with a Topic Alias comes this way
  }

  sendPublish(bytes: Uint8Array, idOffset: number, packetId: number, dup: boolean): void {
    if (this.#state === "closed") return;
    if (this.#traced) {
      this.core.logger.debug(
        sendingLine(bytes, this.protocolVersion, this.clientId, { idOffset, packetId, dup }),
      );
    }
    this.#output.sendPublish(bytes, idOffset, packetId, dup);
    countSent(this.core.stats, bytes);
    this.msgsOut++;
  }

  sendPubrel(packetId: number): void {
    this.send(encodePubrel({ packetId, reasonCode: 0 }, this.protocolVersion));
  }

  /** Sends the final packet of an enhanced-authentication exchange or a re-authentication. */
  sendAuth(reasonCode: number, properties: Properties | undefined): void {
    this.send(encodeAuth({ reasonCode, ...(properties === undefined ? {} : { properties }) }));
  }

  /**
   * Reads and handles packets until the peer goes away or the connection is closed; resolves when the read loop
   * has ended. Never rejects: an error becomes the peer's answer here, so the broker need not attach a handler to
   * every connection.
   */
  run(): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#ended = resolve;
    this.start();
    return promise;
  }

  /**
   * {@linkcode Connection.run} without its promise, for a caller that does not wait for the end (an accept loop):
   * the promise and its resolving functions cost about 160 bytes per idle connection.
   */
  start(): void {
    const core = this.core;
    this.#lastActivity = core.clock.monotonic();
    this.#deadline = core.deadlines.schedule(this, this.#lastActivity + core.options.connectTimeout);
    this.#pump(NO_READ);
  }

  /**
   * See {@linkcode ReadableOwner.readable}: a connected client's short reads are handled here
   * ({@linkcode Connection.quick}), anything else by the read loop, which starts again.
   */
  readable(): void {
    const stream = this.#stream as PollableStream;
    let buffer = new Uint8Array(READ_MIN);
    for (;;) {
      if (this.#state !== "connected") {
        this.#pump(NO_READ, undefined, undefined, buffer);
        return;
      }
      const n = stream.readNow(buffer);
      if (n === 0) {
        stream.whenReadable(this);
        return;
      }
      if (n === null || n === buffer.length) {
        this.#pump(n, undefined, undefined, buffer);
        return;
      }
      if (!this.#quick(n, buffer)) return;
      buffer = nextReadBuffer(buffer, n);
    }
  }

  /**
   * The read loop goes on with the result of the read it left under way: a byte count, null at end of stream, or
   * what the read threw. One function per connection, made on the first read left under way (a pollable stream
   * needs none), rather than a suspended loop per idle client.
   */
  #resume: ((result: unknown) => void) | undefined;

  #resumed(result: unknown): void {
    const buffer = this.#readBuffer;
    if (typeof result === "number" && this.#state === "connected" && result < buffer.length) {
      this.#readBuffer = EMPTY;
      if (this.#quick(result, buffer)) this.#readLater(nextReadBuffer(buffer, result));
    } else if (result === null || typeof result === "number") {
      this.#pump(result);
    } else {
      this.#pump(READ_FAILED, result);
    }
  }

  /** Leaves a read into `buffer` under way; {@linkcode Connection.resumed} takes its result. */
  #readLater(buffer: Uint8Array<ArrayBuffer>): void {
    this.#readBuffer = buffer;
    const resume = this.#resume ??= (result) => this.#resumed(result);
    this.#stream.read(buffer).then(resume, resume);
  }

  /**
   * A short read of a connected client, the common case: its packets are handled and the next read left under
   * way without starting the read loop (an async call per read cost QoS 1 round trips about 8%). Returns false
   * when the read loop took over (a handler must be awaited, the output is full or the connection closed).
   */
  #quick(n: number, buffer: Uint8Array<ArrayBuffer>): boolean {
    let pending: Promise<void> | undefined;
    this.received(n, false);
    try {
      this.#framer.push(buffer.subarray(0, n));
      pending = this.#frames();
    } catch (error) {
      this.fail(error); // the peer's answer; the loop below lingers if the peer is still sending
      pending = SETTLED;
    }
    if (
      pending === undefined && this.#state === "connected" &&
      this.#output.pending <= this.core.options.maxOutputBytes
    ) {
      this.#sinceYield = 0; // the socket is drained: the next read waits in the event loop
      return true;
    }
    this.#pump(n, undefined, pending ?? SETTLED, buffer);
    return false;
  }

  /**
   * The read loop. It returns when the socket has nothing more to read, after asking to go on when it has: on a
   * pollable stream it asks to be told (and keeps no read buffer), on another it leaves a read under way with
   * {@linkcode Connection.resumed} to take its result. An idle connection then keeps no suspended loop, its
   * promises and their callbacks (about 450 bytes each; the "Idle connections" table of the README). A peer that
   * keeps the buffer full is read in the loop, awaiting each read.
   */
  async #pump(
    resumed: number | null,
    failure?: unknown,
    handed?: Promise<void>,
    given?: Uint8Array<ArrayBuffer>,
  ): Promise<void> {
    const core = this.core;
    const pollable = isPollable(this.#stream) ? this.#stream : undefined;
    let buffer = given ?? (this.#readBuffer === EMPTY ? new Uint8Array(READ_MIN) : this.#readBuffer);
    this.#readBuffer = EMPTY;
    /** A read an authentication step left under way (into `buffer`). */
    let reading: Promise<number | null> | undefined;
    /** The last read filled its buffer: the next one is awaited here rather than left under way. */
    let more = false;
    let busy = 0;
    try {
      for (;;) {
        let n: number | null;
        if (handed !== undefined) {
          n = resumed; // received and framed by #quick, which left `handed` to await
          resumed = NO_READ;
        } else if (resumed !== NO_READ) {
          if (resumed === READ_FAILED) throw failure;
          n = resumed;
          resumed = NO_READ;
        } else if (reading !== undefined) {
          n = await reading;
          reading = undefined;
        } else if (pollable !== undefined) {
          n = pollable.readNow(buffer);
          if (n === 0) {
            pollable.whenReadable(this);
            return;
          }
        } else if (!more) {
          this.#readLater(buffer);
          return;
        } else {
          n = await this.#stream.read(buffer);
        }
        if (n === null) break;
        if (this.#state === "closed" && handed === undefined) {
          if (this.#linger?.discard(n)) continue;
          break;
        }
        // Only a full read can start a run of busy reads: time those alone (two ops fewer per packet otherwise).
        const full = n === buffer.length;
        more = full;
        const readAt = full ? performance.now() : 0;
        if (handed === undefined) this.received(n, full);
        if (
          this.#state === "awaiting-connect" && this.#framer.buffered === 0 && isForeignProtocol(buffer, n)
        ) {
          core.logger.warn(foreignProtocolLine(this.info.remoteAddress, buffer, n), {
            event: "client.refused",
            remote: this.info.remoteAddress,
            reason: "protocol",
          });
          this.close("not MQTT", false, "protocol");
          break;
        }
        try {
          let pending = handed;
          handed = undefined;
          if (pending === undefined) {
            this.#framer.push(buffer.subarray(0, n));
            pending = this.#frames();
          }
          for (; pending !== undefined; pending = this.#frames()) {
            if (this.#state === "authenticating" || this.#state === "resuming") {
              buffer = EMPTY; // the CONNECT's read buffer is not kept while its verification waits
              ({ buffer, reading } = await readWhileAuthenticating(
                this.#stream,
                this.#framer,
                pending,
                this,
              ));
            } else {
              await pending;
            }
            if (this.isClosed) break;
          }
        } catch (error) {
          this.fail(error); // the peer's answer; then linger below if it is still sending
        }
        if (this.isClosed) {
          // Read on (and discard) while a peer that was still sending takes our last packet.
          if (!this.#peerBusy && this.#framer.buffered === 0) break;
          this.#linger = new Linger();
          continue;
        }
        if (full) busy += performance.now() - readAt;
        if (this.#output.pending > core.options.maxOutputBytes) {
          // A peer that sends and never reads (PINGREQ, QoS 1 PUBLISH: each is answered) would grow our output
          // without bound: read nothing more from it until it has taken what it is owed.
          await this.#output.drain();
          busy = 0;
          this.#sinceYield = 0;
        } else if (n < buffer.length) {
          busy = 0; // the socket is drained: the next read waits in the event loop
          this.#sinceYield = 0;
        } else if (busy > YIELD_MS || this.#sinceYield > YIELD_PACKETS) {
          busy = 0;
          this.#sinceYield = 0;
          await yieldTurn();
        }
        if (reading === undefined) buffer = nextReadBuffer(buffer, n); // else that read's buffer stays
      }
      if (this.#state !== "closed") this.close("connection lost", true);
    } catch (error) {
      if (this.#state !== "closed") this.fail(error);
    }
    this.#ended?.();
  }

  /** See {@linkcode AuthReadOwner.received}: counted, and the peer's activity noted. */
  received(n: number, full: boolean): void {
    this.#peerBusy = full;
    this.core.stats.bytesReceived += n;
    this.bytesIn += n;
    this.#lastActivity = this.core.clock.monotonic();
  }

  /** Whether the connection has closed. */
  get isClosed(): boolean {
    return this.#state === "closed";
  }

  /**
   * Handles the frames read so far, up to the first whose handler must be awaited, or until the peer's unread
   * output passes the limit (its promise is returned; call again after it settles). Packets are decoded here
   * rather than in run(): a variable of that async loop keeps its last value while the next read waits, which
   * held every idle client's CONNECT packet.
   */
  #frames(): Promise<void> | undefined {
    const stats = this.core.stats;
    const output = this.#output;
    const maxOutput = this.core.options.maxOutputBytes;
    for (let frame = this.#framer.next(); frame !== undefined; frame = this.#framer.next()) {
      countReceived(stats, frame.header);
      this.#sinceYield++;
      const packet = decodePacket(frame.header, frame.body, this.protocolVersion);
      if (this.#traced) this.core.logger.debug(receivedLine(packet, this.clientId));
      const pending = dispatch(this, packet);
      if (pending !== undefined) return pending;
      if (this.isClosed) return undefined;
      // Checked per packet, not per read: one read of PINGREQs answered whole grew the output by 32 KiB past
      // the limit, 115 MB over many clients that never read (issue #15 item 10).
      if (output.pending > maxOutput) return output.drain();
    }
    return undefined;
  }

  // ---- state transitions the handlers take ------------------------------------------------------------------

  /** CONNECT received: authentication starts. */
  beginAuthentication(): void {
    if (this.#state === "awaiting-connect") this.#state = "authenticating";
  }

  /**
   * CONNACK sent before the session could be opened (a cluster takeover under way): packets read still wait,
   * and the connect timeout still runs, until {@linkcode Connection.established}.
   */
  acknowledged(): void {
    if (this.#state === "authenticating") this.#state = "resuming";
  }

  /**
   * CONNECT accepted: the connection is connected and keep alive (`keepAlive` seconds, 0 for none) watched
   * from now on.
   */
  established(keepAlive: number): void {
    this.#state = "connected";
    this.#keepAliveMs = keepAlive * 1000;
    this.#deadline = keepAliveEntry(
      this.core.deadlines,
      this,
      this.#deadline,
      this.#lastActivity,
      this.#keepAliveMs,
    );
  }

  // ---- keep-alive, errors, closing ------------------------------------------------------------------------

  /**
   * Called by the broker's deadline queue (one timer for all connections, `deadlines.ts`) when this connection's
   * deadline passes, with `now` on the monotonic clock. Closes a connection that finished no CONNECT within the
   * connect timeout, and disconnects one silent for 1.5 times its keep alive [MQTT-3.1.2-24 (3.1.1)] (v5 0x8D).
   * Returns the next deadline, or undefined when there is nothing left to watch.
   */
  checkDeadline(now: number): number | undefined {
    const connectDeadline = this.#deadline?.at ?? 0; // while connecting: the start plus the connect timeout
    const check = checkDeadline(this.#state, now, connectDeadline, this.#lastActivity, this.#keepAliveMs);
    if (check === "connect-timeout") {
      this.close("no CONNECT within the connect timeout", false, "timeout");
    } else if (check === "keep-alive-timeout") {
      this.disconnect(
        REASON_CODE.KeepAliveTimeout,
        `keep alive timeout (${(this.#keepAliveMs * 1.5) / 1000} s)`,
      );
    } else {
      return check;
    }
    return undefined;
  }

  /** The one place an error becomes the peer's answer (`handlers/error.ts`). */
  fail(error: unknown): void {
    answerError(this, error);
  }

  /** Server-initiated disconnect: v5 DISCONNECT with `reasonCode` (and a reason string), then close with the will. */
  disconnect(reasonCode: number, reason: string, properties?: Properties): void {
    if (this.#state === "closed") return;
    if ((this.#state === "connected" || this.#state === "resuming") && this.protocolVersion === 5) {
      const props: Properties = { ...properties, ...(this.problemInfo ? { reasonString: reason } : {}) };
      let bytes = encodeDisconnect({ reasonCode, properties: props }, 5);
      // No Reason String when it would not fit the client's Maximum Packet Size [MQTT-3.14.2-3 (5.0)].
      if (bytes.length > this.maxPacketSize) {
        bytes = encodeDisconnect({ reasonCode, properties: { ...properties } }, 5);
      }
      this.send(bytes);
    }
    const cause = this.#state === "connected" ? disconnectReason(reasonCode) : refusalReason(reasonCode);
    this.close(`${reason} (${reasonName(reasonCode)})`, true, cause, reasonCode);
  }

  /**
   * Closes the connection once: aborts an authentication under way, detaches the session (publishing the will
   * when `sendWill`), then writes what is queued and closes the socket (`closing.ts`). `cause` says why for the
   * event hub (`events.ts`): a connected client's close without one is a socket error; a connection closed before
   * CONNACK without one (the peer went away) is no refusal.
   */
  close(reason: string, sendWill: boolean, cause?: CloseCause, reasonCode?: number): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    const wasConnected = this.#state === "connected";
    if (this.core.events.listening) {
      const username = this.pendingConnect?.packet.username; // a refusal's: who it claimed to be
      const at = this.core.clock.now();
      // Before the session opened, no "connected" event went out: a close then is a refusal, as while authenticating.
      const state = this.#state === "resuming" ? "authenticating" : this.#state;
      emitConnectionEnd(this.core.events, this, { state, cause, reasonCode, at, username });
    }
    this.#state = "closed";
    const core = this.core;
    core.deadlines.cancel(this.#deadline);
    this.#deadline = undefined;
    const will = sendWill ? this.will : undefined;
    this.will = undefined;
    this.pendingConnect?.abort.abort(new Error("the connection closed"));
    this.pendingConnect = undefined;
    if (wasConnected && this.session !== undefined) {
      if (logs(core.logger, "info")) {
        core.logger.info(
          `client ${printable(this.clientId)} disconnected from ${this.info.remoteAddress} ` +
            `(MQTT ${versionName(this.protocolVersion)}): ${printable(reason)}`,
          {
            event: reasonCode === REASON_CODE.AdministrativeAction ? "client.kicked" : "client.disconnected",
            clientId: this.clientId,
            username: this.identity.username,
            remote: this.info.remoteAddress,
            protocol: versionName(this.protocolVersion),
            reason: cause ?? "socket_error",
            reasonCode,
          },
        );
      }
      core.detach(this, this.session, will);
      queueOwedRetained(this, this.session);
    }
    this.#closed = this.#finish();
    return this.#closed;
  }

  async #finish(): Promise<void> {
    await closeStream(this.#output, this.#stream, () => this.#linger);
    this.core.connectionClosed(this);
  }
}
