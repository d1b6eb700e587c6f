/**
 * `sub -F FORMAT` (mosquitto_sub's output format): the format is compiled once, before connecting, so an unknown
 * `%` or `@` code is a usage error rather than a surprise at the first message; `%j` and `%J` give mosquitto_sub's JSON
 * object (keys `tst`, `topic`, `qos`, `retain`, `payloadlen`, `mid`, `properties`, `payload`).
 *
 * @module
 */

import type { MqttMessage } from "../lib/client/inbox.ts";
import { UsageError } from "./_flags.ts";
import { concatBytes } from "./_io.ts";

const encoder = new TextEncoder();
const lossyDecoder = new TextDecoder();

/** `%J` met a payload that is not JSON: the message is skipped with this error (as mosquitto_sub). */
export class PayloadNotJsonError extends Error {
  constructor(topic: string) {
    super(`Message payload is not valid JSON on topic ${topic}.`);
    this.name = "PayloadNotJsonError";
  }
}

/** The `%` codes, each with what it prints. */
const CODES = {
  t: "topic",
  p: "payload (raw bytes)",
  q: "QoS",
  r: "retain (0/1)",
  l: "payload length",
  m: "packet id (0 at QoS 0)",
  x: "payload in hex",
  X: "payload in upper-case hex",
  j: "JSON object, payload as a string",
  J: "JSON object, payload as JSON",
  I: "ISO 8601 local time with the UTC offset",
  U: "Unix time with nanoseconds",
  A: "v5 topic alias",
  C: "v5 content type",
  D: "v5 correlation data (raw bytes)",
  E: "v5 message expiry interval",
  F: "v5 payload format indicator",
  P: "v5 user properties (key:value, space separated)",
  R: "v5 response topic",
  S: "v5 subscription identifier",
  "%": "a percent sign",
} as const;

type Code = keyof typeof CODES;

/** Codes that may be zero-padded (mosquitto's numeric fields). */
const ZERO_PADDED: ReadonlySet<Code> = new Set(["A", "E", "F", "l", "m", "S", "x", "X"]);
/** Codes that take a maximum width (`%10.10t`). */
const CUT: ReadonlySet<Code> = new Set(["C", "I", "R", "t"]);
/** Codes that take a field width. */
const WIDENED: ReadonlySet<Code> = new Set(["A", "C", "E", "F", "I", "l", "m", "p", "R", "S", "t", "x", "X"]);

type Token =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "time"; readonly code: TimeCode }
  | {
    readonly kind: "field";
    readonly code: Code;
    readonly left: boolean;
    readonly zero: boolean;
    readonly width: number;
    readonly max: number | undefined;
  };

/** mosquitto_sub's `@` codes (strftime's, local time), plus `@N` nanoseconds of the second. */
const TIME_CODES = {
  Y: "year",
  y: "year, 2 digits",
  m: "month 01-12",
  d: "day 01-31",
  e: "day, space padded",
  j: "day of the year 001-366",
  H: "hour 00-23",
  I: "hour 01-12",
  M: "minute",
  S: "second",
  p: "AM or PM",
  a: "weekday, short",
  A: "weekday",
  b: "month, short",
  B: "month",
  F: "@Y-@m-@d",
  T: "@H:@M:@S",
  D: "@m/@d/@y",
  R: "@H:@M",
  s: "Unix time, seconds",
  z: "UTC offset, +hhmm",
  N: "nanoseconds of the second",
} as const;

type TimeCode = keyof typeof TIME_CODES;

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

function two(n: number): string {
  return String(n).padStart(2, "0");
}

/** One `@` code for `now`, in local time as strftime gives it. */
function timeField(code: TimeCode, now: Date): string {
  switch (code) {
    case "Y":
      return String(now.getFullYear());
    case "y":
      return two(now.getFullYear() % 100);
    case "m":
      return two(now.getMonth() + 1);
    case "d":
      return two(now.getDate());
    case "e":
      return String(now.getDate()).padStart(2, " ");
    case "j": {
      const start = new Date(now.getFullYear(), 0, 1);
      return String(Math.floor((now.getTime() - start.getTime()) / 86_400_000) + 1).padStart(3, "0");
    }
    case "H":
      return two(now.getHours());
    case "I":
      return two((now.getHours() + 11) % 12 + 1);
    case "M":
      return two(now.getMinutes());
    case "S":
      return two(now.getSeconds());
    case "p":
      return now.getHours() < 12 ? "AM" : "PM";
    case "a":
      return DAYS[now.getDay()]!.slice(0, 3);
    case "A":
      return DAYS[now.getDay()]!;
    case "b":
      return MONTHS[now.getMonth()]!.slice(0, 3);
    case "B":
      return MONTHS[now.getMonth()]!;
    case "F":
      return `${now.getFullYear()}-${two(now.getMonth() + 1)}-${two(now.getDate())}`;
    case "T":
      return `${two(now.getHours())}:${two(now.getMinutes())}:${two(now.getSeconds())}`;
    case "D":
      return `${two(now.getMonth() + 1)}/${two(now.getDate())}/${two(now.getFullYear() % 100)}`;
    case "R":
      return `${two(now.getHours())}:${two(now.getMinutes())}`;
    case "s":
      return String(Math.floor(now.getTime() / 1000));
    case "z": {
      const offset = -now.getTimezoneOffset();
      const abs = Math.abs(offset);
      return `${offset < 0 ? "-" : "+"}${two(Math.floor(abs / 60))}${two(abs % 60)}`;
    }
    case "N":
      return String(now.getMilliseconds() * 1_000_000).padStart(9, "0");
  }
}

/** A compiled `-F` format. */
export type MessageFormat = readonly Token[];

const ESCAPES: Readonly<Record<string, string>> = {
  n: "\n",
  t: "\t",
  r: "\r",
  "\\": "\\",
  "0": "\0",
  a: "\x07",
  e: "\x1b",
  v: "\v",
};

/**
 * Compiles a `-F` format: `%[-][0][width][.max]code` fields, `@` time codes and `\` escapes.
 * @throws {UsageError} for an unknown `%` or `@` code.
 */
export function compileFormat(format: string): MessageFormat {
  const tokens: Token[] = [];
  let text = "";
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!;
    if (c === "\\" && i + 1 < format.length) {
      const next = format[++i]!;
      text += ESCAPES[next] ?? `\\${next}`;
      continue;
    }
    if (c === "@") {
      const next = format[++i];
      if (next === "@") {
        text += "@";
        continue;
      }
      if (next === undefined || !(next in TIME_CODES)) {
        throw new UsageError(
          next === undefined
            ? "-F: the format ends with a lone @ (@@ for an at sign)"
            : `-F: unknown time code @${next} (known: ${
              Object.keys(TIME_CODES).map((k) => `@${k}`).join(" ")
            }; @@ for an at sign)`,
        );
      }
      if (text !== "") tokens.push({ kind: "text", text });
      text = "";
      tokens.push({ kind: "time", code: next as TimeCode });
      continue;
    }
    if (c !== "%") {
      text += c;
      continue;
    }
    const spec = /^([-0]*)(\d*)(?:\.(\d+))?(.?)/.exec(format.slice(i + 1))!;
    const [whole, flags = "", width = "", max, code = ""] = spec;
    if (!(code in CODES)) {
      throw new UsageError(
        code === ""
          ? "-F: the format ends in the middle of a % field"
          : `-F: unknown format code %${code} (known: ${
            Object.keys(CODES).map((k) => `%${k}`).join(" ")
          }; %% for a percent sign)`,
      );
    }
    i += whole.length;
    if (code === "%") {
      text += "%";
      continue;
    }
    if (text !== "") tokens.push({ kind: "text", text });
    text = "";
    const typed = code as Code;
    tokens.push({
      kind: "field",
      code: typed,
      left: flags.includes("-"),
      zero: flags.includes("0") && !flags.includes("-") && ZERO_PADDED.has(typed),
      width: WIDENED.has(typed) && width !== "" ? Number(width) : 0,
      max: CUT.has(typed) && max !== undefined ? Number(max) : undefined,
    });
  }
  if (text !== "") tokens.push({ kind: "text", text });
  return tokens;
}

/** What {@linkcode renderMessage} needs besides the message. */
export interface RenderOptions {
  /** The time printed by `%I`, `%U`, `%j`, `%J`. */
  readonly now: Date;
  /** Indent the JSON of `%j` and `%J` (`--pretty`). */
  readonly pretty: boolean;
}

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

function pad(value: string, token: Extract<Token, { kind: "field" }>): string {
  const cut = token.max === undefined ? value : value.slice(0, token.max);
  if (cut.length >= token.width) return cut;
  if (token.left) return cut.padEnd(token.width, " ");
  return cut.padStart(token.width, token.zero ? "0" : " ");
}

/**
 * A message as a compiled format describes it. The payload (`%p`) and correlation data (`%D`) are written byte
 * for byte.
 * @throws {PayloadNotJsonError} for `%J` and a payload that is not JSON.
 */
export function renderMessage(
  message: MqttMessage,
  format: MessageFormat,
  options: RenderOptions,
): Uint8Array {
  const parts: Uint8Array[] = [];
  let text = "";
  const flush = (): void => {
    if (text !== "") parts.push(encoder.encode(text));
    text = "";
  };
  const bytes = (value: Uint8Array, token: Extract<Token, { kind: "field" }>): void => {
    const padding = " ".repeat(Math.max(0, token.width - value.length));
    if (!token.left) text += padding;
    flush();
    parts.push(value);
    if (token.left) text += padding;
  };
  const props = message.properties;
  for (const token of format) {
    if (token.kind === "text") {
      text += token.text;
      continue;
    }
    if (token.kind === "time") {
      text += timeField(token.code, options.now);
      continue;
    }
    switch (token.code) {
      case "p":
        bytes(message.payload, token);
        break;
      case "D":
        bytes(props?.correlationData ?? new Uint8Array(0), token);
        break;
      case "j":
      case "J":
        text += mosquittoJson(message, token.code === "J", options);
        break;
      default:
        text += pad(field(message, token.code, options.now), token);
    }
  }
  flush();
  return concatBytes(parts);
}

function field(message: MqttMessage, code: Code, now: Date): string {
  const props = message.properties;
  const optional = (value: number | string | undefined): string => value === undefined ? "" : String(value);
  switch (code) {
    case "t":
      return message.topic;
    case "q":
      return String(message.qos);
    case "r":
      return message.retain ? "1" : "0";
    case "l":
      return String(message.payload.length);
    case "m":
      return String(message.packetId ?? 0);
    case "x":
      return hex(message.payload);
    case "X":
      return hex(message.payload).toUpperCase();
    case "I": // as mosquitto_sub: local time, to the second, with the UTC offset
      return `${timeField("F", now)}T${timeField("T", now)}${timeField("z", now)}`;
    case "U": // as mosquitto_sub: seconds and nanoseconds
      return `${timeField("s", now)}.${timeField("N", now)}`;
    case "A":
      return optional(props?.topicAlias);
    case "C":
      return optional(props?.contentType);
    case "E":
      return optional(props?.messageExpiryInterval);
    case "F":
      return optional(props?.payloadFormatIndicator);
    case "P":
      return (props?.userProperties ?? []).map(([key, value]) => `${key}:${value}`).join(" ");
    case "R":
      return optional(props?.responseTopic);
    case "S":
      return optional(props?.subscriptionIdentifiers?.[0]);
    default:
      return "";
  }
}

/** A JSON object whose entries are kept as given, duplicate keys included (user properties may repeat). */
class Entries {
  constructor(readonly list: readonly (readonly [string, unknown])[]) {}
}

function jsonText(value: unknown, indent: string, depth: number): string {
  const entries = value instanceof Entries
    ? value.list
    : value !== null && typeof value === "object" && !Array.isArray(value)
    ? Object.entries(value)
    : undefined;
  if (entries === undefined && !Array.isArray(value)) return JSON.stringify(value) ?? "null";
  const items = entries === undefined
    ? (value as unknown[]).map((item) => jsonText(item, indent, depth + 1))
    : entries.map(([key, item]) =>
      `${JSON.stringify(key)}:${indent === "" ? "" : " "}${jsonText(item, indent, depth + 1)}`
    );
  const [open, close] = entries === undefined ? ["[", "]"] : ["{", "}"];
  if (indent === "" || items.length === 0) return `${open}${items.join(",")}${close}`;
  const inner = indent.repeat(depth + 1);
  return `${open}\n${inner}${items.join(`,\n${inner}`)}\n${indent.repeat(depth)}${close}`;
}

/** The message properties `%j` shows, by mosquitto_sub's names. */
const JSON_PROPERTY_NAMES: Readonly<Record<string, string>> = {
  subscriptionIdentifiers: "subscription-identifier",
  userProperties: "user-properties",
  contentType: "content-type",
  responseTopic: "response-topic",
  correlationData: "correlation-data",
  payloadFormatIndicator: "payload-format-indicator",
  messageExpiryInterval: "message-expiry-interval",
};

/**
 * mosquitto_sub's `%j` (payload as a string) or `%J` (payload as JSON) object.
 * @throws {PayloadNotJsonError} for `%J` and a payload that is not JSON.
 */
export function mosquittoJson(message: MqttMessage, payloadAsJson: boolean, options: RenderOptions): string {
  const text = lossyDecoder.decode(message.payload);
  let payload: unknown = text;
  if (payloadAsJson) {
    try {
      payload = JSON.parse(text);
    } catch {
      throw new PayloadNotJsonError(message.topic);
    }
  }
  // In the order the properties came on the wire, as mosquitto_sub prints them.
  const properties: [string, unknown][] = [];
  for (const [key, value] of Object.entries(message.properties ?? {})) {
    const name = JSON_PROPERTY_NAMES[key];
    if (name === undefined || value === undefined) continue;
    properties.push([
      name,
      key === "subscriptionIdentifiers"
        ? (value as readonly number[])[0]
        : key === "userProperties"
        ? new Entries(value as readonly (readonly [string, string])[])
        : value instanceof Uint8Array
        ? lossyDecoder.decode(value)
        : value,
    ]);
  }
  const object = new Entries([
    ["tst", options.now.toISOString()],
    ["topic", message.topic],
    ["qos", message.qos],
    ["retain", message.retain ? 1 : 0],
    ["payloadlen", message.payload.length],
    ...(message.qos > 0 ? [["mid", message.packetId ?? 0] as const] : []),
    ...(properties.length === 0 ? [] : [["properties", new Entries(properties)] as const]),
    ["payload", payload],
  ]);
  return jsonText(object, options.pretty ? "  " : "", 0);
}
