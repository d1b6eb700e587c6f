/**
 * The client's side of connecting (sections 3.1, 3.2 and 4.12): one {@linkcode Handshake} per attempt opens the
 * stream, sends CONNECT and waits for CONNACK, answering AUTH challenges of enhanced authentication on the way;
 * with the CONNECT it sends and what a refusing CONNACK means.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { utf8Encode } from "../codec/utf8.ts";
import { MqttError, protocolError } from "../mqtt_error.ts";
import type { AuthPacket } from "../packet/auth.ts";
import type { ConnackPacket } from "../packet/connack.ts";
import type { ConnectPacket, WillMessage } from "../packet/connect.ts";
import type { Packet } from "../packet/packet.ts";
import { PACKET_TYPE, packetName, type ProtocolVersion } from "../packet/packet_type.ts";
import type { Properties } from "../packet/properties.ts";
import { connackReasonFromV3, REASON_CODE, reasonName } from "../packet/reason_code.ts";
import { Connection, type ConnectionEnd } from "./connection.ts";
import type { Connector } from "./connector.ts";
import type { ClientAuthExchange, EnhancedAuth } from "./enhanced_auth.ts";
import { CLIENT_DEFAULTS, type ConnectResult, type MqttClientOptions } from "./options.ts";
import { isPermanentRefusal, markFinal } from "./reconnect.ts";

/**
 * The CONNECT for one attempt. `first` is the first connect of the client; `auth` the enhanced-authentication
 * exchange of this attempt, if any.
 */
export function connectPacket(
  options: MqttClientOptions,
  version: ProtocolVersion,
  clientId: string,
  first: boolean,
  auth: ClientAuthExchange | undefined,
): ConnectPacket {
  const v5 = version === 5;
  const cleanStart = options.cleanStart ?? true;
  const password = options.password;
  let will: WillMessage | undefined;
  if (options.will !== undefined) {
    const w = options.will;
    will = {
      topic: w.topic,
      payload: typeof w.payload === "string" ? utf8Encode(w.payload) : w.payload ?? new Uint8Array(0),
      qos: w.qos ?? 0,
      retain: w.retain ?? false,
      ...(v5 && w.properties !== undefined ? { properties: w.properties } : {}),
    };
  }
  const properties: Properties | undefined = auth === undefined ? options.properties : {
    ...options.properties,
    authenticationMethod: auth.method,
    ...(auth.data === undefined ? {} : { authenticationData: auth.data }),
  };
  return {
    type: PACKET_TYPE.CONNECT,
    protocolVersion: version,
    clientId,
    // A v5 reconnect resumes the session this client started; a v3 one keeps the flag, since Clean Session 0
    // would leave a session behind that never expires.
    cleanStart: first || !v5 ? cleanStart : false,
    keepAlive: options.keepAlive ?? CLIENT_DEFAULTS.keepAlive,
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(password === undefined
      ? {}
      : { password: typeof password === "string" ? utf8Encode(password) : password }),
    ...(will === undefined ? {} : { will }),
    ...(v5 && properties !== undefined ? { properties } : {}),
  };
}

/** What a successful CONNACK means for the caller; the Server Keep Alive wins [MQTT-3.2.2-21 (5.0)]. */
export function connectResult(
  connack: ConnackPacket,
  clientId: string,
  options: MqttClientOptions,
): ConnectResult {
  return {
    sessionPresent: connack.sessionPresent,
    clientId,
    keepAlive: connack.properties?.serverKeepAlive ?? options.keepAlive ?? CLIENT_DEFAULTS.keepAlive,
    ...(connack.properties === undefined ? {} : { properties: connack.properties }),
  };
}

/** The error for a refusing CONNACK, with v3 return codes mapped to v5 reason codes; permanent ones are final. */
export function connackError(packet: ConnackPacket, version: ProtocolVersion): MqttError {
  let error: MqttError;
  if (version === 5) {
    const reason = packet.properties?.reasonString;
    error = new MqttError(
      packet.reasonCode,
      `Connection refused: ${reasonName(packet.reasonCode)} (0x${
        packet.reasonCode.toString(16).padStart(2, "0")
      })${reason === undefined ? "" : `: ${reason}`}`,
    );
  } else {
    const { reasonCode, text } = connackReasonFromV3(packet.reasonCode) ??
      { reasonCode: REASON_CODE.UnspecifiedError, text: "unknown reason" };
    error = new MqttError(reasonCode, `Connection refused: ${text} (return code ${packet.reasonCode})`);
  }
  return isPermanentRefusal(error.reasonCode) ? markFinal(error) : error;
}

/**
 * Answers the server's AUTH challenge during CONNECT (section 4.12): resolves with the AUTH to send back. Throws a
 * Protocol Error for an AUTH the exchange did not ask for; rejects with a final Not authorized error when the
 * method cannot answer.
 */
export function answerChallenge(
  auth: ClientAuthExchange | undefined,
  packet: AuthPacket,
): Promise<AuthPacket> {
  if (auth === undefined) {
    throw protocolError(
      "The server sent AUTH, but the client asked for no enhanced authentication [MQTT-4.12.0-6 (5.0)]",
    );
  }
  const method = packet.properties?.authenticationMethod;
  if (packet.reasonCode !== REASON_CODE.ContinueAuthentication || method !== auth.method) {
    throw protocolError(
      `Expected AUTH Continue authentication for ${auth.method}, received ${
        reasonName(packet.reasonCode)
      } for ${method ?? "no method"} [MQTT-4.12.0-5 (5.0)]`,
    );
  }
  return auth.continue(packet.properties?.authenticationData).then((data): AuthPacket => ({
    type: PACKET_TYPE.AUTH,
    reasonCode: REASON_CODE.ContinueAuthentication,
    properties: {
      authenticationMethod: auth.method,
      ...(data === undefined ? {} : { authenticationData: data }),
    },
  }), (error) => {
    throw markFinal(
      new MqttError(
        REASON_CODE.NotAuthorized,
        `${auth.method} authentication failed: ${error instanceof Error ? error.message : error}`,
      ),
    );
  });
}

/**
 * Checks the server's proof in a successful CONNACK, when the method has one: resolves, or rejects with a final
 * Not authorized error when the server failed to prove itself.
 */
export async function verifyServer(
  auth: ClientAuthExchange | undefined,
  connack: ConnackPacket,
): Promise<void> {
  const verify = auth?.verify;
  if (verify === undefined) return;
  if (!await verify.call(auth, connack.properties?.authenticationData)) {
    throw markFinal(
      new MqttError(
        REASON_CODE.NotAuthorized,
        `The server failed to prove itself in ${auth!.method} authentication`,
      ),
    );
  }
}

/** What a {@linkcode Handshake} needs from the client. */
export interface HandshakeOptions {
  readonly version: ProtocolVersion;
  readonly connector: Connector;
  /** The server's address for error messages, when known. */
  readonly peer: string | undefined;
  readonly clock: Clock;
  /** How long the attempt may take, stream and CONNACK together. */
  readonly timeoutMs: number;
  /** The largest packet accepted from the server (v5 Maximum Packet Size). */
  readonly maxPacketSize: number | undefined;
  /** Starts this attempt's enhanced-authentication exchange (v5). */
  readonly enhancedAuth: EnhancedAuth | undefined;
  /** The CONNECT to send, given this attempt's enhanced-authentication exchange. */
  connect(auth: ClientAuthExchange | undefined): ConnectPacket;
  /** Every packet read on the connection goes to the client's one dispatcher. */
  onPacket(conn: Connection, packet: Packet): void;
  /** Every packet sent on the connection. */
  onSend(conn: Connection, packet: Packet): void;
  /** The connection ended (now or long after the handshake). */
  onEnded(conn: Connection, end: ConnectionEnd): void;
  /** Enters the connected state on a successful CONNACK; synchronous, so packets behind it are already ours. */
  onConnack(conn: Connection, connack: ConnackPacket): ConnectResult;
}

/** One connect attempt, from opening the stream to CONNACK. */
export class Handshake {
  #options: HandshakeOptions;
  #controller = new AbortController();
  #result = Promise.withResolvers<ConnectResult>();
  #auth: ClientAuthExchange | undefined;
  #conn: Connection | undefined;

  /** Prepares an attempt; {@linkcode Handshake.run} starts it. */
  constructor(options: HandshakeOptions) {
    this.#options = options;
    this.#result.promise.catch(() => {});
  }

  /** The attempt's connection, once the stream is open. */
  get conn(): Connection | undefined {
    return this.#conn;
  }

  /** Opens the stream, sends CONNECT and resolves at a successful CONNACK; rejects on refusal, timeout or cancel. */
  async run(): Promise<ConnectResult> {
    const options = this.#options;
    const controller = this.#controller;
    const timer = options.clock.setTimeout(
      () =>
        controller.abort(
          new Deno.errors.TimedOut(
            this.#conn === undefined
              ? `No connection within ${options.timeoutMs} ms`
              : `No CONNACK within ${options.timeoutMs} ms`,
          ),
        ),
      options.timeoutMs,
    );
    try {
      if (options.enhancedAuth !== undefined) {
        this.#auth = await abortable(Promise.resolve(options.enhancedAuth()), controller.signal);
      }
      const stream = await abortable(options.connector(controller.signal), controller.signal, closeQuietly);
      if (controller.signal.aborted) {
        closeQuietly(stream);
        throw controller.signal.reason;
      }
      const conn: Connection = new Connection(stream, {
        version: options.version,
        ...(options.peer === undefined ? {} : { peer: options.peer }),
        ...(options.maxPacketSize === undefined ? {} : { maxPacketSize: options.maxPacketSize }),
        onPacket: (packet) => options.onPacket(conn, packet),
        onSend: (packet) => options.onSend(conn, packet),
      });
      this.#conn = conn;
      conn.ended.then((end) => options.onEnded(conn, end));
      conn.send(options.connect(this.#auth));
      return await abortable(this.#result.promise, controller.signal);
    } catch (error) {
      const conn = this.#conn;
      if (conn !== undefined) {
        conn.abort(error instanceof Error ? error : new Error(String(error)));
        await conn.ended;
      }
      throw error;
    } finally {
      options.clock.clearTimeout(timer);
    }
  }

  /** A packet while connecting: CONNACK ends the handshake, AUTH continues it [MQTT-3.2.0-1 (5.0)]. */
  onPacket(packet: Packet): void {
    const conn = this.#conn!;
    const fail = (error: unknown): void => {
      this.#result.reject(error);
      conn.fail(error instanceof Error ? error : new Error(String(error)));
    };
    switch (packet.type) {
      case PACKET_TYPE.CONNACK: {
        if (packet.reasonCode !== 0) {
          const error = connackError(packet, this.#options.version);
          this.#result.reject(error);
          conn.abort(error);
          return;
        }
        const result = this.#options.onConnack(conn, packet);
        if (this.#auth?.verify === undefined) {
          this.#result.resolve(result);
          return;
        }
        // Connected already (see onConnack); the promise waits for the server's proof.
        verifyServer(this.#auth, packet).then(() => this.#result.resolve(result), fail);
        return;
      }
      case PACKET_TYPE.AUTH:
        answerChallenge(this.#auth, packet).then((reply) => conn.send(reply), fail);
        return;
      default:
        throw protocolError(`Expected CONNACK, received ${packetName(packet.type)} [MQTT-3.2.0-1 (5.0)]`);
    }
  }

  /** The connection ended before CONNACK. */
  ended(end: ConnectionEnd): void {
    this.#result.reject(
      end ?? new Deno.errors.ConnectionReset("The server closed the connection before CONNACK"),
    );
  }

  /** Stops the attempt because the client closes. */
  async cancel(reason: Error): Promise<void> {
    this.#controller.abort(reason);
    if (this.#conn !== undefined) await this.#conn.close();
  }
}

/** Waits for `promise` unless `signal` aborts first; a value that arrives late is handed to `onLate`. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal, onLate?: (value: T) => void): Promise<T> {
  if (signal.aborted) {
    promise.then((value) => onLate?.(value), () => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      promise.then((value) => onLate?.(value), () => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) onLate?.(value);
        else resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

function closeQuietly(stream: { close(): void }): void {
  try {
    stream.close();
  } catch {
    // already closed
  }
}
