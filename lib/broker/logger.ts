/**
 * The logging seam: `lib/` never prints; the entry point passes a logger.
 *
 * @module
 */

/** Log levels, most severe first. */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;

/** A log level name. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Where the broker's log lines go. */
export interface Logger {
  /** Something an operator must look at: a listener, a storage commit or a connection failed unexpectedly. */
  error(message: string): void;
  /** A client broke the protocol, or a connection or message was refused or dropped at a limit. */
  warn(message: string): void;
  /** Lifecycle and peers: listening, restored state, failed TLS handshakes. */
  info(message: string): void;
  /** Per-client detail: denied PUBLISHes, sessions ending, wills published. */
  debug(message: string): void;
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
export function leveledLogger(level: LogLevel, write: (level: LogLevel, message: string) => void): Logger {
  const max = LOG_LEVELS.indexOf(level);
  const at = (l: LogLevel) =>
    LOG_LEVELS.indexOf(l) <= max ? (message: string) => write(l, message) : () => {};
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
