/**
 * Several brokers in one process, one cluster engine: {@linkcode withCluster} starts them, gives raw wire clients
 * on any node, and closes everything. The suite is parametric over engines ({@linkcode ENGINES}): the in-memory
 * one always, the Redis one when its engine and harness are present.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Broker, type BrokerOptions } from "../../lib/broker/broker.ts";
import type { ClusterEngine, ForwardBatch } from "../../lib/cluster/engine.ts";
import { MemoryCluster } from "../../lib/cluster/memory_engine.ts";
import type { ProtocolVersion } from "../../lib/packet/packet_type.ts";
import { memoryPair } from "../../lib/transport/memory.ts";
import { REDIS } from "./_redis_engine_kind.ts";
import {
  CONNACK_OK_V4,
  CONNACK_PRESENT_V4,
  connectPacket,
  type ConnectSpec,
  waitFor,
  WireClient,
} from "../broker/_wire.ts";

/** A way to make engines for one test's cluster. */
export interface EngineKind {
  readonly name: string;
  /** Why this kind cannot run here (the test is then skipped, saying so); undefined when it can. */
  readonly unavailable?: () => Promise<string | undefined>;
  /** A fresh shared cluster: `engine()` per node, `close()` after the test. */
  open(): Promise<EngineSet>;
}

/** One test's shared engine. */
export interface EngineSet {
  engine(): ClusterEngine;
  /** The in-memory cluster, for fault injection (absent for a real engine). */
  readonly memory?: MemoryCluster;
  close(): Promise<void>;
}

/** The in-memory engine. */
export const MEMORY: EngineKind = {
  name: "memory",
  open(): Promise<EngineSet> {
    const memory = new MemoryCluster();
    return Promise.resolve({
      engine: () => memory.engine(),
      memory,
      close: () => {
        memory.close();
        return Promise.resolve();
      },
    });
  },
};

/** Every engine the protocol cases run on: the Redis one skips, saying why, where `redis-server` is missing. */
export const ENGINES: EngineKind[] = [MEMORY, REDIS];

/** Why each engine kind cannot run here (absent when it can), known before the tests are registered. */
const UNAVAILABLE = new Map(
  await Promise.all(ENGINES.map(async (kind) => [kind, await kind.unavailable?.()] as const)),
);

/** What a cluster test gets. */
export interface ClusterContext {
  readonly brokers: readonly Broker[];
  readonly engines: EngineSet;
  /** A raw client on node `node`, not yet connected. */
  open(node: number, version: ProtocolVersion): Promise<WireClient>;
  /** A raw client on node `node`, connected (CONNACK checked, with `present` as Session Present). */
  connect(node: number, spec: ConnectSpec, present?: boolean): Promise<WireClient>;
  /** Waits until node `at` routes by every route change node `of` has stored (`$SYS/cluster/routes/version`). */
  routed(at: number, of: number): Promise<void>;
  /** Starts one more broker on the same engine (returns its index). */
  addBroker(): Promise<number>;
}

/** Options for {@linkcode withCluster}. */
export interface ClusterTestOptions {
  /** Lease, ms; long by default, so a busy test machine never loses one by accident. @default {5000} */
  readonly leaseMs?: number;
  readonly broker?: BrokerOptions;
}

/** Runs `fn` with `nodes` brokers on one engine of `kind`; closes every client and broker after. */
export async function withCluster(
  kind: EngineKind,
  nodes: number,
  fn: (context: ClusterContext) => Promise<void>,
  options: ClusterTestOptions = {},
): Promise<void> {
  const engines = await kind.open();
  const brokers: Broker[] = [];
  const clients: WireClient[] = [];
  const served: Promise<void>[] = [];
  const addBroker = async (): Promise<number> => {
    const broker = new Broker({
      sysInterval: 0,
      ...options.broker,
      cluster: { engine: engines.engine(), node: `n${brokers.length}`, leaseMs: options.leaseMs ?? 5000 },
    });
    brokers.push(broker);
    await broker.start();
    return brokers.length - 1;
  };
  const open = (node: number, version: ProtocolVersion): Promise<WireClient> => {
    const [ours, theirs] = memoryPair();
    served.push(brokers[node]!.handle(theirs, { remoteAddress: `memory-${node}`, allowAnonymous: true }));
    const client = new WireClient(ours, version);
    clients.push(client);
    return Promise.resolve(client);
  };
  const connect = async (node: number, spec: ConnectSpec, present = false): Promise<WireClient> => {
    const client = await open(node, spec.version);
    await client.send(connectPacket(spec));
    if (spec.version === 5) {
      const connack = await client.expectPacket(2, "CONNACK");
      assert.equal(connack.reasonCode, 0, `CONNACK refused: ${connack.properties?.reasonString}`);
      assert.equal(connack.sessionPresent, present, "CONNACK Session Present");
    } else {
      await client.expect(present ? CONNACK_PRESENT_V4 : CONNACK_OK_V4, "CONNACK");
    }
    return client;
  };
  const routed = async (at: number, of: number): Promise<void> => {
    const source = brokers[of]!.cluster!;
    await source.summary.settled();
    const wanted = source.storedVersion;
    const target = brokers[at]!.cluster!;
    await waitFor(() => target.sys.routesVersion >= wanted, `node ${at} to apply route version ${wanted}`);
  };
  try {
    for (let i = 0; i < nodes; i++) await addBroker();
    await fn({ brokers, engines, open, connect, routed, addBroker });
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    for (const broker of brokers) await broker.close();
    await Promise.all(served);
    await engines.close();
  }
}

/** Registers `fn` once per engine kind, named `"<name> [<engine>]"`; skips a kind that cannot run, saying why. */
export function clusterTest(name: string, fn: (kind: EngineKind) => Promise<void>): void {
  for (const kind of ENGINES) {
    const why = UNAVAILABLE.get(kind);
    if (why !== undefined) {
      Deno.test({ name: `${name} [${kind.name}] (skipped: ${why})`, ignore: true, fn: () => {} });
    } else {
      Deno.test(`${name} [${kind.name}]`, () => fn(kind));
    }
  }
}

/** Records the lossy forwards `engine` sends from now on. */
export function spyForwards(engine: ClusterEngine): ForwardBatch[] {
  const sent: ForwardBatch[] = [];
  const original = engine.forwardLossy.bind(engine);
  engine.forwardLossy = (batches) => {
    sent.push(...batches);
    original(batches);
  };
  return sent;
}
