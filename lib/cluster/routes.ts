/**
 * Routes between nodes (CLUSTER.md §3.4). {@linkcode RouteSummary}: this node's distinct filters with a local
 * subscriber, refcounted, sent to the engine once per turn (route churn is per distinct filter per node, not per
 * client). {@linkcode RemoteRoutes}: every other node's summary in a second {@linkcode TopicRouter} whose
 * "clients" are node incarnations, so its per-client merge is the per-node de-duplication (one forward per
 * interested node) and its shared-group pick chooses one node per `$share` group.
 * {@linkcode ObservedRouter}: the local router that tells the summary when a filter gains its first or loses its
 * last subscriber (a broker without a cluster uses the plain router).
 *
 * @module
 */

import { type Subscription, TopicRouter } from "../topic/router.ts";
import type { ClusterEngine, Incarnation, RouteEvent } from "./engine.ts";

/** This node's filters and their local subscriber counts, mirrored to the engine. */
export class RouteSummary {
  readonly #counts = new Map<string, number>();
  /** Filters whose presence changed since the last flush: true = add, false = remove. */
  #changed = new Map<string, boolean>();
  #scheduled = false;
  #engine: ClusterEngine | undefined;
  readonly #onError: (error: unknown) => void;
  readonly #onStored: (version: number) => void;
  #flushing: Promise<void> = Promise.resolve();
  /** Flushes started and not yet ended. */
  #inFlight = 0;

  /** `onStored` hears the version of each stored change; `onError` a failed write (retried at resync). */
  constructor(onStored: (version: number) => void, onError: (error: unknown) => void) {
    this.#onStored = onStored;
    this.#onError = onError;
  }

  /** Starts writing to `engine` (until then, and while it is `undefined`, changes only count). */
  connect(engine: ClusterEngine | undefined): void {
    this.#engine = engine;
    if (engine !== undefined && this.#changed.size > 0) this.#schedule();
  }

  /** Every filter with a local subscriber. */
  filters(): string[] {
    return [...this.#counts.keys()];
  }

  /** A local subscription to `filter` was made. */
  added(filter: string): void {
    const count = this.#counts.get(filter) ?? 0;
    this.#counts.set(filter, count + 1);
    if (count === 0) this.#change(filter, true);
  }

  /** A local subscription to `filter` went. */
  removed(filter: string): void {
    const count = this.#counts.get(filter) ?? 0;
    if (count <= 1) {
      this.#counts.delete(filter);
      if (count === 1) this.#change(filter, false);
    } else {
      this.#counts.set(filter, count - 1);
    }
  }

  /** Whether a change is still on its way to the engine ({@linkcode RouteSummary.settled} would wait). */
  get pending(): boolean {
    return this.#scheduled || this.#inFlight > 0;
  }

  /** Resolves once every change made so far is stored (or failed). */
  settled(): Promise<void> {
    return this.#scheduled
      ? new Promise((resolve) => setImmediate(() => this.#flushing.then(resolve)))
      : this.#flushing;
  }

  /** Writes the whole summary again (after the engine came back): adds what is missing, removes what is gone. */
  async resync(stored: readonly string[]): Promise<void> {
    const engine = this.#engine;
    if (engine === undefined) return;
    this.#changed.clear();
    const have = new Set(stored);
    const add = this.filters().filter((filter) => !have.has(filter));
    const remove = stored.filter((filter) => !this.#counts.has(filter));
    if (add.length > 0) this.#onStored(await engine.addRoutes(add));
    if (remove.length > 0) this.#onStored(await engine.removeRoutes(remove));
  }

  #change(filter: string, present: boolean): void {
    if (this.#changed.get(filter) === !present) this.#changed.delete(filter); // undone within the turn
    else this.#changed.set(filter, present);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#engine === undefined) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const engine = this.#engine;
      if (engine === undefined || this.#changed.size === 0) return;
      const changed = this.#changed;
      this.#changed = new Map();
      const add: string[] = [];
      const remove: string[] = [];
      for (const [filter, present] of changed) (present ? add : remove).push(filter);
      this.#inFlight++;
      this.#flushing = this.#flushing.then(async () => {
        try {
          if (add.length > 0) this.#onStored(await engine.addRoutes(add));
          if (remove.length > 0) this.#onStored(await engine.removeRoutes(remove));
        } catch (error) {
          this.#onError(error); // the summary is written whole when the engine is back
        } finally {
          this.#inFlight--;
        }
      });
    });
  }
}

/** The same options for every node's route: the node itself applies QoS, No Local and the rest. */
function routeSubscription(filter: string): Subscription {
  return { filter, qos: 2, noLocal: false, retainAsPublished: true, retainHandling: 0 };
}

/** Every other node's filters, as a router keyed by incarnation. */
export class RemoteRoutes {
  readonly router: TopicRouter = new TopicRouter();
  /** The highest route version applied. */
  version = 0;
  readonly #known = new Set<Incarnation>();

  /** Applies one change of another node's summary. */
  apply(event: RouteEvent): void {
    if (event.op === "add") {
      this.#known.add(event.node);
      this.router.subscribe(event.node, routeSubscription(event.filter));
    } else {
      this.router.unsubscribe(event.node, event.filter);
    }
    if (event.version > this.version) this.version = event.version;
  }

  /** Forgets every route of `node`. */
  drop(node: Incarnation): void {
    this.router.unsubscribeAll(node);
    this.#known.delete(node);
  }

  /** Replaces everything with a full table (a resync). */
  reset(nodes: ReadonlyMap<Incarnation, readonly string[]>, version: number, self: Incarnation): void {
    for (const node of [...this.#known]) this.drop(node);
    for (const [node, filters] of nodes) {
      if (node === self) continue;
      this.#known.add(node);
      for (const filter of filters) this.router.subscribe(node, routeSubscription(filter));
    }
    if (version > this.version) this.version = version;
  }

  /** Nodes with at least one route. */
  nodes(): Incarnation[] {
    return [...this.#known].filter((node) => this.router.subscriptionCount(node) > 0);
  }
}

/** The local router of a clustered broker: reports each filter's first and last subscriber to the summary. */
export class ObservedRouter extends TopicRouter {
  readonly #summary: RouteSummary;
  /**
   * Client ids whose subscription changes are counted (sessions adopted from a dead node, whose inbox is
   * replayed to them only while their subscriptions are as they were at the death).
   */
  readonly watched = new Map<string, number>();

  /** Reports to `summary`. */
  constructor(summary: RouteSummary) {
    super();
    this.#summary = summary;
  }

  override subscribe(clientId: string, subscription: Subscription): boolean {
    const replaced = super.subscribe(clientId, subscription);
    if (!replaced) this.#summary.added(subscription.filter);
    this.#changed(clientId);
    return replaced;
  }

  override unsubscribe(clientId: string, filter: string): boolean {
    const removed = super.unsubscribe(clientId, filter);
    if (removed) this.#summary.removed(filter);
    this.#changed(clientId);
    return removed;
  }

  override unsubscribeAll(clientId: string): void {
    for (const subscription of this.subscriptionsOf(clientId)) this.#summary.removed(subscription.filter);
    super.unsubscribeAll(clientId);
    this.#changed(clientId);
  }

  #changed(clientId: string): void {
    const count = this.watched.get(clientId);
    if (count !== undefined) this.watched.set(clientId, count + 1);
  }
}
