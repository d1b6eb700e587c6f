/**
 * `$SYS` statistics: the broker's counters, session counts and Mosquitto-style load averages, published as
 * retained messages under `$SYS/broker/` every `sysInterval` seconds.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import { utf8Encode } from "../codec/utf8.ts";
import type { TopicRouter } from "../topic/router.ts";
import type { BrokerCounters } from "./counters.ts";
import type { RetainedStore } from "./retained.ts";
import type { Sessions } from "./sessions.ts";
import type { Message } from "./storage/persistence.ts";

/** The broker's version, as `$SYS/broker/version` reports it. */
export const BROKER_VERSION = "deno-mqtt 0.1.0";

/** What {@linkcode SysPublisher} reads and where it publishes. */
export interface SysOptions {
  readonly clock: Clock;
  /** Totals that only grow: `$SYS` counts come from here, never from live sessions. */
  readonly counters: BrokerCounters;
  readonly sessions: Sessions;
  readonly router: TopicRouter;
  readonly retained: RetainedStore;
  /** Routes one `$SYS` message. */
  readonly publish: (message: Message) => number;
}

/** Publishes `$SYS/broker/...` now and then on a timer. */
export class SysPublisher {
  readonly #clock: Clock;
  readonly #stats: BrokerCounters;
  readonly #sessions: Sessions;
  readonly #router: TopicRouter;
  readonly #retained: RetainedStore;
  readonly #publish: (message: Message) => number;
  readonly #startedAt: number;
  #timer: TimerId | undefined;
  /** The totals at the last publish, for the load averages; `at` -1 before the first. */
  #previous = { at: -1, received: 0, sent: 0, bytesReceived: 0, bytesSent: 0, connections: 0 };
  #loads = new Map<string, number>();

  /** The uptime counts from here. */
  constructor(options: SysOptions) {
    this.#clock = options.clock;
    this.#stats = options.counters;
    this.#sessions = options.sessions;
    this.#router = options.router;
    this.#retained = options.retained;
    this.#publish = options.publish;
    this.#startedAt = this.#clock.monotonic();
  }

  /** Publishes now, then every `intervalSeconds`. */
  start(intervalSeconds: number): void {
    this.publish();
    const tick = () => {
      this.publish();
      this.#timer = this.#clock.setTimeout(tick, intervalSeconds * 1000);
    };
    this.#timer = this.#clock.setTimeout(tick, intervalSeconds * 1000);
  }

  /** Stops the timer. */
  stop(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Publishes every `$SYS` topic once. */
  publish(): void {
    // Uptime and rates are intervals: on the monotonic clock, so a step of the wall clock does not skew them.
    const now = this.#clock.monotonic();
    const stats = this.#stats;
    let connected = 0;
    for (const session of this.#sessions.values()) if (session.link !== undefined) connected++;
    const total = this.#sessions.size;
    const previous = this.#previous;
    const interval = (now - previous.at) / 1000;
    const values: [string, string | number][] = [
      ["version", BROKER_VERSION],
      ["uptime", `${Math.floor((now - this.#startedAt) / 1000)} seconds`],
      ["clients/connected", connected],
      ["clients/active", connected],
      ["clients/disconnected", total - connected],
      ["clients/inactive", total - connected],
      ["clients/total", total],
      ["messages/received", stats.packetsReceived],
      ["messages/sent", stats.packetsSent],
      ["publish/messages/received", stats.messagesReceived],
      ["publish/messages/sent", stats.messagesSent],
      ["publish/messages/dropped", stats.messagesDropped],
      ["bytes/received", stats.bytesReceived],
      ["bytes/sent", stats.bytesSent],
      ["subscriptions/count", this.#router.size],
      ["retained messages/count", this.#retained.size],
    ];
    if (previous.at >= 0 && interval > 0) {
      // Per-minute rates as exponentially damped averages, as Mosquitto's $SYS/broker/load/... do.
      for (
        const [name, delta] of [
          ["messages/received", stats.packetsReceived - previous.received],
          ["messages/sent", stats.packetsSent - previous.sent],
          ["bytes/received", stats.bytesReceived - previous.bytesReceived],
          ["bytes/sent", stats.bytesSent - previous.bytesSent],
          ["connections", stats.connections - previous.connections],
        ] as const
      ) {
        for (const [window, minutes] of [["1min", 1], ["5min", 5], ["15min", 15]] as const) {
          const key = `load/${name}/${window}`;
          const rate = (delta / interval) * 60;
          const factor = Math.exp(-interval / (60 * minutes));
          const value = (this.#loads.get(key) ?? rate) * factor + rate * (1 - factor);
          this.#loads.set(key, value);
          values.push([key, value.toFixed(2)]);
        }
      }
    }
    this.#previous = {
      at: now,
      received: stats.packetsReceived,
      sent: stats.packetsSent,
      bytesReceived: stats.bytesReceived,
      bytesSent: stats.bytesSent,
      connections: stats.connections,
    };
    for (const [name, value] of values) {
      this.#publish({
        topic: `$SYS/broker/${name}`,
        payload: utf8Encode(String(value)),
        qos: 0,
        retain: true,
      });
    }
  }
}
