/**
 * The logging seam: `lib/` never prints; the entry point passes a logger.
 *
 * @module
 */

/** Log levels, most severe first. */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;

/** A log level name. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A structured field's value. */
export type LogValue = string | number | boolean;

/**
 * Structured fields of a log record, beside its human message: `event` is a stable dotted id
 * (`client.connected`, `auth.failed`, ...; the README lists them), the others say who and where. A JSON log writes
 * them as they are; the text log shows only the message, which already says the same in words.
 */
export interface LogFields {
  /** A stable dotted id, e.g. `client.disconnected`. */
  readonly event?: string | undefined;
  /** The client identifier. */
  readonly clientId?: string | undefined;
  /** The authenticated user name. */
  readonly username?: string | undefined;
  /** The peer as `host:port`. */
  readonly remote?: string | undefined;
  /** The listener's name. */
  readonly listener?: string | undefined;
  /** `3.1`, `3.1.1` or `5.0`. */
  readonly protocol?: string | undefined;
  /** The MQTT reason code sent or received. */
  readonly reasonCode?: number | undefined;
  /** Other fields: `topic`, `reason`, `keepAlive`, ... */
  readonly [field: string]: LogValue | undefined;
}

/** Where the broker's log lines go. `fields` are optional: a logger that ignores them loses nothing of the text. */
export interface Logger {
  /** Something an operator must look at: a listener, a storage commit or a connection failed unexpectedly. */
  error(message: string, fields?: LogFields): void;
  /** A client broke the protocol, or a connection or message was refused or dropped at a limit. */
  warn(message: string, fields?: LogFields): void;
  /** Lifecycle and peers: listening, restored state, failed TLS handshakes. */
  info(message: string, fields?: LogFields): void;
  /** Per-client detail: denied PUBLISHes, sessions ending, wills published. */
  debug(message: string, fields?: LogFields): void;
  /**
   * Whether lines at `level` are kept; a logger without it keeps them all. The broker asks before it builds a
   * line on a hot path (every CONNECT and disconnect), so a quiet logger costs no string work there.
   */
  enabled?(level: LogLevel): boolean;
}

/** Whether `logger` keeps lines at `level` (true when it does not say). */
export function logs(logger: Logger, level: LogLevel): boolean {
  return logger.enabled?.(level) ?? true;
}

/** A logger that drops everything (the default in tests and embedding). */
export const SILENT_LOGGER: Logger = {
  error: () => {},
  warn: () => {},
  info: () => {},
  debug: () => {},
  enabled: () => false,
};

/** Wraps `write` so that only lines at `level` or more severe pass. */
export function leveledLogger(
  level: LogLevel,
  write: (level: LogLevel, message: string, fields?: LogFields) => void,
): Logger {
  const max = LOG_LEVELS.indexOf(level);
  const at = (l: LogLevel) =>
    LOG_LEVELS.indexOf(l) <= max
      ? (message: string, fields?: LogFields) => write(l, message, fields)
      : () => {};
  return {
    error: at("error"),
    warn: at("warn"),
    info: at("info"),
    debug: at("debug"),
    enabled: (l) => LOG_LEVELS.indexOf(l) <= max,
  };
}

/** C0 controls, DEL, C1 controls and the Unicode line and paragraph separators. */
// deno-lint-ignore no-control-regex
const UNPRINTABLE = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g;

/**
 * `text` (a client id, user name, topic or reason from a peer) made safe for a line of a text log: control
 * characters become escapes (`\n`, `\x1b`, `\u2028`), so a client cannot start a forged log line. Every log line
 * that carries a client's string passes it through here.
 *
 * @example
 * ```ts
 * import { printable } from "./logger.ts";
 * console.assert(printable("evil\nINFO admin") === "evil\\nINFO admin");
 * ```
 */
export function printable(text: string): string {
  UNPRINTABLE.lastIndex = 0;
  if (!UNPRINTABLE.test(text)) return text;
  UNPRINTABLE.lastIndex = 0;
  return text.replace(UNPRINTABLE, escapeControl);
}

function escapeControl(char: string): string {
  switch (char) {
    case "\n":
      return "\\n";
    case "\r":
      return "\\r";
    case "\t":
      return "\\t";
  }
  const code = char.charCodeAt(0);
  return code < 0x100
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** One log record, as the writers and the log ring see it. */
export interface LogRecord {
  /** Epoch ms. */
  readonly time: number;
  /** Its level. */
  readonly level: LogLevel;
  /** The human message (the text log's line). */
  readonly msg: string;
  /** Its structured fields, if the call site gave any. */
  readonly fields?: LogFields | undefined;
}

/** The log line formats of `--log-format`. */
export const LOG_FORMATS = ["text", "json"] as const;

/** `text` (today's lines) or `json` (one object per line). */
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Keys a JSON line sets itself: a field of the same name cannot replace them. */
const RESERVED = new Set(["time", "level", "msg"]);

/**
 * A record as one JSON object on one line: `{"time","level","msg","event",...fields}`, time ISO-8601 UTC with ms.
 * `JSON.stringify` escapes every control character (and U+2028/U+2029 are escaped here), so no field can start
 * another line.
 */
export function jsonLogLine(record: LogRecord): string {
  const out: Record<string, LogValue> = {
    time: new Date(record.time).toISOString(),
    level: record.level,
    msg: record.msg,
  };
  const fields = record.fields;
  if (fields !== undefined) {
    if (fields.event !== undefined) out.event = fields.event;
    for (const key in fields) {
      const value = fields[key];
      if (value !== undefined && !RESERVED.has(key)) out[key] = value;
    }
  }
  // JSON.stringify leaves U+2028/U+2029 raw: valid JSON, but a line break to some log viewers.
  return JSON.stringify(out).replace(LINE_SEPARATORS, escapeControl);
}

const LINE_SEPARATORS = /[\u2028\u2029]/g;

/**
 * A record as a line of the text log: `2026-12-06T23:07:01.123Z INFO  message`. The message passes
 * {@linkcode printable} again, so a call site that forgot to escape a client's string cannot let it forge a line.
 */
export function textLogLine(record: LogRecord): string {
  return `${new Date(record.time).toISOString()} ${record.level.toUpperCase().padEnd(5)} ${
    printable(record.msg)
  }`;
}

/**
 * The `write` of a {@linkcode leveledLogger} that prints each record as a line of `format` with `print` (the entry
 * point passes `console.error`) and hands it to `record` too (the log ring), if given.
 *
 * @example
 * ```ts
 * import { leveledLogger, logLineWriter } from "./logger.ts";
 * const lines: string[] = [];
 * const logger = leveledLogger("info", logLineWriter("json", (line) => lines.push(line)));
 * logger.info("client a connected", { event: "client.connected", clientId: "a" });
 * console.assert(JSON.parse(lines[0]!).event === "client.connected");
 * ```
 */
export function logLineWriter(
  format: LogFormat,
  print: (line: string) => void,
  record?: (record: LogRecord) => void,
): (level: LogLevel, message: string, fields?: LogFields) => void {
  const line = format === "json" ? jsonLogLine : textLogLine;
  return (level, msg, fields) => {
    const entry: LogRecord = { time: Date.now(), level, msg, fields };
    print(line(entry));
    record?.(entry);
  };
}
