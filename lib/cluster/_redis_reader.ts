/**
 * The Redis engine's reader: one blocking `XREAD` on a dedicated connection over the control stream and this
 * node's two inbox streams, turned into {@linkcode ClusterEvent}s. It keeps the route table it has reported, so
 * that a resync (its position in the control stream was trimmed away, or Redis came back) is told to the node as
 * the route changes that close the gap.
 *
 * @module
 */

import type { Redis } from "ioredis";
import { decodeMessage } from "./_redis_codec.ts";
import { forwardBatchFromReply } from "./_redis_forward_codec.ts";
import type { RedisKeys } from "./_redis_keys.ts";
import type { Message } from "../broker/storage/persistence.ts";
import type { ClusterEvent, Incarnation, RetainedEvent } from "./engine.ts";

type StreamReply = [stream: Uint8Array, entries: [id: Uint8Array, fields: Uint8Array[]][]][] | null;

/** A takeover's release, seen on the control stream. */
export type ReleaseListener = (clientId: string, node: Incarnation) => void;

/** What the reader needs from its engine. */
export interface ReaderHost {
  readonly keys: RedisKeys;
  readonly incarnation: Incarnation;
  /** Delivers one event; false when the engine may not deliver now (the batch is read again later). */
  deliverable(): Promise<boolean>;
  emit(event: ClusterEvent): void;
  released: ReleaseListener;
  /** A node asked by this node's claim says it is stepping down ({@linkcode ClusterEngine.steppingDown}). */
  steppingDown: ReleaseListener;
  /** Entries it had not read were trimmed away: read a consistent cut again ({@linkcode StreamReader.resync}). */
  resync(): Promise<void>;
}

/** Where the reader is in each stream. */
export interface ReaderPositions {
  ctl: string;
  lossy: string;
  durable: string;
}

/** See the module doc. */
export class StreamReader {
  readonly #redis: Redis;
  readonly #host: ReaderHost;
  readonly #blockMs: number;
  readonly positions: ReaderPositions = { ctl: "0-0", lossy: "0-0", durable: "0-0" };
  /** The route table as reported to the node: node → filters. */
  readonly routes = new Map<Incarnation, Set<string>>();
  /** The retained topics as reported to the node. */
  readonly retained = new Set<string>();
  /** Sequence number of the last control entry applied (control entries are numbered without holes). */
  seq = 0;
  /** Changes whenever the positions are set from outside: a reply read before that is dropped. */
  #generation = 0;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(redis: Redis, host: ReaderHost, blockMs: number) {
    this.#redis = redis;
    this.#host = host;
    this.#blockMs = blockMs;
  }

  start(): void {
    this.#running ??= this.#loop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#redis.disconnect();
    await this.#running;
  }

  /** Reads every stream again from `positions` (after Redis lost its data, or a resync). */
  reposition(positions: ReaderPositions, seq: number): void {
    Object.assign(this.positions, positions);
    this.seq = seq;
    this.#generation++;
  }

  /** Reports the retained store `messages` as it is now: deletes what is gone, sets everything else. */
  applyRetained(messages: readonly Message[]): void {
    const now = new Set(messages.map((m) => m.topic));
    for (const topic of this.retained) {
      if (!now.has(topic)) this.#host.emit({ kind: "retained", topic });
    }
    this.retained.clear();
    for (const message of messages) {
      this.retained.add(message.topic);
      this.#host.emit({ kind: "retained", topic: message.topic, message });
    }
  }

  /**
   * Reports the route table `nodes` at `version`: removes what is gone since the last report, and adds everything
   * (adds are idempotent, and the node may have replaced its table from `routes()` meanwhile).
   */
  applySnapshot(version: number, nodes: ReadonlyMap<Incarnation, readonly string[]>): void {
    for (const [node, filters] of [...this.routes]) {
      const now = new Set(nodes.get(node) ?? []);
      for (const filter of [...filters]) {
        if (!now.has(filter)) this.#route(node, "remove", filter, version);
      }
    }
    for (const [node, filters] of nodes) {
      for (const filter of filters) this.#route(node, "add", filter, version);
    }
  }

  /** Tells the node of one route change and remembers it (for the next snapshot's removals). */
  #route(node: Incarnation, op: "add" | "remove", filter: string, version: number): void {
    let set = this.routes.get(node);
    if (op === "add") {
      if (set === undefined) this.routes.set(node, set = new Set());
      set.add(filter);
    } else if (set !== undefined) {
      set.delete(filter);
      if (set.size === 0) this.routes.delete(node);
    }
    this.#host.emit({ kind: "route", node, op, filter, version });
  }

  async #loop(): Promise<void> {
    const keys = this.#host.keys;
    const me = this.#host.incarnation;
    const ctl = keys.ctl;
    const lossy = keys.lossyInbox(me);
    const durable = keys.durableInbox(me);
    while (!this.#stopped) {
      const generation = this.#generation;
      let reply: StreamReply;
      try {
        reply = await this.#redis.xreadBuffer(
          "COUNT",
          256,
          "BLOCK",
          this.#blockMs,
          "STREAMS",
          ctl,
          lossy,
          durable,
          this.positions.ctl,
          this.positions.lossy,
          this.positions.durable,
        ) as StreamReply;
      } catch {
        if (this.#stopped) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      if (reply === null || this.#stopped) continue;
      // A node that may have lost its lease (paused past it) delivers nothing until its engine has checked.
      if (!await this.#host.deliverable()) {
        // Read again later (positions unchanged); do not spin on what is already there.
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
      if (generation !== this.#generation) continue; // read from positions that no longer hold
      try {
        await this.#apply(reply, generation);
      } catch {
        // A resync that could not reach Redis: what was not applied is read again (positions did not move).
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  async #apply(reply: NonNullable<StreamReply>, generation: number): Promise<void> {
    const ctl = this.#host.keys.ctl;
    const lossy = this.#host.keys.lossyInbox(this.#host.incarnation);
    for (const [streamBytes, entries] of reply) {
      const stream = text(streamBytes);
      for (const [idBytes, fieldBytes] of entries) {
        const id = text(idBytes);
        if (stream === ctl) {
          if (this.#generation !== generation) break; // resynced: the cut covers the rest of this reply
          const fields = fieldBytes.map(text);
          const seq = Number(field(fields, "q") ?? 0);
          if (seq <= this.seq) continue;
          if (seq !== this.seq + 1) {
            await this.#host.resync();
            break;
          }
          this.positions.ctl = id;
          this.seq = seq;
          guarded(() => this.#control(fields));
        } else if (stream === lossy) {
          this.positions.lossy = id;
          guarded(() => this.#inbox(fieldBytes, "lossy", id));
        } else {
          this.positions.durable = id;
          guarded(() => this.#inbox(fieldBytes, "durable", id));
        }
      }
    }
  }

  #inbox(fields: readonly Uint8Array[], kind: "lossy" | "durable", id: string): void {
    let from: string | undefined;
    let data: Uint8Array | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = text(fields[i]!);
      if (name === "f") from = text(fields[i + 1]!);
      else if (name === "d") data = fields[i + 1];
    }
    if (from === undefined || data === undefined) return;
    const messages = forwardBatchFromReply(data);
    this.#host.emit({
      kind: "inbox",
      batch: kind === "durable" ? { from, kind, messages, cursor: id } : { from, kind, messages },
    });
  }

  #control(fields: readonly string[]): void {
    const me = this.#host.incarnation;
    switch (field(fields, "k")) {
      case "route": {
        const op = field(fields, "o");
        this.#route(
          field(fields, "n") ?? "",
          op === "remove" ? "remove" : "add",
          field(fields, "f") ?? "",
          Number(field(fields, "v") ?? 0),
        );
        return;
      }
      case "node": {
        const node = field(fields, "n") ?? "";
        const state = field(fields, "s");
        if (state !== "joined" && state !== "left" && state !== "dead") return;
        if (node === me) {
          if (state === "dead") this.#host.emit({ kind: "connection", state: "fenced" });
          return;
        }
        this.#host.emit({ kind: "node", node, state });
        return;
      }
      case "ret": {
        const topic = field(fields, "t") ?? "";
        const data = field(fields, "m");
        const event: RetainedEvent = data === undefined
          ? { kind: "retained", topic }
          : { kind: "retained", topic, message: decodeMessage(data) };
        if (data === undefined) this.retained.delete(topic);
        else this.retained.add(topic);
        this.#host.emit(event);
        return;
      }
      case "kick":
        if (field(fields, "to") === me) {
          this.#host.emit({
            kind: "takeover",
            clientId: field(fields, "c") ?? "",
            by: field(fields, "by") ?? "",
          });
        }
        return;
      case "rel":
        this.#host.released(field(fields, "c") ?? "", field(fields, "n") ?? "");
        return;
      case "ack":
        if (field(fields, "to") === me) {
          this.#host.steppingDown(field(fields, "c") ?? "", field(fields, "n") ?? "");
        }
        return;
    }
  }
}

/** The value of `name` in a stream entry's flat field list. */
function field(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === name) return fields[i + 1];
  }
  return undefined;
}

/** Runs `apply` for one entry; an entry that does not decode is skipped rather than stopping the reader. */
function guarded(apply: () => void): void {
  try {
    apply();
  } catch {
    // not written by this engine's version: nothing to apply
  }
}

const decoder = new TextDecoder();

/** A reply's bytes as text (stream names, ids, control fields). */
function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}
