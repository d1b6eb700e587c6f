import { REASON_CODE, reasonName } from "./packet/reason_code.ts";

/** Options for {@linkcode MqttError}. */
export interface MqttErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * An error that carries the MQTT reason code a peer should be told. Decoders and broker handlers throw it; one
 * place turns it into a v5 DISCONNECT (or a v3 close).
 *
 * @example
 * ```ts
 * import { MqttError, REASON_CODE } from "./mod.ts";
 * const err = new MqttError(REASON_CODE.MalformedPacket, "Cannot decode PUBLISH: QoS is 3 [MQTT-3.3.1-4 (5.0)]");
 * console.assert(err.reasonCode === 0x81);
 * ```
 */
export class MqttError extends Error {
  /** The v5 reason code (0x80 or above for errors). */
  readonly reasonCode: number;

  /** `reasonCode` is what the peer is told; `message` says what failed and cites the rule. */
  constructor(reasonCode: number, message: string, options: MqttErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MqttError";
    this.reasonCode = reasonCode;
  }

  /** The reason code's name, e.g. `"MalformedPacket"`. */
  get reasonName(): string {
    return reasonName(this.reasonCode);
  }
}

/** Shorthand for a Malformed Packet (0x81) error. */
export function malformed(message: string): MqttError {
  return new MqttError(REASON_CODE.MalformedPacket, message);
}

/** Shorthand for a Protocol Error (0x82). */
export function protocolError(message: string): MqttError {
  return new MqttError(REASON_CODE.ProtocolError, message);
}
