/**
 * The last hour of the broker's activity for the dashboard: every 10 s, the per-second rates over those 10 s
 * (messages, bytes, drops, connects) and a few gauges, in a ring of 360 slots, handed out column by column as
 * uPlot takes them. Also the per-second rates over the last 10 s, sliding by the second, for the live cards.
 *
 * Rates are differences of the broker's counters (`lib/broker/counters.ts`), which only grow, so nothing is
 * counted twice and nothing on the hot path changes.
 *
 * @module
 */

import type { Broker } from "../broker/broker.ts";
import type { TimerId } from "../clock.ts";
import { brokerGauges } from "../broker/gauges.ts";
import { startMetrics } from "./metrics/render.ts";

/** Slots kept: one hour at {@linkcode HISTORY_INTERVAL_S}. */
export const HISTORY_SLOTS = 360;
/** Seconds per slot. */
export const HISTORY_INTERVAL_S = 10;

/** Per-second rates. */
export interface StatsRates {
  /** PUBLISH received per second. */
  msgIn: number;
  /** PUBLISH sent per second. */
  msgOut: number;
  /** Bytes read per second. */
  bytesIn: number;
  /** Bytes written per second. */
  bytesOut: number;
  /** Messages dropped per second. */
  dropped: number;
  /** Connections accepted per second. */
  connects: number;
}

/** History in columns, oldest first: `t[i]` is when slot `i` ended (Unix seconds), the others its values. */
export interface StatsHistoryColumns {
  /** Seconds per slot. */
  interval: number;
  /** End of each slot, Unix seconds. */
  t: number[];
  /** PUBLISH received per second over the slot. */
  msgIn: number[];
  /** PUBLISH sent per second over the slot. */
  msgOut: number[];
  /** Bytes read per second over the slot. */
  bytesIn: number[];
  /** Bytes written per second over the slot. */
  bytesOut: number[];
  /** Messages dropped per second over the slot. */
  dropped: number[];
  /** Connections accepted per second over the slot. */
  connects: number[];
  /** Connected clients at the end of the slot. */
  clientsConnected: number[];
  /** Subscriptions at the end of the slot. */
  subscriptions: number[];
  /** QoS 1/2 messages queued at the end of the slot. */
  queued: number[];
}

/** Counter columns, in {@linkcode StatsRates} order. */
const RATE_KEYS = ["msgIn", "msgOut", "bytesIn", "bytesOut", "dropped", "connects"] as const;
/** Gauge columns sampled at the end of each slot. */
const GAUGE_KEYS = ["clientsConnected", "subscriptions", "queued"] as const;
/** One-second snapshots kept for the sliding rates: the last 10 s and the one before them. */
const SNAPSHOTS = HISTORY_INTERVAL_S + 1;

/** A ring of the broker's rates and gauges; sampling runs between {@linkcode StatsHistory.start} and `stop`. */
export class StatsHistory {
  readonly #broker: Broker;
  /** Column k of slot i at `#columns[k][i]`: the rates, then the gauges, then the time. */
  readonly #columns: Float64Array[];
  #slots = 0;
  #next = 0;
  /** Counter totals each second (and when they were read, monotonic ms) for the sliding rates. */
  readonly #totals: Float64Array[] = Array.from(
    { length: SNAPSHOTS },
    () => new Float64Array(RATE_KEYS.length),
  );
  readonly #times = new Float64Array(SNAPSHOTS);
  #snapshots = 0;
  #ticks = 0;
  #timer: TimerId | undefined;

  /** Reads `broker`'s counters and gauges; samples nothing until started. */
  constructor(broker: Broker) {
    this.#broker = broker;
    this.#columns = Array.from(
      { length: RATE_KEYS.length + GAUGE_KEYS.length + 1 },
      () => new Float64Array(HISTORY_SLOTS),
    );
  }

  /** Samples every second from now on (on the broker's clock); a history slot is written every 10 s. */
  start(): void {
    if (this.#timer !== undefined) return;
    startMetrics(this.#broker); // the dashboard's disconnect reasons are counted from now on
    this.#snapshot();
    const tick = () => {
      this.#timer = this.#broker.clock.setTimeout(tick, 1000);
      this.#snapshot();
      if (++this.#ticks % HISTORY_INTERVAL_S === 0) this.#record();
    };
    this.#timer = this.#broker.clock.setTimeout(tick, 1000);
  }

  /** Stops sampling; what was recorded stays readable. */
  stop(): void {
    if (this.#timer !== undefined) this.#broker.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Per-second rates over the last 10 s (fewer just after start; zeros before any second has passed). */
  rates(): StatsRates {
    const now = this.#broker.clock.monotonic();
    const current = this.#read();
    const oldest = this.#snapshot10sAgo();
    const rates: StatsRates = { msgIn: 0, msgOut: 0, bytesIn: 0, bytesOut: 0, dropped: 0, connects: 0 };
    if (oldest === undefined) return rates;
    const seconds = (now - this.#times[oldest]!) / 1000;
    if (seconds <= 0) return rates;
    const base = this.#totals[oldest]!;
    RATE_KEYS.forEach((key, k) => rates[key] = (current[k]! - base[k]!) / seconds);
    return rates;
  }

  /** The slots covering the last `seconds` (at most an hour), oldest first. */
  history(seconds: number): StatsHistoryColumns {
    const n = Math.max(0, Math.min(this.#slots, Math.ceil(seconds / HISTORY_INTERVAL_S)));
    const start = (this.#next - n + HISTORY_SLOTS) % HISTORY_SLOTS;
    const column = (k: number): number[] => {
      const values = this.#columns[k]!;
      const out = new Array<number>(n);
      for (let i = 0; i < n; i++) out[i] = values[(start + i) % HISTORY_SLOTS]!;
      return out;
    };
    const t = RATE_KEYS.length + GAUGE_KEYS.length;
    return {
      interval: HISTORY_INTERVAL_S,
      t: column(t),
      msgIn: column(0),
      msgOut: column(1),
      bytesIn: column(2),
      bytesOut: column(3),
      dropped: column(4),
      connects: column(5),
      clientsConnected: column(6),
      subscriptions: column(7),
      queued: column(8),
    };
  }

  /** The counter totals now, in {@linkcode RATE_KEYS} order. */
  #read(into: Float64Array = new Float64Array(RATE_KEYS.length)): Float64Array {
    const c = this.#broker.counters;
    into[0] = c.messagesReceived;
    into[1] = c.messagesSent;
    into[2] = c.bytesReceived;
    into[3] = c.bytesSent;
    into[4] = c.messagesDropped;
    into[5] = c.connections;
    return into;
  }

  #snapshot(): void {
    const i = this.#snapshots % SNAPSHOTS;
    this.#read(this.#totals[i]);
    this.#times[i] = this.#broker.clock.monotonic();
    this.#snapshots++;
  }

  /** The index of the snapshot taken 10 s before the latest one, or the oldest there is. */
  #snapshot10sAgo(): number | undefined {
    if (this.#snapshots === 0) return undefined;
    const back = Math.min(this.#snapshots - 1, HISTORY_INTERVAL_S);
    return (this.#snapshots - 1 - back) % SNAPSHOTS;
  }

  /** Writes a slot: rates over the 10 s just ended, gauges now. */
  #record(): void {
    const latest = (this.#snapshots - 1) % SNAPSHOTS;
    const oldest = this.#snapshot10sAgo()!;
    const seconds = (this.#times[latest]! - this.#times[oldest]!) / 1000;
    const slot = this.#next;
    const columns = this.#columns;
    for (let k = 0; k < RATE_KEYS.length; k++) {
      const delta = this.#totals[latest]![k]! - this.#totals[oldest]![k]!;
      columns[k]![slot] = seconds > 0 ? delta / seconds : 0;
    }
    const gauges = brokerGauges(this.#broker);
    columns[6]![slot] = gauges.clientsConnected;
    columns[7]![slot] = gauges.subscriptions;
    columns[8]![slot] = gauges.queued;
    columns[9]![slot] = Math.floor(this.#broker.clock.now() / 1000);
    this.#next = (slot + 1) % HISTORY_SLOTS;
    if (this.#slots < HISTORY_SLOTS) this.#slots++;
  }
}
