/**
 * The broker facade: builds the broker's insides ({@linkcode BrokerContext}), starts and stops them, accepts
 * connections and publishes. Each concern has its own room: sessions (`sessions.ts`), wills (`wills.ts`), `$SYS`
 * (`sys.ts`), enhanced authentication (`auth/conversations.ts`), routing and retained messages (`context.ts`).
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import { REASON_CODE } from "../packet/reason_code.ts";
import type { TopicRouter } from "../topic/router.ts";
import type { ByteStream } from "../transport/transport.ts";
import { hostOf } from "./limits.ts";
import type { DeadlineQueue } from "./deadlines.ts";
import { Connection, type ConnectionInfo } from "./connection.ts";
import { BrokerContext } from "./context.ts";
import type { BrokerCounters } from "./counters.ts";
import type { Authenticator, Authorizer } from "./auth/auth.ts";
import type { BrokerOptions, ResolvedOptions } from "./options.ts";
import type { ClusterNode, ClusterOptions } from "../cluster/node.ts";
import type { Logger } from "./logger.ts";
import type { LogRing } from "./log_ring.ts";
import { ClientHistory } from "./client_history.ts";
import type { MessageTraces } from "./trace.ts";
import { type BrokerEvents, emitClientEvent } from "./events.ts";
import type { Message } from "./storage/persistence.ts";
import type { RetainedStore } from "./retained.ts";
import type { Session } from "./session.ts";
import { BrokerInspector } from "./inspect.ts";
import type { Sessions } from "./sessions.ts";

export type { BrokerOptions } from "./options.ts";
import { acceptLoop } from "./server/accept_loop.ts";
import { LoopLagMonitor } from "../admin/loop_lag.ts";

export { BROKER_VERSION } from "./sys.ts";

/** How often expired retained messages are swept out, ms. */
const SWEEP_INTERVAL = 60_000;

/** Where a listener is bound. */
export interface ListenAddress {
  /** The bound address, e.g. `127.0.0.1`. */
  readonly hostname: string;
  /** The bound port: the one picked by the OS when 0 was asked for. */
  readonly port: number;
}

/** Options for {@linkcode Broker.listen}. */
export interface ListenOptions {
  /** Address to bind; loopback unless told otherwise. @default {"127.0.0.1"} */
  hostname?: string;
  /** 0 picks a free port. @default {1883} */
  port?: number;
  /** Let clients in without credentials. @default {true} */
  allowAnonymous?: boolean;
}

type BrokerState = "new" | "starting" | "running" | "closing" | "closed";

/**
 * An MQTT 3.1 / 3.1.1 / 5.0 broker.
 *
 * @example
 * ```ts ignore
 * import { Broker } from "./broker.ts";
 * const broker = new Broker();
 * const { port } = await broker.listen({ hostname: "127.0.0.1", port: 0 });
 * // ... clients connect to port ...
 * await broker.close();
 * ```
 */
export class Broker {
  readonly #core: BrokerContext;
  readonly #connections = new Set<Connection>();
  readonly #perAddress = new Map<string, number>();
  /** What {@linkcode Broker.listen} started: `close()` stops accepting (the loops are the listeners' own). */
  readonly #listeners = new Set<{ close(): void }>();
  readonly #accepting = new Set<Promise<void>>();
  #state: BrokerState = "new";
  #starting: Promise<void> | undefined;
  #sweepTimer: TimerId | undefined;
  #inspector: BrokerInspector | undefined;
  /** Samples the event loop's lag from start() to close() (`denomqtt_event_loop_lag_seconds`). */
  readonly #loopLag: LoopLagMonitor;
  #history: ClientHistory | undefined;

  /**
   * Nothing runs until {@linkcode Broker.start} (or {@linkcode Broker.listen}, which calls it).
   *
   * @throws {RangeError} when `maxPacketSize` or `receiveMaximum` is outside what the protocol can express.
   */
  constructor(options: BrokerOptions & { readonly cluster?: ClusterOptions } = {}) {
    this.#core = new BrokerContext(options, (connection) => this.#connectionClosed(connection));
    this.#loopLag = new LoopLagMonitor(this.#core.stats.eventLoopLag);
  }

  /** The options with every default filled in. */
  get options(): ResolvedOptions {
    return this.#core.options;
  }

  /** Broker-wide totals since start (traffic, connections, dropped messages); each only grows. */
  get counters(): Readonly<BrokerCounters> {
    return this.#core.stats;
  }

  /**
   * The same object as {@linkcode Broker.counters}.
   *
   * @deprecated Use {@linkcode Broker.counters}.
   */
  get stats(): Readonly<BrokerCounters> {
    return this.#core.stats;
  }

  /** The broker's time source. */
  get clock(): Clock {
    return this.#core.clock;
  }

  /** Where log lines go. */
  get logger(): Logger {
    return this.#core.logger;
  }

  /**
   * Lifecycle events: connected, disconnected (with the reason classified), refused, kicked, takeover. Nothing is
   * built for an event while nobody listens.
   */
  get events(): BrokerEvents {
    return this.#core.events;
  }

  /**
   * The last connect, disconnect and refusal events per client id and broker-wide (`client_history.ts`). It
   * records from its first use on (so that a broker nobody asks builds no events): the admin listener asks at
   * start.
   */
  get clientHistory(): ClientHistory {
    this.#history ??= new ClientHistory(this.#core.events);
    return this.#history;
  }

  /** Live message traces: what became of each PUBLISH of a filter or client, per subscriber (`trace.ts`). */
  get traces(): MessageTraces {
    return this.#core.traces;
  }

  /** The last log records at `info` or more severe that the logger kept, for the admin API. */
  get logs(): LogRing {
    return this.#core.logs;
  }

  /** Sessions currently known (connected or not). */
  get sessionCount(): number {
    return this.#core.sessions.size;
  }

  /** Connections currently open. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * A session by client id, for tests and tools (not public API).
   *
   * @ignore
   */
  session(clientId: string): Session | undefined {
    return this.#core.sessions.get(clientId);
  }

  /**
   * Every session, connected or not, for the metrics and admin views (not public API).
   *
   * @ignore
   */
  get sessions(): Sessions {
    return this.#core.sessions;
  }

  /**
   * The retained messages, for tests and tools (not public API).
   *
   * @ignore
   */
  get retained(): RetainedStore {
    return this.#core.retained;
  }

  /**
   * The subscriptions, for tests and tools (not public API).
   *
   * @ignore
   */
  get router(): TopicRouter {
    return this.#core.router;
  }

  /**
   * The cluster node, when the broker joined a cluster (`cluster` option), for tests and tools (not public API).
   *
   * @ignore
   */
  get cluster(): ClusterNode | undefined {
    return this.#core.cluster;
  }

  /**
   * The connections' deadlines, for tests and tools (not public API).
   *
   * @ignore
   */
  get deadlines(): DeadlineQueue<Connection> {
    return this.#core.deadlines;
  }

  /**
   * The read-only view of clients, subscriptions and retained messages, and the admin actions (`inspect.ts`), for
   * the admin API (not public API).
   *
   * @ignore
   */
  get inspect(): BrokerInspector {
    return this.#inspector ??= new BrokerInspector(this.#core, this.#connections);
  }

  /**
   * Stops `server` when the broker closes, before clients are disconnected (the admin HTTP server,
   * `lib/admin/server.ts`); `close()` waits for it.
   */
  closeWith(server: { close(): Promise<void> }): void {
    const closing = Promise.withResolvers<void>();
    this.#listeners.add({ close: () => server.close().then(closing.resolve, closing.resolve) });
    this.#accepting.add(closing.promise);
  }

  /** Loads persisted state and starts `$SYS` updates. Called by {@linkcode Broker.listen}; idempotent. */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    const core = this.#core;
    this.#state = "starting";
    if (core.persistence !== undefined) await core.restore(core.persistence);
    this.#state = "running";
    const sweep = () => {
      core.sweepExpired();
      this.#sweepTimer = core.clock.setTimeout(sweep, SWEEP_INTERVAL);
    };
    this.#sweepTimer = core.clock.setTimeout(sweep, SWEEP_INTERVAL);
    if (core.options.sysInterval > 0) core.sys.start(core.options.sysInterval);
    this.#loopLag.start();
  }

  /**
   * Listens for MQTT over TCP. Resolves with the bound address (port 0 picks one). The accept loop is the one
   * the configured listeners use (`server/accept_loop.ts`).
   */
  async listen(options: ListenOptions = {}): Promise<ListenAddress> {
    await this.start();
    const listener = Deno.listen({ hostname: options.hostname ?? "127.0.0.1", port: options.port ?? 1883 });
    const loop = acceptLoop(this, listener, {
      type: "tcp",
      name: "tcp listener",
      allowAnonymous: options.allowAnonymous ?? true,
    });
    // close() closes what is in #listeners, then waits for #accepting.
    const closing = Promise.withResolvers<void>();
    this.#listeners.add({ close: () => loop.close().then(closing.resolve, closing.resolve) });
    this.#accepting.add(closing.promise);
    const addr = loop.addr;
    this.logger.info(`listening on ${addr.hostname}:${addr.port} (mqtt over tcp)`, {
      event: "listener.started",
      listener: "tcp listener",
    });
    return { hostname: addr.hostname, port: addr.port };
  }

  /** Serves one client over any byte stream (TCP, TLS, WebSocket, in-memory). Resolves when it is closed. */
  handle(stream: ByteStream, info: ConnectionInfo): Promise<void> {
    return this.#admit(stream, info)?.run() ?? Promise.resolve();
  }

  /**
   * {@linkcode Broker.handle} for a caller that does not wait for the end (the accept loops): without the
   * promise, an idle connection costs about 160 bytes less.
   */
  serve(stream: ByteStream, info: ConnectionInfo): void {
    this.#admit(stream, info)?.start();
  }

  /** A connection for `stream`, or none when the broker is not running or a connection limit is reached. */
  #admit(stream: ByteStream, info: ConnectionInfo): Connection | undefined {
    if (this.#state !== "running") {
      stream.close();
      return undefined;
    }
    // Connections are counted per host only when that has a limit: it costs a string and a map update each.
    const perAddress = this.options.maxConnectionsPerAddress !== Infinity;
    const host = perAddress ? hostOf(info.remoteAddress) : "";
    const fromHost = perAddress ? this.#perAddress.get(host) ?? 0 : 0;
    if (
      this.#connections.size >= this.options.maxConnections ||
      fromHost >= this.options.maxConnectionsPerAddress
    ) {
      // Refused before reading anything, as Mosquitto's max_connections does.
      this.logger.warn(`connection from ${info.remoteAddress} refused: connection limit reached`, {
        event: "client.refused",
        remote: info.remoteAddress,
        reason: "limit",
      });
      const events = this.#core.events;
      if (events.listening) {
        const peer = { clientId: "", identity: {}, info, protocolVersion: 4 };
        emitClientEvent(events, peer, {
          event: "refused",
          reason: "limit",
          at: this.clock.now(),
          known: false,
        });
      }
      stream.close();
      return undefined;
    }
    if (perAddress) this.#perAddress.set(host, fromHost + 1);
    const connection = new Connection(this.#core, stream, info);
    this.#connections.add(connection);
    this.#core.stats.connections++;
    return connection;
  }

  /**
   * Stops: closes listeners, disconnects every client (v5: DISCONNECT 0x8B Server shutting down), publishes
   * wills as the spec says, flushes storage and closes it.
   */
  async close(): Promise<void> {
    if (this.#state === "closed" || this.#state === "closing") return;
    this.#state = "closing";
    for (const listener of this.#listeners) {
      try {
        listener.close();
      } catch {
        // already closed
      }
    }
    await Promise.all(this.#accepting);
    const core = this.#core;
    core.sys.stop();
    core.traces.close();
    this.#loopLag.stop();
    if (this.#sweepTimer !== undefined) core.clock.clearTimeout(this.#sweepTimer);
    core.deadlines.close();
    const closing: Promise<void>[] = [];
    for (const connection of [...this.#connections]) {
      connection.disconnect(REASON_CODE.ServerShuttingDown, "server shutting down");
      closing.push(connection.close("server shutting down", true));
    }
    await Promise.all(closing);
    core.sessions.close();
    core.wills.close();
    if (core.store !== undefined) {
      try {
        await core.store.settled();
      } catch {
        // logged by the commit queue
      }
    }
    await core.persistence?.close();
    this.#state = "closed";
  }

  /** Routes a message to every matching session; returns how many sessions it was given to. */
  publish(message: Message): number {
    return this.#core.publish(message);
  }

  /**
   * Applies changed credentials or rules (SIGHUP calls it after reloading the password file and the ACL in place;
   * or swap them here): connected clients the authenticator no longer passes are disconnected (v5 DISCONNECT 0x87),
   * and queued and in-flight messages are checked against the read rules before they go out.
   *
   * @example
   * ```ts ignore
   * // SIGHUP: reload the files in place, then let the broker re-check who is connected and what is queued.
   * await passwords.reload();
   * await acl.reload();
   * broker.updateSecurity();
   * ```
   */
  updateSecurity(
    change: { readonly authenticator?: Authenticator; readonly authorizer?: Authorizer } = {},
  ): void {
    this.#core.updateSecurity(change);
  }

  #connectionClosed(connection: Connection): void {
    if (!this.#connections.delete(connection) || this.options.maxConnectionsPerAddress === Infinity) return;
    const host = hostOf(connection.info.remoteAddress);
    const count = (this.#perAddress.get(host) ?? 1) - 1;
    if (count <= 0) this.#perAddress.delete(host);
    else this.#perAddress.set(host, count);
  }
}
