/**
 * The Redis engine's reader: one blocking `XREAD` on a dedicated connection over the control stream and this
 * node's two inbox streams, turned into {@linkcode ClusterEvent}s. It keeps the route table it has reported, so
 * that a resync (its position in the control stream was trimmed away, or Redis came back) is told to the node as
 * the route changes that close the gap.
 *
 * @module
 */

import type { Redis } from "ioredis";
import { decodeForwarded, decodeMessage } from "./_redis_codec.ts";
import type { RedisKeys } from "./_redis_keys.ts";
import type { ClusterEvent, Incarnation, RetainedEvent } from "./engine.ts";

/** A stream id `ms-seq`, compared numerically. */
export function compareIds(a: string, b: string): number {
  const [am = "0", as = "0"] = a.split("-");
  const [bm = "0", bs = "0"] = b.split("-");
  const ms = Number(am) - Number(bm);
  return ms !== 0 ? Math.sign(ms) : Math.sign(Number(as) - Number(bs));
}

type StreamReply = [stream: string, entries: [id: string, fields: string[]][]][] | null;

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

  /**
   * Reports the route table `nodes` at `version`: adds what is new, removes what is gone (a resync), and
   * remembers it.
   */
  applySnapshot(version: number, nodes: ReadonlyMap<Incarnation, readonly string[]>): void {
    for (const [node, filters] of this.routes) {
      const now = new Set(nodes.get(node) ?? []);
      for (const filter of filters) {
        if (!now.has(filter)) this.#route(node, "remove", filter, version);
      }
    }
    for (const [node, filters] of nodes) {
      for (const filter of filters) this.#route(node, "add", filter, version);
    }
  }

  #route(node: Incarnation, op: "add" | "remove", filter: string, version: number): void {
    let set = this.routes.get(node);
    if (op === "add") {
      if (set === undefined) this.routes.set(node, set = new Set());
      if (set.has(filter)) return;
      set.add(filter);
    } else {
      if (set === undefined || !set.delete(filter)) return;
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
      let reply: StreamReply;
      try {
        reply = await this.#redis.xread(
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
      for (const [stream, entries] of reply) {
        for (const [id, fields] of entries) {
          if (stream === ctl) {
            this.positions.ctl = id;
            this.#control(fields);
          } else if (stream === lossy) {
            this.positions.lossy = id;
            this.#inbox(fields, "lossy", id);
          } else {
            this.positions.durable = id;
            this.#inbox(fields, "durable", id);
          }
        }
      }
    }
  }

  #inbox(fields: readonly string[], kind: "lossy" | "durable", id: string): void {
    const from = field(fields, "f");
    const data = field(fields, "d");
    if (from === undefined || data === undefined) return;
    const messages = decodeForwarded(data);
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
