/**
 * The last log records in memory, for the admin API (`GET /api/v1/logs`) and its event stream (`log` events):
 * an operator sees what the broker said lately without access to its stderr. A fixed ring, so a chatty broker
 * costs the same memory as a quiet one.
 *
 * @module
 */

import { LOG_LEVELS, type LogFields, type Logger, type LogLevel, type LogRecord, logs } from "./logger.ts";

/** How many records a {@linkcode LogRing} keeps by default. */
export const LOG_RING_SIZE = 1000;

/** Listens to new records of a {@linkcode LogRing}. */
export type LogRecordListener = (record: LogRecord) => void;

/** What {@linkcode LogRing.records} returns. */
export interface LogQuery {
  /** Only records at this level or more severe. @default {"debug"} */
  readonly level?: LogLevel;
  /** Only records of this `event` id. */
  readonly event?: string;
  /** Only records after this time, epoch ms. */
  readonly since?: number;
  /** At most this many, the newest. @default {LOG_RING_SIZE} */
  readonly limit?: number;
}

/**
 * The last {@linkcode LOG_RING_SIZE} records at `info` or more severe (debug lines are per packet and would push
 * out everything else). {@linkcode LogRing.wrap} puts it behind a logger.
 *
 * @example
 * ```ts
 * import { LogRing } from "./log_ring.ts";
 * import { SILENT_LOGGER } from "./logger.ts";
 * const ring = new LogRing();
 * const logger = ring.wrap({ ...SILENT_LOGGER, enabled: () => true });
 * logger.warn("queue full", { event: "messages.dropped", clientId: "a" });
 * console.assert(ring.records()[0]!.fields?.event === "messages.dropped");
 * ```
 */
export class LogRing {
  readonly #capacity: number;
  readonly #slots: (LogRecord | undefined)[];
  /** Where the next record goes. */
  #next = 0;
  #size = 0;
  #listeners: readonly LogRecordListener[] = [];

  /** A ring of `capacity` records. */
  constructor(capacity: number = LOG_RING_SIZE) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError("capacity must be a positive integer");
    }
    this.#capacity = capacity;
    this.#slots = new Array(capacity);
  }

  /** How many records it holds. */
  get size(): number {
    return this.#size;
  }

  /** Keeps `record` (pushing out the oldest when full) and hands it to the listeners. */
  push(record: LogRecord): void {
    this.#slots[this.#next] = record;
    this.#next = (this.#next + 1) % this.#capacity;
    if (this.#size < this.#capacity) this.#size++;
    for (const listener of this.#listeners) {
      try {
        listener(record);
      } catch {
        // a listener's bug must not break the line that was being logged
      }
    }
  }

  /** The records kept, oldest first, filtered by `query`. */
  records(query: LogQuery = {}): LogRecord[] {
    const max = LOG_LEVELS.indexOf(query.level ?? "debug");
    const out: LogRecord[] = [];
    const start = (this.#next - this.#size + this.#capacity) % this.#capacity;
    for (let i = 0; i < this.#size; i++) {
      const record = this.#slots[(start + i) % this.#capacity]!;
      if (LOG_LEVELS.indexOf(record.level) > max) continue;
      if (query.since !== undefined && record.time <= query.since) continue;
      if (query.event !== undefined && record.fields?.event !== query.event) continue;
      out.push(record);
    }
    const limit = query.limit ?? this.#capacity;
    return out.length > limit ? out.slice(out.length - limit) : out;
  }

  /** Calls `listener` with every record from now on; returns the function that stops it. */
  subscribe(listener: LogRecordListener): () => void {
    this.#listeners = [...this.#listeners, listener];
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  /**
   * A logger that passes everything to `logger` and keeps what `logger` keeps at `info` or more severe here.
   * Its `enabled` is `logger`'s, so call sites skip building lines nobody keeps, as before.
   */
  wrap(logger: Logger): Logger {
    const at = (level: LogLevel) => {
      const inner = logger[level].bind(logger);
      if (level === "debug") return inner;
      return (message: string, fields?: LogFields) => {
        inner(message, fields);
        if (logs(logger, level)) this.push({ time: Date.now(), level, msg: message, fields });
      };
    };
    return {
      error: at("error"),
      warn: at("warn"),
      info: at("info"),
      debug: at("debug"),
      enabled: (level) => logs(logger, level),
    };
  }
}
