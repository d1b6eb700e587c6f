/**
 * The README's "every core of one machine" set-up, for real: HAProxy (Debian's `haproxy`, `mode tcp`) in front
 * of cluster brokers that run as subprocesses on one real Redis. Clients know one address; the balancer spreads
 * them over the nodes, messages cross between nodes, and when a node is SIGKILLed a client that reconnects to
 * the same address lands on a live node, resumes its session there and gets what was acknowledged meanwhile.
 */

import assert from "node:assert/strict";
import { MqttClient } from "../../lib/client/client.ts";
import type { MqttClientOptions } from "../../lib/client/options.ts";
import { filesUnavailable, testIf } from "../_permissions.ts";
import { redisUnavailable, withRedis } from "../_redis.ts";
import { ClusterBroker, clusterProcessUnavailable, freePort, sleep } from "./_cluster_process.ts";

/** Debian's package `haproxy` installs it here. */
const HAPROXY = "/usr/sbin/haproxy";
const decoder = new TextDecoder();

function haproxyUnavailable(): string | undefined {
  if (Deno.permissions.querySync({ name: "run", command: HAPROXY }).state !== "granted") {
    return "needs --allow-run";
  }
  try {
    Deno.statSync(HAPROXY);
  } catch {
    return `${HAPROXY} is not installed (Debian package haproxy)`;
  }
  return undefined;
}

const UNAVAILABLE = [redisUnavailable(), clusterProcessUnavailable(), haproxyUnavailable()];

/**
 * The configuration the README shows, with this test's ports: TCP mode, least connections (a client that
 * connects while another holds a node lands on the other one), health checks that take a dead node out within a fraction of a second, and redispatch so a
 * connect refused by a dead node is retried on another.
 */
function haproxyConfig(port: number, brokers: readonly { node: string; port: number }[]): string {
  return [
    "global",
    "  maxconn 4096",
    "defaults",
    "  mode tcp",
    "  option redispatch",
    "  retries 3",
    "  timeout connect 2s",
    "  timeout client 120s",
    "  timeout server 120s",
    "frontend mqtt",
    `  bind 127.0.0.1:${port}`,
    "  default_backend brokers",
    "backend brokers",
    "  balance leastconn",
    ...brokers.map((b) => `  server ${b.node} 127.0.0.1:${b.port} check inter 200ms fall 1 rise 1`),
    "",
  ].join("\n");
}

/** HAProxy in the foreground; always reaped. */
class Haproxy {
  readonly port: number;
  readonly #child: Deno.ChildProcess;
  #output = "";
  readonly #pumps: Promise<void>[];

  private constructor(port: number, child: Deno.ChildProcess) {
    this.port = port;
    this.#child = child;
    this.#pumps = [this.#pump(child.stdout), this.#pump(child.stderr)];
  }

  static async start(dir: string, brokers: readonly ClusterBroker[]): Promise<Haproxy> {
    const port = freePort();
    const file = `${dir}/haproxy.cfg`;
    await Deno.writeTextFile(file, haproxyConfig(port, brokers.map((b) => ({ node: b.node, port: b.port }))));
    const child = new Deno.Command(HAPROXY, {
      args: ["-db", "-f", file],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const haproxy = new Haproxy(port, child);
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        return haproxy;
      } catch {
        if (Date.now() > deadline) {
          await haproxy.stop();
          throw new Error(`haproxy did not listen on ${port}:\n${haproxy.#output}`);
        }
        await sleep(50);
      }
    }
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) this.#output += text;
  }

  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await this.#child.status;
    await Promise.all(this.#pumps);
  }
}

/** The node whose log says `clientId` connected to it (each broker logs "client ID connected from …"). */
function nodeOf(brokers: readonly ClusterBroker[], clientId: string): string | undefined {
  const line = new RegExp(`client ${clientId} connected from`);
  return brokers.find((b) => line.test(b.output))?.node;
}

testIf(
  "HAProxy in front of two nodes: one address, clients spread over both, messages cross, and a client of a SIGKILLed node resumes its session through the same address",
  UNAVAILABLE,
  async () => {
    await withRedis(async (redis) => {
      const brokers: ClusterBroker[] = [];
      const clients: MqttClient[] = [];
      let haproxy: Haproxy | undefined;
      try {
        for (const node of ["a", "b"]) {
          brokers.push(await ClusterBroker.start({ redis: redis.url, node, leaseMs: 1000, dir: redis.dir }));
        }
        haproxy = await Haproxy.start(redis.dir, brokers);
        const connect = async (options: MqttClientOptions): Promise<MqttClient> => {
          const c = new MqttClient({ hostname: "127.0.0.1", port: haproxy!.port, ...options });
          clients.push(c);
          await c.connect();
          return c;
        };
        // A persistent subscriber (it reconnects by itself) and a publisher: least connections puts the second
        // on the node the first does not hold.
        const sub = await connect({
          clientId: "device",
          protocolVersion: 4,
          cleanStart: false,
          reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
        });
        const got: string[] = [];
        const reading = (async () => {
          for await (const m of sub.messages()) got.push(`${m.topic}=${decoder.decode(m.payload)}`);
        })().catch(() => {});
        await sub.subscribe("data/#", { qos: 1 });
        const pub = await connect({ clientId: "sender", protocolVersion: 4, reconnect: false });
        const subNode = nodeOf(brokers, "device");
        const pubNode = nodeOf(brokers, "sender");
        assert.ok(subNode !== undefined && pubNode !== undefined, "both clients logged by a node");
        assert.notEqual(subNode, pubNode, "the balancer put the two clients on two nodes");

        // Across nodes (the route is stored before the SUBACK; the other node reads it within ms).
        const until = async (what: string, done: () => boolean, ms = 15_000): Promise<void> => {
          const deadline = Date.now() + ms;
          while (!done()) {
            if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${got.join(" ")}`);
            await sleep(25);
          }
        };
        for (let i = 0; !got.some((m) => m.startsWith("data/probe=")); i++) {
          if (i > 200) throw new Error("no route from the publisher's node to the subscriber's");
          await pub.publish("data/probe", "p", { qos: 0 });
          await sleep(50);
        }
        await pub.publish("data/1", "m1", { qos: 1 });
        await until("data/1", () => got.includes("data/1=m1"));

        // The subscriber's node dies. The publisher (on the other node) goes on; what it had acknowledged waits
        // in the cluster for the subscriber's session.
        const dead = brokers.find((b) => b.node === subNode)!;
        const live = brokers.find((b) => b.node === pubNode)!;
        await dead.stop();
        for (let i = 2; i <= 11; i++) await pub.publish(`data/${i}`, `m${i}`, { qos: 1 });

        // The subscriber reconnects to the same address: HAProxy sends it to the live node, which takes over (or
        // adopts) its session: Session Present, and every acknowledged message arrives.
        await until("every acknowledged message, after the reconnect", () => {
          for (let i = 1; i <= 11; i++) if (!got.includes(`data/${i}=m${i}`)) return false;
          return true;
        }, 20_000);
        assert.match(
          live.output,
          /client device connected from .*session resumed/,
          "resumed on the live node",
        );
        await sub.close();
        await reading;
      } finally {
        for (const c of clients) await c.close().catch(() => {});
        await haproxy?.stop();
        for (const broker of brokers) await broker.stop();
      }
    }, { tcp: true });
  },
);

testIf(
  "the README's HAProxy configuration passes `haproxy -c`",
  [haproxyUnavailable(), filesUnavailable()],
  async () => {
    const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
    const block = /```text\n((?:(?!```)[\s\S])*?backend brokers[\s\S]*?)```/.exec(readme);
    assert.ok(block !== null, "the README shows an HAProxy configuration");
    const file = await Deno.makeTempFile({ suffix: ".cfg" });
    try {
      await Deno.writeTextFile(file, block[1]!);
      const { code, stdout, stderr } = await new Deno.Command(HAPROXY, { args: ["-c", "-f", file] }).output();
      assert.equal(code, 0, decoder.decode(stdout) + decoder.decode(stderr));
    } finally {
      await Deno.remove(file);
    }
  },
);
