/**
 * How the CLI prints: packets for `--trace` and the shell, messages for `sub` (-v, --json; -F is in
 * `_message_format.ts`), and errors as one line.
 *
 * @module
 */

import type { MqttMessage } from "../lib/client/inbox.ts";
import { MqttError } from "../lib/mqtt_error.ts";
import type { Packet } from "../lib/packet/packet.ts";
import type { Properties } from "../lib/packet/properties.ts";
import { packetName, type ProtocolVersion } from "../lib/packet/packet_type.ts";
import { connackReasonFromV3, reasonName } from "../lib/packet/reason_code.ts";
import { concatBytes } from "./_io.ts";

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** The payload as text when it is UTF-8, else undefined. */
export function payloadText(payload: Uint8Array): string | undefined {
  try {
    return strictDecoder.decode(payload);
  } catch {
    return undefined;
  }
}

const PREVIEW = 80;

/** A short, printable view of a payload: quoted text (cut at 80 characters) or hex for binary. */
export function payloadPreview(payload: Uint8Array): string {
  const text = payloadText(payload);
  if (text !== undefined) {
    const cut = text.length > PREVIEW ? `${text.slice(0, PREVIEW)}…` : text;
    return JSON.stringify(cut);
  }
  const hex = [...payload.subarray(0, 32)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `0x${hex}${payload.length > 32 ? "…" : ""}`;
}

function code(reasonCode: number): string {
  return `${reasonName(reasonCode)} (0x${reasonCode.toString(16).padStart(2, "0")})`;
}

function propertyValue(value: unknown): string {
  if (value instanceof Uint8Array) return payloadPreview(value);
  if (Array.isArray(value)) {
    return value.every(Array.isArray)
      ? value.map((pair) => `${pair[0]}=${pair[1]}`).join(",")
      : value.join(",");
  }
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/** Properties as ` name=value …`, or "" when there are none. */
export function formatProperties(properties: Properties | undefined): string {
  if (properties === undefined) return "";
  return Object.entries(properties).map(([key, value]) => ` ${key}=${propertyValue(value)}`).join("");
}

/**
 * One line describing a packet, e.g. `PUBLISH a/b qos=1 id=3 retain=0 "hello" (5 bytes)`.
 *
 * @example
 * ```ts
 * import { formatPacket } from "./_format.ts";
 * console.assert(formatPacket({ type: 12 }, 5) === "PINGREQ");
 * ```
 */
export function formatPacket(packet: Packet, version: ProtocolVersion): string {
  const name = packetName(packet.type);
  switch (packet.type) {
    case 1: {
      const will = packet.will === undefined
        ? ""
        : ` will=${packet.will.topic}(qos=${packet.will.qos}${packet.will.retain ? ",retain" : ""})`;
      return `${name} v${packet.protocolVersion} clientId=${JSON.stringify(packet.clientId)} cleanStart=${
        packet.cleanStart ? 1 : 0
      } keepAlive=${packet.keepAlive}${packet.username === undefined ? "" : ` username=${packet.username}`}${
        packet.password === undefined ? "" : " password=***"
      }${will}${formatProperties(packet.properties)}`;
    }
    case 2: {
      const result = version === 5
        ? code(packet.reasonCode)
        : `${
          packet.reasonCode === 0 ? "Accepted" : connackReasonFromV3(packet.reasonCode)?.text ?? "unknown"
        } (return code ${packet.reasonCode})`;
      return `${name} sessionPresent=${packet.sessionPresent ? 1 : 0} ${result}${
        formatProperties(packet.properties)
      }`;
    }
    case 3:
      return `${name} ${packet.topic === "" ? "(alias)" : packet.topic} qos=${packet.qos}${
        packet.packetId === undefined ? "" : ` id=${packet.packetId}`
      } retain=${packet.retain ? 1 : 0}${packet.dup ? " dup=1" : ""} ${
        payloadPreview(packet.payload)
      } (${packet.payload.length} bytes)${formatProperties(packet.properties)}`;
    case 4:
    case 5:
    case 6:
    case 7:
      return `${name} id=${packet.packetId}${version === 5 ? ` ${code(packet.reasonCode)}` : ""}${
        formatProperties(packet.properties)
      }`;
    case 8:
      return `${name} id=${packet.packetId} ${
        packet.subscriptions.map((s) =>
          `${s.filter}(qos=${s.qos}${s.noLocal ? ",nl" : ""}${s.retainAsPublished ? ",rap" : ""}${
            s.retainHandling === 0 ? "" : `,rh=${s.retainHandling}`
          })`
        ).join(" ")
      }${formatProperties(packet.properties)}`;
    case 9:
    case 11: {
      // A SUBACK's 0, 1 and 2 are granted QoS levels, not Success.
      const describe = (c: number): string => packet.type === 9 && c < 3 ? `GrantedQoS${c}` : code(c);
      return `${name} id=${packet.packetId}${
        packet.reasonCodes.length === 0 ? "" : ` [${packet.reasonCodes.map(describe).join(", ")}]`
      }${formatProperties(packet.properties)}`;
    }
    case 10:
      return `${name} id=${packet.packetId} ${packet.filters.join(" ")}${
        formatProperties(packet.properties)
      }`;
    case 12:
    case 13:
      return name;
    case 14:
    case 15:
      return `${name}${version === 5 ? ` ${code(packet.reasonCode)}` : ""}${
        formatProperties(packet.properties)
      }`;
  }
}

/** The `--trace` line for a packet: `-> ` for sent, `<- ` for received. */
export function traceLine(direction: "in" | "out", packet: Packet, version: ProtocolVersion): string {
  return `${direction === "out" ? "->" : "<-"} ${formatPacket(packet, version)}`;
}

/** The default `sub` output: the payload, or with `-v` the topic, a space and the payload. */
export function plainMessage(message: MqttMessage, verbose: boolean): Uint8Array {
  return verbose ? concatBytes([encoder.encode(`${message.topic} `), message.payload]) : message.payload;
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function jsonProperties(properties: Properties): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(properties)) {
    out[key] = value instanceof Uint8Array ? base64(value) : value;
  }
  return out;
}

/**
 * A message as JSON (`--json`, one line unless `pretty`): `topic`, `payload` (text when UTF-8, else
 * `payloadBase64`), `qos`, `retain`, `time`, and `properties` when it has any (binary values in base64).
 */
export function jsonMessage(message: MqttMessage, now: Date = new Date(), pretty = false): string {
  const text = payloadText(message.payload);
  return JSON.stringify(
    {
      time: now.toISOString(),
      topic: message.topic,
      ...(text === undefined ? { payloadBase64: base64(message.payload) } : { payload: text }),
      qos: message.qos,
      retain: message.retain,
      ...(message.properties === undefined ? {} : { properties: jsonProperties(message.properties) }),
    },
    null,
    pretty ? 2 : undefined,
  );
}

/** One line for an error, naming the broker for network failures. */
export function describeError(
  error: unknown,
  where?: { host: string; port: number; label?: string },
): string {
  const at = where === undefined ? "the broker" : where.label ?? `${where.host}:${where.port}`;
  if (error instanceof Deno.errors.ConnectionRefused) return `connection refused by ${at}`;
  if (error instanceof Deno.errors.TimedOut) return `${at} did not answer: ${error.message}`;
  if (error instanceof Deno.errors.ConnectionReset) return `${at}: ${error.message}`;
  if (error instanceof Deno.errors.NotCapable) return `permission denied: ${error.message}`;
  if (error instanceof MqttError) return error.message;
  const message = error instanceof Error ? error.message : String(error);
  if (/lookup|resolve|Name or service not known|No address/i.test(message)) {
    return `cannot resolve host ${JSON.stringify(where?.host ?? "")}: ${message}`;
  }
  if (error instanceof Deno.errors.NetworkUnreachable || error instanceof Deno.errors.AddrNotAvailable) {
    return `${at} is unreachable: ${message}`;
  }
  return message;
}
