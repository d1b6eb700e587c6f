/**
 * The live message trace: for one topic filter or one client id, for a few minutes at most, each PUBLISH the
 * broker routes (who sent it, topic, QoS, retain, size, the start of the payload) and what became of it for each
 * matching subscriber: sent at QoS n, queued, dropped and why, skipped and why. An operator sees where a message
 * went, per subscriber, without a debug log.
 *
 * Cost when no trace runs: the publish path asks {@linkcode MessageTraces.active} (a size check) once per
 * PUBLISH and builds nothing. While one runs, only the PUBLISHes it may want build a record.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import type { QoS } from "../packet/packet_type.ts";
import { matchesFilter, parseSharedFilter, validateTopicFilter } from "../topic/topic.ts";
import type { Subscription } from "../topic/subscription.ts";
import type { DeliveryOutcome } from "./session.ts";
import type { Message } from "./storage/persistence.ts";

/** The largest values {@linkcode MessageTraces.start} accepts (and its defaults). */
export const TRACE_LIMITS = {
  /** A trace ends after this long at most: 10 min. */
  maxSeconds: 600,
  /** ... or after this many messages at most. */
  maxMessages: 10_000,
  /** The longest payload preview, bytes. */
  maxPayloadBytes: 4096,
  /** Defaults. */
  seconds: 60,
  messages: 1000,
  payloadBytes: 256,
} as const;

/** Traces running at once, at most. */
const MAX_TRACES = 16;
/** Ended traces kept, so a stream that subscribes late still gets their events. */
const KEPT_ENDED = 16;

/** What {@linkcode MessageTraces.start} traces: one of `filter` or `clientId`. */
export interface TraceOptions {
  /** PUBLISHes whose topic this filter matches. */
  readonly filter?: string;
  /** PUBLISHes this client sent or was given. */
  readonly clientId?: string;
  /** How long, seconds (1 to 600). @default {60} */
  readonly seconds?: number;
  /** How many messages at most (1 to 10,000). @default {1000} */
  readonly maxMessages?: number;
  /** Payload bytes in the preview (0 to 4096). @default {256} */
  readonly payloadBytes?: number;
}

/** A running trace. */
export interface TraceInfo {
  /** Its id, for subscribe and stop. */
  readonly id: string;
  /** When it ends at the latest, epoch ms. */
  readonly expiresAt: number;
  /** What it traces. */
  readonly filter?: string;
  /** What it traces. */
  readonly clientId?: string;
}

/** What became of a message for one subscriber. */
export interface TraceDelivery {
  /** The subscriber. */
  readonly clientId: string;
  /** Sent (written, or in flight), queued, dropped or skipped. */
  readonly outcome: "sent" | "queued" | "dropped";
  /** The QoS it was given at. */
  readonly qos: QoS;
  /** Why it was dropped: `queue_full`, `output_full`, `expired`, `too_large`, `offline`. */
  readonly reason?: string;
}

/** A subscriber the message was not given to. */
export interface TraceSkip {
  /** The subscriber. */
  readonly clientId: string;
  /** Skipped. */
  readonly outcome: "skipped";
  /** Why: `no_local` (the publisher's own No Local subscription), `acl` (it may not read the topic). */
  readonly reason: string;
}

/** One traced PUBLISH. */
export interface TraceEvent {
  /** When it was routed, epoch ms. */
  readonly at: number;
  /** The publishing client, if any (the broker's own `$SYS` messages have none). */
  readonly from?: string;
  /** Its topic. */
  readonly topic: string;
  /** Its QoS as published. */
  readonly qos: QoS;
  /** Its RETAIN flag. */
  readonly retain: boolean;
  /** Payload size, bytes. */
  readonly bytes: number;
  /** The start of the payload as UTF-8 (invalid bytes as U+FFFD). */
  readonly preview: string;
  /** Per matching subscriber, what happened (none when the PUBLISH was rejected). */
  readonly deliveries: readonly (TraceDelivery | TraceSkip)[];
  /** Set when the broker did not route the PUBLISH at all: not authorized, over a quota, bad payload format. */
  readonly rejected?: { readonly reasonCode: number; readonly reason: string };
}

/** Why a trace ended. */
export type TraceEnd = "expired" | "max_messages" | "stopped" | "closed";

/** Listens to a trace's events. */
export type TraceListener = (event: TraceEvent) => void;

class Trace {
  readonly events: TraceEvent[] = [];
  listeners: readonly TraceListener[] = [];
  endListeners: readonly ((why: TraceEnd) => void)[] = [];
  ended: TraceEnd | undefined;
  timer: TimerId | undefined;

  constructor(
    readonly info: TraceInfo,
    readonly maxMessages: number,
    readonly payloadBytes: number,
  ) {}
}

const DECODER = new TextDecoder();

/**
 * What one PUBLISH did, collected while it is routed (made by {@linkcode MessageTraces.begin}, only while a
 * trace runs). Not public API.
 */
export class TraceRecord {
  readonly #traces: MessageTraces;
  readonly #message: Message;
  readonly #at: number;
  readonly #wanted: readonly Trace[];
  readonly #deliveries: (TraceDelivery | TraceSkip)[] = [];

  /** @ignore */
  constructor(traces: MessageTraces, message: Message, at: number, wanted: readonly Trace[]) {
    this.#traces = traces;
    this.#message = message;
    this.#at = at;
    this.#wanted = wanted;
  }

  /** The message went to `clientId` at `qos` with `outcome` (`Session.deliver`'s answer). */
  delivered(clientId: string, qos: QoS, outcome: DeliveryOutcome): void {
    switch (outcome) {
      case "sent":
      case "queued":
        this.#deliveries.push({ clientId, outcome, qos });
        return;
      case "unsendable": {
        const expiresAt = this.#message.expiresAt;
        const reason = expiresAt !== undefined && expiresAt <= this.#at ? "expired" : "too_large";
        this.#deliveries.push({ clientId, outcome: "dropped", qos, reason });
        return;
      }
      default:
        this.#deliveries.push({ clientId, outcome: "dropped", qos, reason: outcome });
    }
  }

  /** The message was not given to `clientId`, for `reason`. */
  skipped(clientId: string, reason: string): void {
    this.#deliveries.push({ clientId, outcome: "skipped", reason });
  }

  /** Routing is done: the traces that want it get the event. */
  finish(): void {
    const message = this.#message;
    const origin = message.origin;
    if (origin !== undefined && !this.#deliveries.some((d) => d.clientId === origin)) {
      // The router leaves out the publisher's own No Local subscription [MQTT-3.8.3-3 (5.0)]: say so.
      const own = this.#traces.subscriptionsOf(origin);
      if (
        own.some((s) =>
          s.noLocal && parseSharedFilter(s.filter) === undefined && matchesFilter(s.filter, message.topic)
        )
      ) {
        this.#deliveries.push({ clientId: origin, outcome: "skipped", reason: "no_local" });
      }
    }
    let event: TraceEvent | undefined;
    let previewBytes = -1;
    for (const trace of this.#wanted) {
      const id = trace.info.clientId;
      if (id !== undefined && origin !== id && !this.#deliveries.some((d) => d.clientId === id)) continue;
      if (event === undefined || previewBytes !== trace.payloadBytes) {
        previewBytes = trace.payloadBytes;
        event = {
          at: this.#at,
          ...(origin === undefined ? {} : { from: origin }),
          topic: message.topic,
          qos: message.qos,
          retain: message.retain,
          bytes: message.payload.length,
          preview: DECODER.decode(message.payload.subarray(0, previewBytes)),
          deliveries: this.#deliveries,
        };
      }
      this.#traces.record(trace, event);
    }
  }
}

/**
 * The running traces (`broker.traces`). Traces end by themselves after their time or message count.
 *
 * @example
 * ```ts ignore
 * const { id } = broker.traces.start({ filter: "sensors/#", seconds: 60 });
 * const off = broker.traces.subscribe(id, (event) => console.log(event.topic, event.deliveries));
 * // ... later
 * off();
 * broker.traces.stop(id);
 * ```
 */
export class MessageTraces {
  readonly #clock: Clock;
  readonly #subscriptionsOf: (clientId: string) => readonly Subscription[];
  readonly #running = new Map<string, Trace>();
  readonly #ended = new Map<string, Trace>();

  /** `subscriptionsOf` names a client's subscriptions (for No Local skips). */
  constructor(clock: Clock, subscriptionsOf: (clientId: string) => readonly Subscription[]) {
    this.#clock = clock;
    this.#subscriptionsOf = subscriptionsOf;
  }

  /** Whether a trace runs: the publish path asks this, and nothing more, when none does. */
  get active(): boolean {
    return this.#running.size !== 0;
  }

  /**
   * Starts a trace of one filter or one client id.
   *
   * @throws {RangeError} for neither or both of `filter` and `clientId`, an invalid filter, a value out of range,
   * or more than 16 traces at once.
   */
  start(options: TraceOptions): TraceInfo {
    const { filter, clientId } = options;
    if ((filter === undefined) === (clientId === undefined)) {
      throw new RangeError("a trace needs one of filter or clientId");
    }
    if (filter !== undefined) {
      try {
        validateTopicFilter(filter);
      } catch (error) {
        throw new RangeError(`not a valid topic filter: ${(error as Error).message}`);
      }
    }
    const seconds = bounded(options.seconds ?? TRACE_LIMITS.seconds, 1, TRACE_LIMITS.maxSeconds, "seconds");
    const maxMessages = bounded(
      options.maxMessages ?? TRACE_LIMITS.messages,
      1,
      TRACE_LIMITS.maxMessages,
      "maxMessages",
    );
    const payloadBytes = bounded(
      options.payloadBytes ?? TRACE_LIMITS.payloadBytes,
      0,
      TRACE_LIMITS.maxPayloadBytes,
      "payloadBytes",
    );
    if (this.#running.size >= MAX_TRACES) throw new RangeError(`at most ${MAX_TRACES} traces run at once`);
    const info: TraceInfo = {
      id: crypto.randomUUID(),
      expiresAt: this.#clock.now() + seconds * 1000,
      ...(filter === undefined ? {} : { filter }),
      ...(clientId === undefined ? {} : { clientId }),
    };
    const trace = new Trace(info, maxMessages, payloadBytes);
    trace.timer = this.#clock.setTimeout(() => this.#end(trace, "expired"), seconds * 1000);
    this.#running.set(info.id, trace);
    return info;
  }

  /** The traces running now. */
  list(): TraceInfo[] {
    return [...this.#running.values()].map((t) => t.info);
  }

  /** The events of trace `id` so far (running or recently ended), oldest first; undefined for an unknown id. */
  events(id: string): readonly TraceEvent[] | undefined {
    return (this.#running.get(id) ?? this.#ended.get(id))?.events.slice();
  }

  /**
   * Calls `listener` with each event of trace `id`: first those so far, then each new one; `ended` once, when it
   * ends (at once for one that has ended). Returns the function that stops both.
   *
   * @throws {RangeError} for an unknown id.
   */
  subscribe(id: string, listener: TraceListener, ended?: (why: TraceEnd) => void): () => void {
    const trace = this.#running.get(id) ?? this.#ended.get(id);
    if (trace === undefined) throw new RangeError(`no trace ${id}`);
    for (const event of trace.events) listener(event);
    if (trace.ended !== undefined) {
      ended?.(trace.ended);
      return () => {};
    }
    trace.listeners = [...trace.listeners, listener];
    if (ended !== undefined) trace.endListeners = [...trace.endListeners, ended];
    return () => {
      trace.listeners = trace.listeners.filter((l) => l !== listener);
      trace.endListeners = trace.endListeners.filter((l) => l !== ended);
    };
  }

  /** Ends trace `id`; false for an unknown or ended one. */
  stop(id: string): boolean {
    const trace = this.#running.get(id);
    if (trace === undefined) return false;
    this.#end(trace, "stopped");
    return true;
  }

  /** Ends every trace (the broker is closing): their timers stop. */
  close(): void {
    for (const trace of [...this.#running.values()]) this.#end(trace, "closed");
  }

  /**
   * The record of one PUBLISH being routed, or undefined when no running trace may want it. Call only when
   * {@linkcode MessageTraces.active}.
   *
   * @ignore
   */
  begin(message: Message): TraceRecord | undefined {
    let wanted: Trace[] | undefined;
    for (const trace of this.#running.values()) {
      const filter = trace.info.filter;
      // A client trace may want any message: it is decided once the deliveries are known.
      if (filter !== undefined && !matchesFilter(filter, message.topic)) continue;
      (wanted ??= []).push(trace);
    }
    return wanted === undefined ? undefined : new TraceRecord(this, message, this.#clock.now(), wanted);
  }

  /**
   * A client's PUBLISH was not routed (`rejected.reasonCode` says why): the traces of its topic or of the client
   * get it, with no deliveries. Call only when {@linkcode MessageTraces.active}.
   *
   * @ignore
   */
  rejected(
    topic: string,
    packet: { readonly qos: QoS; readonly retain: boolean; readonly payload: Uint8Array },
    from: string,
    rejected: { readonly reasonCode: number; readonly reason: string },
  ): void {
    const at = this.#clock.now();
    for (const trace of [...this.#running.values()]) {
      const filter = trace.info.filter;
      if (filter !== undefined ? !matchesFilter(filter, topic) : trace.info.clientId !== from) continue;
      this.record(trace, {
        at,
        from,
        topic,
        qos: packet.qos,
        retain: packet.retain,
        bytes: packet.payload.length,
        preview: DECODER.decode(packet.payload.subarray(0, trace.payloadBytes)),
        deliveries: [],
        rejected,
      });
    }
  }

  /** @ignore For {@linkcode TraceRecord}. */
  subscriptionsOf(clientId: string): readonly Subscription[] {
    return this.#subscriptionsOf(clientId);
  }

  /** @ignore For {@linkcode TraceRecord}: one event of `trace`. */
  record(trace: Trace, event: TraceEvent): void {
    if (trace.ended !== undefined) return;
    trace.events.push(event);
    for (const listener of trace.listeners) {
      try {
        listener(event);
      } catch {
        // a listener's bug must not break routing
      }
    }
    if (trace.events.length >= trace.maxMessages) this.#end(trace, "max_messages");
  }

  #end(trace: Trace, why: TraceEnd): void {
    if (trace.ended !== undefined) return;
    trace.ended = why;
    if (trace.timer !== undefined) this.#clock.clearTimeout(trace.timer);
    trace.timer = undefined;
    this.#running.delete(trace.info.id);
    this.#ended.set(trace.info.id, trace);
    if (this.#ended.size > KEPT_ENDED) this.#ended.delete(this.#ended.keys().next().value!);
    const ends = trace.endListeners;
    trace.listeners = [];
    trace.endListeners = [];
    for (const end of ends) {
      try {
        end(why);
      } catch {
        // as above
      }
    }
  }
}

function bounded(n: number, min: number, max: number, what: string): number {
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(`${what} must be an integer from ${min} to ${max}, got ${n}`);
  }
  return n;
}
