/**
 * The seeded random model test of the cluster (issue 17): random sequences of connect (a takeover when the
 * client is connected elsewhere), subscribe, unsubscribe, publish, disconnect and node stop/start run on a
 * 3-node cluster in this process, and the very same sequence runs on a single broker, the oracle. Afterwards
 * every client reconnects, takes what is queued for it, and the deliveries are compared:
 *
 * - QoS 1: every message the oracle delivered at QoS 1 arrives at least once (4.3.2);
 * - QoS 2: every message the oracle delivered at QoS 2 arrives exactly once (4.3.3);
 * - QoS 0: no message arrives twice (4.3.1);
 * - nothing arrives at QoS 1 or 2 that the oracle did not deliver;
 * - per publisher and QoS, messages arrive in the order they were published [MQTT-4.6.0-6 (3.1.1)].
 *
 * The sequence is a function of the seed alone (`tests/_prng.ts`), so a failure prints the seed and the step
 * list that replays it: `MODEL_SEED=123 deno test -A tests/cluster/model_test.ts` (`MODEL_SEEDS=50` explores seeds
 * 1..50, `MODEL_STEPS=150` makes each sequence longer).
 *
 * The clients speak raw MQTT 3.1.1 (Clean Session 0) over in-memory streams, and keep QoS 2 receiver state
 * across connections (a PUBLISH whose packet identifier awaits PUBREL is not a new message [MQTT-4.3.3-2
 * (3.1.1)]), so a broker's duplicate shows as one.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Broker } from "../../lib/broker/broker.ts";
import { Framer } from "../../lib/codec/framer.ts";
import { decodePacket } from "../../lib/packet/decode.ts";
import { encode } from "../../lib/packet/encode.ts";
import type { QoS } from "../../lib/packet/packet_type.ts";
import { memoryPair } from "../../lib/transport/memory.ts";
import { type ByteStream, writeAll } from "../../lib/transport/transport.ts";
import { mulberry32 } from "../_prng.ts";
import { type EngineKind, ENGINES } from "./_cluster.ts";
import { REDIS } from "./_redis_engine_kind.ts";

// ---- the sequence ---------------------------------------------------------------------------------------------

/** One step of a sequence. Nodes are 0, 1, 2; clients are indexes into {@linkcode CLIENTS}. */
type Step =
  | { readonly kind: "connect"; readonly client: number; readonly node: number }
  | { readonly kind: "disconnect"; readonly client: number }
  | { readonly kind: "subscribe"; readonly client: number; readonly filter: string; readonly qos: QoS }
  | { readonly kind: "unsubscribe"; readonly client: number }
  | {
    readonly kind: "publish";
    readonly client: number;
    readonly topic: string;
    readonly qos: QoS;
    readonly id: number;
  }
  | { readonly kind: "stop"; readonly node: number }
  | { readonly kind: "start"; readonly node: number };

const CLIENTS = ["m0", "m1", "m2", "m3"] as const;
const TOPICS = ["t/a", "t/b"] as const;
/** Each client holds at most one subscription, so no two of its filters overlap (one copy per message). */
const FILTERS = ["t/a", "t/b", "t/+", "t/#"] as const;
const NODES = 3;

/**
 * The steps for `seed`: a function of the seed alone, generated against a model of who is connected where and
 * which nodes run (at most one node stopped at a time, so a connect always has a node to go to).
 */
export function generateSteps(seed: number, count: number): Step[] {
  const random = mulberry32(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const at = new Array<number | undefined>(CLIENTS.length).fill(undefined);
  const subscribed = new Array<boolean>(CLIENTS.length).fill(false);
  const live = [true, true, true];
  const steps: Step[] = [];
  let id = 0;
  while (steps.length < count) {
    const roll = random();
    const client = Math.floor(random() * CLIENTS.length);
    const liveNodes = [0, 1, 2].filter((n) => live[n]);
    if (roll < 0.12 || at[client] === undefined) {
      const node = pick(liveNodes);
      steps.push({ kind: "connect", client, node });
      at[client] = node;
    } else if (roll < 0.3) {
      steps.push({ kind: "subscribe", client, filter: pick(FILTERS), qos: pick([0, 1, 2] as const) });
      subscribed[client] = true;
    } else if (roll < 0.35 && subscribed[client]) {
      steps.push({ kind: "unsubscribe", client });
      subscribed[client] = false;
    } else if (roll < 0.8) {
      steps.push({ kind: "publish", client, topic: pick(TOPICS), qos: pick([0, 1, 2] as const), id: id++ });
    } else if (roll < 0.88) {
      steps.push({ kind: "disconnect", client });
      at[client] = undefined;
    } else if (roll < 0.94 && liveNodes.length === NODES) {
      const node = pick(liveNodes);
      steps.push({ kind: "stop", node });
      live[node] = false;
      for (let c = 0; c < CLIENTS.length; c++) if (at[c] === node) at[c] = undefined;
    } else if (liveNodes.length < NODES) {
      const node = [0, 1, 2].find((n) => !live[n])!;
      steps.push({ kind: "start", node });
      live[node] = true;
    }
  }
  return steps;
}

function describe(step: Step): string {
  switch (step.kind) {
    case "connect":
      return `${CLIENTS[step.client]} connects to node ${step.node}`;
    case "disconnect":
      return `${CLIENTS[step.client]} disconnects`;
    case "subscribe":
      return `${CLIENTS[step.client]} subscribes ${step.filter} QoS ${step.qos}`;
    case "unsubscribe":
      return `${CLIENTS[step.client]} unsubscribes`;
    case "publish":
      return `${CLIENTS[step.client]} publishes #${step.id} to ${step.topic} QoS ${step.qos}`;
    case "stop":
      return `node ${step.node} stops`;
    case "start":
      return `node ${step.node} starts`;
  }
}

// ---- worlds: the oracle and the clusters ---------------------------------------------------------------------

/** Brokers that clients reach by node number. */
export interface World {
  /** A new client stream to `node`, served by that node's broker. */
  connect(node: number): ByteStream;
  /** Stops a node (its clients lose their connections; the runner closes their ends). */
  stop(node: number): Promise<void>;
  /** Starts a stopped node again (a new incarnation). */
  start(node: number): Promise<void>;
  /** Lets what a step set in motion settle (routes reach the other nodes, forwards arrive). */
  settle(): Promise<void>;
  close(): Promise<void>;
}

function serve(broker: Broker, served: Promise<void>[]): ByteStream {
  const [client, server] = memoryPair();
  served.push(broker.handle(server, { remoteAddress: "127.0.0.1:1", allowAnonymous: true }));
  return client;
}

async function ticks(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

/** The oracle: one broker; the three nodes are three doors to it, and a stopped node only drops its clients. */
async function oracle(): Promise<World> {
  const broker = new Broker({ sysInterval: 0 });
  await broker.start();
  const served: Promise<void>[] = [];
  return {
    connect: () => serve(broker, served),
    stop: () => Promise.resolve(),
    start: () => Promise.resolve(),
    settle: () => ticks(3),
    async close() {
      await broker.close();
      await Promise.all(served);
    },
  };
}

/** A cluster of three brokers that the model test can build, or why it cannot here. */
interface ClusterKind {
  readonly name: string;
  /** Why this kind cannot run here, or undefined. */
  unavailable(): Promise<string | undefined>;
  make(): Promise<World>;
}

/** How long a node's lease is in the clusters here, ms: short, so a stopped node's sessions move on soon. */
const LEASE_MS = 1000;

/**
 * Three brokers on one engine of `kind` (`tests/cluster/_cluster.ts`: the in-memory engine, and Redis where it
 * runs). A stopped node is closed; a started one joins as a new incarnation.
 */
function clusterOf(kind: EngineKind): ClusterKind {
  return {
    name: `3-node cluster [${kind.name}]`,
    unavailable: () => kind.unavailable?.() ?? Promise.resolve(undefined),
    async make(): Promise<World> {
      const engines = await kind.open();
      const brokers: (Broker | undefined)[] = [undefined, undefined, undefined];
      const served: Promise<void>[] = [];
      let incarnations = 0;
      const start = async (node: number) => {
        const broker = new Broker({
          sysInterval: 0,
          cluster: { engine: engines.engine(), node: `m${node}-${incarnations++}`, leaseMs: LEASE_MS },
        });
        brokers[node] = broker;
        await broker.start();
      };
      const live = () => brokers.filter((b): b is Broker => b !== undefined);
      try {
        for (let node = 0; node < NODES; node++) await start(node);
      } catch (error) {
        for (const broker of live()) await broker.close();
        await engines.close();
        throw error;
      }
      return {
        connect(node) {
          const broker = brokers[node];
          if (broker === undefined) throw new Error(`node ${node} is stopped`);
          return serve(broker, served);
        },
        async stop(node) {
          const broker = brokers[node];
          brokers[node] = undefined;
          await broker?.close();
        },
        start,
        async settle() {
          // Every node routes by every route change the others stored (as `routed` in _cluster.ts), then what
          // was forwarded meanwhile lands.
          for (const of of live()) {
            const source = of.cluster!;
            await source.summary.settled();
            const wanted = source.storedVersion;
            for (const at of live()) {
              const deadline = performance.now() + REPLY_MS;
              while (at.cluster!.sys.routesVersion < wanted && performance.now() < deadline) await ticks(1);
            }
          }
          await ticks(5);
        },
        async close() {
          for (const broker of live()) await broker.close();
          await Promise.all(served);
          await engines.close();
        },
      };
    },
  };
}

/** Every engine of the in-process cluster suite, and Redis even while that suite leaves it out. */
const CLUSTER_KINDS: readonly ClusterKind[] =
  (ENGINES.some((kind) => kind.name === REDIS.name) ? ENGINES : [...ENGINES, REDIS]).map(clusterOf);

// ---- the clients ------------------------------------------------------------------------------------------------

/** A message as a client received it. */
interface Delivery {
  /** The publish step's id. */
  readonly id: number;
  readonly publisher: number;
  /** The QoS it was published at. */
  readonly publishedQoS: number;
  /** The QoS it arrived at. */
  readonly qos: number;
}

/** What one broker's replies a client waits for: by packet type and identifier. */
type Waiter = { readonly type: number; readonly packetId: number; resolve(code: number): void };

/**
 * One client id across its connections: the deliveries it saw and its QoS 2 receiver state outlive each
 * connection, as a Clean Session 0 client's must.
 */
class ModelClient {
  readonly deliveries: Delivery[] = [];
  /** Packet identifiers of QoS 2 messages received and not yet released (PUBREL). */
  readonly #awaitingRelease = new Set<number>();
  #stream: ByteStream | undefined;
  #reading: Promise<void> | undefined;
  #waiters: Waiter[] = [];
  #nextId = 1;
  /** When the last PUBLISH arrived, ms (performance.now()). */
  lastArrival = 0;

  constructor(readonly name: string) {}

  get connected(): boolean {
    return this.#stream !== undefined;
  }

  /** CONNECT with Clean Session 0; resolves the CONNACK return code (0: accepted). */
  async connect(stream: ByteStream): Promise<number> {
    await this.drop();
    this.#stream = stream;
    this.#reading = this.#read(stream);
    const connack = this.#wait(2, 0);
    await this.#send(
      encode({ type: 1, protocolVersion: 4, clientId: this.name, cleanStart: false, keepAlive: 0 }, 4),
    );
    const code = await connack;
    if (code !== 0) await this.drop();
    return code;
  }

  async subscribe(filter: string, qos: QoS): Promise<void> {
    const packetId = this.#id();
    const suback = this.#wait(9, packetId);
    await this.#send(encode({
      type: 8,
      packetId,
      subscriptions: [{ filter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
    }, 4));
    const code = await suback;
    assert.equal(code, qos, `${this.name}: SUBACK for ${filter} granted ${code}, asked ${qos}`);
  }

  async unsubscribe(filter: string): Promise<void> {
    const packetId = this.#id();
    const unsuback = this.#wait(11, packetId);
    await this.#send(encode({ type: 10, packetId, filters: [filter] }, 4));
    await unsuback;
  }

  /** Publishes and, at QoS 1 and 2, waits for PUBACK or PUBCOMP. */
  async publish(topic: string, qos: QoS, payload: Uint8Array): Promise<void> {
    if (qos === 0) {
      await this.#send(encode({ type: 3, topic, payload, qos, retain: false, dup: false }, 4));
      return;
    }
    const packetId = this.#id();
    const done = this.#wait(qos === 1 ? 4 : 7, packetId);
    await this.#send(encode({ type: 3, topic, payload, qos, retain: false, dup: false, packetId }, 4));
    await done;
  }

  /** DISCONNECT, then close. */
  async disconnect(): Promise<void> {
    if (this.#stream === undefined) return;
    await this.#send(Uint8Array.of(0xe0, 0)).catch(() => {});
    await this.drop();
  }

  /** Closes the stream without DISCONNECT (a lost connection) and waits for the reader to stop. */
  async drop(): Promise<void> {
    const stream = this.#stream;
    this.#stream = undefined;
    stream?.close();
    await this.#reading;
    this.#reading = undefined;
  }

  #id(): number {
    const id = this.#nextId;
    this.#nextId = id === 0xffff ? 1 : id + 1;
    return id;
  }

  #wait(type: number, packetId: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.name}: no reply of type ${type} (id ${packetId}) within ${REPLY_MS} ms`));
      }, REPLY_MS);
      const waiter: Waiter = {
        type,
        packetId,
        resolve: (code) => {
          clearTimeout(timer);
          resolve(code);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  #settle(type: number, packetId: number, code: number): void {
    const index = this.#waiters.findIndex((w) => w.type === type && w.packetId === packetId);
    if (index < 0) return;
    const [waiter] = this.#waiters.splice(index, 1);
    waiter!.resolve(code);
  }

  async #send(bytes: Uint8Array): Promise<void> {
    if (this.#stream === undefined) throw new Error(`${this.name}: not connected`);
    await writeAll(this.#stream, bytes);
  }

  async #read(stream: ByteStream): Promise<void> {
    const buffer = new Uint8Array(16 * 1024);
    const framer = new Framer();
    try {
      for (;;) {
        const n = await stream.read(buffer);
        if (n === null) break;
        framer.push(buffer.subarray(0, n));
        for (let frame = framer.next(); frame !== undefined; frame = framer.next()) {
          const reply = this.#handle(decodePacket(frame.header, frame.body, 4));
          if (reply !== undefined) await writeAll(stream, reply).catch(() => {});
        }
      }
    } catch {
      // the stream was closed under the read
    } finally {
      if (this.#stream === stream) this.#stream = undefined;
      // Whoever still waits on this connection hears "closed" rather than a timeout.
      for (const waiter of this.#waiters.splice(0)) waiter.resolve(-1);
    }
  }

  #handle(packet: ReturnType<typeof decodePacket>): Uint8Array | undefined {
    switch (packet.type) {
      case 2:
        this.#settle(2, 0, packet.reasonCode);
        return undefined;
      case 9:
        this.#settle(9, packet.packetId, packet.reasonCodes[0] ?? -1);
        return undefined;
      case 11:
        this.#settle(11, packet.packetId, 0);
        return undefined;
      case 4:
      case 7:
        this.#settle(packet.type, packet.packetId, 0);
        return undefined;
      case 5: // PUBREC → PUBREL
        return encode({ type: 6, packetId: packet.packetId, reasonCode: 0 }, 4);
      case 6: // PUBREL → PUBCOMP; the identifier may be used for a new message again
        this.#awaitingRelease.delete(packet.packetId);
        return encode({ type: 7, packetId: packet.packetId, reasonCode: 0 }, 4);
      case 3: {
        this.lastArrival = performance.now();
        const fresh = packet.qos !== 2 || !this.#awaitingRelease.has(packet.packetId!);
        if (fresh) this.deliveries.push({ ...parsePayload(packet.payload), qos: packet.qos });
        if (packet.qos === 1) return encode({ type: 4, packetId: packet.packetId!, reasonCode: 0 }, 4);
        if (packet.qos === 2) {
          this.#awaitingRelease.add(packet.packetId!);
          return encode({ type: 5, packetId: packet.packetId!, reasonCode: 0 }, 4);
        }
        return undefined;
      }
      default:
        return undefined;
    }
  }
}

/** How long a client waits for a reply the broker owes it, ms. */
const REPLY_MS = 5000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function payloadOf(step: Extract<Step, { kind: "publish" }>): Uint8Array {
  return encoder.encode(`${step.id}|${step.client}|${step.qos}`);
}

function parsePayload(payload: Uint8Array): Omit<Delivery, "qos"> {
  const [id, publisher, qos] = decoder.decode(payload).split("|").map(Number);
  return { id: id!, publisher: publisher!, publishedQoS: qos! };
}

// ---- running a sequence --------------------------------------------------------------------------------------

/** How long a connect keeps retrying while the cluster cannot take the session yet (a node's lease), ms. */
const CONNECT_RETRY_MS = 5000;
/** The final drain ends when no message arrived for this long, ms. */
const QUIET_MS = 150;

/** Runs `steps` on `world`; resolves each client's deliveries after a final reconnect and drain. */
async function runSteps(world: World, steps: readonly Step[]): Promise<Delivery[][]> {
  const clients = CLIENTS.map((name) => new ModelClient(name));
  const at = new Array<number | undefined>(CLIENTS.length).fill(undefined);
  const filterOf = new Array<string | undefined>(CLIENTS.length).fill(undefined);
  const live = [true, true, true];
  const connect = async (client: number, node: number) => {
    const deadline = performance.now() + CONNECT_RETRY_MS;
    for (;;) {
      const code = await clients[client]!.connect(world.connect(node));
      if (code === 0) break;
      if (performance.now() > deadline) {
        throw new Error(`${CLIENTS[client]} refused by node ${node}: ${code}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    at[client] = node;
  };
  try {
    for (const [index, step] of steps.entries()) {
      try {
        switch (step.kind) {
          case "connect":
            await connect(step.client, step.node);
            break;
          case "disconnect":
            await clients[step.client]!.disconnect();
            at[step.client] = undefined;
            break;
          case "subscribe": {
            const old = filterOf[step.client];
            if (old !== undefined && old !== step.filter) await clients[step.client]!.unsubscribe(old);
            await clients[step.client]!.subscribe(step.filter, step.qos);
            filterOf[step.client] = step.filter;
            break;
          }
          case "unsubscribe":
            if (filterOf[step.client] !== undefined) {
              await clients[step.client]!.unsubscribe(filterOf[step.client]!);
            }
            filterOf[step.client] = undefined;
            break;
          case "publish":
            await clients[step.client]!.publish(step.topic, step.qos, payloadOf(step));
            break;
          case "stop":
            await world.stop(step.node);
            live[step.node] = false;
            for (let c = 0; c < CLIENTS.length; c++) {
              if (at[c] === step.node) {
                await clients[c]!.drop();
                at[c] = undefined;
              }
            }
            break;
          case "start":
            await world.start(step.node);
            live[step.node] = true;
            break;
        }
      } catch (error) {
        throw new Error(`step ${index} (${describe(step)}): ${(error as Error).message}`, { cause: error });
      }
      await world.settle();
    }
    // Every client comes back (to a live node) and takes what was queued for it.
    const liveNodes = [0, 1, 2].filter((n) => live[n]);
    for (let c = 0; c < CLIENTS.length; c++) {
      if (!clients[c]!.connected) await connect(c, liveNodes[c % liveNodes.length]!);
    }
    const deadline = performance.now() + 5000;
    for (;;) {
      await world.settle();
      await new Promise((resolve) => setTimeout(resolve, 20));
      const quiet = clients.every((client) => performance.now() - client.lastArrival > QUIET_MS);
      if (quiet || performance.now() > deadline) break;
    }
    return clients.map((client) => client.deliveries);
  } finally {
    await Promise.all(clients.map((client) => client.drop()));
  }
}

// ---- the checks ----------------------------------------------------------------------------------------------

/** Problems with one world's deliveries on their own: QoS 2 and QoS 0 duplicates, order. */
function ownProblems(deliveries: readonly (readonly Delivery[])[]): string[] {
  const problems: string[] = [];
  deliveries.forEach((list, client) => {
    const seen = new Map<number, number>();
    const last = new Map<string, number>();
    for (const d of list) {
      const count = (seen.get(d.id) ?? 0) + 1;
      seen.set(d.id, count);
      if (count === 2 && d.qos !== 1) problems.push(`${CLIENTS[client]} got #${d.id} twice at QoS ${d.qos}`);
      if (count > 1) continue;
      // Order per publisher and QoS of arrival: ids grow with publish order [MQTT-4.6.0-6 (3.1.1)].
      const stream = `${d.publisher}/${d.qos}`;
      const previous = last.get(stream);
      if (previous !== undefined && previous > d.id) {
        problems.push(
          `${CLIENTS[client]} got #${d.id} after #${previous} from ${CLIENTS[d.publisher]} at QoS ${d.qos}`,
        );
      }
      last.set(stream, d.id);
    }
  });
  return problems;
}

/** Problems of the cluster's deliveries against the oracle's. */
function againstOracle(
  oracleDeliveries: readonly (readonly Delivery[])[],
  cluster: readonly (readonly Delivery[])[],
): string[] {
  const problems: string[] = [];
  const reliable = (list: readonly Delivery[]) =>
    new Map(list.filter((d) => d.qos > 0).map((d) => [d.id, d.qos] as const));
  oracleDeliveries.forEach((list, client) => {
    const expected = reliable(list);
    const got = reliable(cluster[client]!);
    for (const [id, qos] of expected) {
      if (!got.has(id)) {
        problems.push(`${CLIENTS[client]} never got #${id} (QoS ${qos}), which the oracle delivered`);
      } else if (got.get(id) !== qos) {
        problems.push(`${CLIENTS[client]} got #${id} at QoS ${got.get(id)}, not ${qos}`);
      }
    }
    for (const [id, qos] of got) {
      if (!expected.has(id)) {
        problems.push(`${CLIENTS[client]} got #${id} at QoS ${qos}, which the oracle did not deliver`);
      }
    }
  });
  return problems;
}

/** Runs one seed on the oracle and on `kind`; throws with the seed and the steps when they disagree. */
async function checkSeed(kind: ClusterKind, seed: number, stepCount: number): Promise<void> {
  const steps = generateSteps(seed, stepCount);
  const replay = () =>
    `seed ${seed} (replay: MODEL_SEED=${seed} MODEL_STEPS=${stepCount} deno test -A tests/cluster/model_test.ts)\n` +
    steps.map((step, i) => `  ${i}: ${describe(step)}`).join("\n");
  const reference = await oracle();
  let expected: Delivery[][];
  try {
    expected = await runSteps(reference, steps);
  } finally {
    await reference.close();
  }
  const oracleProblems = ownProblems(expected);
  assert.deepEqual(oracleProblems, [], `the oracle itself broke a rule, ${replay()}`);
  const world = await kind.make();
  let got: Delivery[][];
  try {
    got = await runSteps(world, steps);
  } catch (error) {
    throw new Error(`${kind.name}: ${(error as Error).message}\n${replay()}`, { cause: error });
  } finally {
    await world.close();
  }
  const problems = [...ownProblems(got), ...againstOracle(expected, got)];
  if (problems.length > 0) {
    throw new Error(
      `${kind.name} disagrees with the oracle:\n  ${problems.slice(0, 20).join("\n  ")}\n${replay()}`,
    );
  }
}

/** An environment variable, or undefined (also without --allow-env). */
function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * The seeds: a handful, fixed (so CI is repeatable); MODEL_SEED=N replays one, MODEL_SEEDS=N explores seeds 1..N.
 * MODEL_STEPS sets the length of each sequence (longer ones find rarer interleavings).
 */
const SEEDS = env("MODEL_SEED") !== undefined
  ? [Number(env("MODEL_SEED"))]
  : Array.from({ length: Number(env("MODEL_SEEDS") ?? 5) }, (_, i) => i + 1);
const STEPS = Number(env("MODEL_STEPS") ?? 60);

/** The oracle against itself behind three doors: the runner and checks agree with one broker. */
const SELF: ClusterKind = {
  name: "one broker behind three nodes",
  unavailable: () => Promise.resolve(undefined),
  make: oracle,
};

Deno.test("generateSteps() is a function of the seed", () => {
  assert.deepEqual(generateSteps(7, 40), generateSteps(7, 40));
  assert.notDeepEqual(generateSteps(7, 40), generateSteps(8, 40));
});

for (const kind of [SELF, ...CLUSTER_KINDS]) {
  const why = await kind.unavailable();
  Deno.test({
    name: why === undefined
      ? `model: ${kind.name} delivers as the single-broker oracle (seeds ${SEEDS.join(", ")}, ${STEPS} steps)`
      : `model: ${kind.name} delivers as the single-broker oracle (skipped: ${why})`,
    ignore: why !== undefined,
    async fn() {
      for (const seed of SEEDS) await checkSeed(kind, seed, STEPS);
    },
  });
}
