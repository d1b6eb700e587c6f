/**
 * The client side of Keep Alive (section 3.1.2.10): a PINGREQ when the link has been quiet for the keep-alive
 * interval, and a dead-broker verdict when nothing comes back in time.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";

/** Options for {@linkcode KeepAlive}. */
export interface KeepAliveOptions {
  /** The keep-alive interval in milliseconds (the CONNECT Keep Alive, or the server's Server Keep Alive). */
  intervalMs: number;
  /** How long to wait for any packet after a PINGREQ before declaring the broker dead. */
  timeoutMs: number;
  /** The time seam. */
  clock: Clock;
  /** Sends a PINGREQ. */
  onPing: () => void;
  /** Called once when a PINGREQ went unanswered for `timeoutMs`; the monitor stops itself first. */
  onTimeout: () => void;
}

/**
 * Watches one connection. A PINGREQ goes out when nothing was sent, or nothing received, for the interval: the
 * first keeps the server from dropping us [MQTT-3.1.2-20 (5.0)] [MQTT-3.1.2-23 (3.1.1)], the second finds a
 * half-open connection even while we only publish. Any packet received answers a PINGREQ (PINGRESP may sit
 * behind a burst of PUBLISH packets).
 *
 * Activity is recorded as monotonic timestamps (a step of the wall clock must not fire or delay a ping) and the
 * single timer is re-armed lazily when it fires, so a busy connection costs two clock reads per packet and no
 * timer churn.
 *
 * @example
 * ```ts
 * import { KeepAlive } from "./keepalive.ts";
 * import { ManualClock } from "../clock.ts";
 * const clock = new ManualClock();
 * let pings = 0;
 * const keepAlive = new KeepAlive({
 *   intervalMs: 1000,
 *   timeoutMs: 500,
 *   clock,
 *   onPing: () => pings++,
 *   onTimeout: () => {},
 * });
 * keepAlive.start();
 * clock.advance(1000);
 * console.assert(pings === 1);
 * keepAlive.stop();
 * ```
 */
export class KeepAlive {
  #options: KeepAliveOptions;
  #state: { kind: "stopped" } | { kind: "idle" } | { kind: "waiting"; since: number } = { kind: "stopped" };
  #lastSent = 0;
  #lastReceived = 0;
  #timer: TimerId | undefined;

  constructor(options: KeepAliveOptions) {
    this.#options = options;
  }

  /** Whether a PINGREQ is waiting for an answer. */
  get waiting(): boolean {
    return this.#state.kind === "waiting";
  }

  /** Starts watching; the interval counts from now. An interval of 0 turns keep-alive off. */
  start(): void {
    if (this.#options.intervalMs <= 0) return;
    const now = this.#options.clock.monotonic();
    this.#lastSent = now;
    this.#lastReceived = now;
    this.#state = { kind: "idle" };
    this.#arm(this.#options.intervalMs);
  }

  /** Records that a packet went out. */
  packetSent(): void {
    if (this.#state.kind !== "stopped") this.#lastSent = this.#options.clock.monotonic();
  }

  /** Records that a packet came in, which answers an outstanding PINGREQ. */
  packetReceived(): void {
    if (this.#state.kind === "stopped") return;
    this.#lastReceived = this.#options.clock.monotonic();
    if (this.#state.kind === "waiting") this.#state = { kind: "idle" };
  }

  /** Stops watching and clears the timer. */
  stop(): void {
    this.#state = { kind: "stopped" };
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(ms: number): void {
    this.#timer = this.#options.clock.setTimeout(() => this.#check(), Math.max(0, ms));
  }

  #check(): void {
    this.#timer = undefined;
    const { clock, intervalMs, timeoutMs } = this.#options;
    const now = clock.monotonic();
    const state = this.#state;
    switch (state.kind) {
      case "stopped":
        return;
      case "waiting": {
        const deadline = state.since + timeoutMs;
        if (now >= deadline) {
          this.stop();
          this.#options.onTimeout();
          return;
        }
        this.#arm(deadline - now);
        return;
      }
      case "idle": {
        const due = Math.min(this.#lastSent, this.#lastReceived) + intervalMs;
        if (now < due) {
          this.#arm(due - now);
          return;
        }
        this.#state = { kind: "waiting", since: now };
        this.#options.onPing();
        if (this.#state.kind === "waiting") this.#arm(timeoutMs);
        return;
      }
    }
  }
}
