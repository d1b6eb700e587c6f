/**
 * Where an idle connection's bytes go (issue 19): starts our broker (`_idle_probe_broker.ts`, on `Deno.Conn`, or on
 * `node:net` with `--net`), opens N MQTT 3.1.1 connections 100 at a time from this process, and prints the
 * broker's RSS, V8 heap spaces and external memory at 0 and at N, and after a full GC. With `--snap` it also takes
 * a heap snapshot at both points and prints what grew, per connection, by object kind (a snapshot costs the broker
 * memory of its own: read RSS from a run without `--snap`).
 *
 * `deno run -A bench/idle_probe.ts [N] [--net] [--snap] [--flags=--max-semi-space-size=4]` (default 5,000).
 *
 * @module
 */

import { encode } from "../lib/packet/encode.ts";

const N = Number(Deno.args.find((arg) => /^\d+$/.test(arg)) ?? 5000);
const net = Deno.args.includes("--net");
const snap = Deno.args.includes("--snap");
const flags = Deno.args.find((arg) => arg.startsWith("--flags="))?.slice(8) ?? "--max-semi-space-size=4";
const dir = await Deno.makeTempDir({ prefix: "idle-probe-" });

const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    `--v8-flags=${flags},--expose-gc`,
    new URL("./_idle_probe_broker.ts", import.meta.url).pathname,
    ...(net ? ["--net"] : []),
  ],
  stdin: "piped",
  stdout: "piped",
  stderr: "inherit",
}).spawn();
const writer = child.stdin.getWriter();
const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
let pending = "";

async function line(): Promise<string> {
  for (;;) {
    const at = pending.indexOf("\n");
    if (at >= 0) {
      const text = pending.slice(0, at);
      pending = pending.slice(at + 1);
      return text;
    }
    const { value, done } = await reader.read();
    if (done) throw new Error("the broker ended");
    pending += value;
  }
}

/** Sends a command; resolves with what the broker printed for it. */
async function command(text: string): Promise<string> {
  await writer.write(new TextEncoder().encode(`${text}\nok\n`));
  const out: string[] = [];
  for (let got = await line(); got !== "ok"; got = await line()) out.push(got);
  return out.join("\n");
}

function rssKiB(): number {
  return Number(/VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${child.pid}/status`))![1]);
}

async function report(label: string): Promise<void> {
  const usage = JSON.parse(await command("mem"));
  const spaces = Object.entries(usage.spaces as Record<string, [number, number]>)
    .filter(([, [size]]) => size > 0)
    .map(([name, [size, used]]) => `${name.replace("_space", "")} ${kib(size)}/${kib(used)}`)
    .join(", ");
  console.log(
    `${label}: RSS ${rssKiB()} KiB, external ${
      kib(usage.external)
    } KiB; heap spaces KiB (committed/used): ${spaces}`,
  );
}

function kib(bytes: number): string {
  return (bytes / 1024).toFixed(0);
}

/** Self size and count per object kind (type and constructor name) in a heap snapshot. */
function kinds(path: string): Map<string, [number, number]> {
  const snapshot = JSON.parse(Deno.readTextFileSync(path));
  const fields: string[] = snapshot.snapshot.meta.node_fields;
  const types: string[] = snapshot.snapshot.meta.node_types[0];
  const nodes: number[] = snapshot.nodes;
  const strings: string[] = snapshot.strings;
  const [type, name, size] = ["type", "name", "self_size"].map((field) => fields.indexOf(field)) as [
    number,
    number,
    number,
  ];
  const named = new Set(["object", "closure", "native"]);
  const result = new Map<string, [number, number]>();
  for (let i = 0; i < nodes.length; i += fields.length) {
    const kind = types[nodes[i + type]!]!;
    const key = named.has(kind) ? `${kind} ${strings[nodes[i + name]!]!.slice(0, 60)}` : kind;
    const entry = result.get(key) ?? [0, 0];
    entry[0]++;
    entry[1] += nodes[i + size]!;
    result.set(key, entry);
  }
  return result;
}

const port = Number((await line()).split(":").pop());
await new Promise((resolve) => setTimeout(resolve, 300));
await report("0 connections");
if (snap) await command(`snap ${dir}/0.heapsnapshot`);
const rssBefore = rssKiB();
const conns: Deno.TcpConn[] = [];
let next = 0;
const started = performance.now();
async function worker(): Promise<void> {
  const buffer = new Uint8Array(8);
  while (next < N) {
    const i = next++;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conns.push(conn);
    await conn.write(
      encode({ type: 1, protocolVersion: 4, clientId: `probe-${i}`, cleanStart: true, keepAlive: 60 }, 4),
    );
    for (let have = 0; have < 4;) {
      const n = await conn.read(buffer.subarray(have));
      if (n === null) throw new Error("the broker closed a connection before CONNACK");
      have += n;
    }
  }
}
await Promise.all(Array.from({ length: 100 }, worker));
const seconds = (performance.now() - started) / 1000;
await new Promise((resolve) => setTimeout(resolve, 500));
const rssAfter = rssKiB();
await report(`${N} connections`);
console.log(
  `RSS per connection ${((rssAfter - rssBefore) / N).toFixed(2)} KiB; ${(N / seconds).toFixed(0)} connects/s`,
);
await command("gc");
await report(`${N} connections, after a full GC`);
if (snap) {
  await command(`snap ${dir}/1.heapsnapshot`);
  const before = kinds(`${dir}/0.heapsnapshot`);
  const rows = [...kinds(`${dir}/1.heapsnapshot`)].map(([key, [count, bytes]]) => {
    const [count0, bytes0] = before.get(key) ?? [0, 0];
    return { key, count: (count - count0) / N, bytes: (bytes - bytes0) / N };
  }).sort((a, b) => b.bytes - a.bytes);
  const total = rows.reduce((sum, row) => sum + row.bytes, 0);
  console.log(`heap snapshot growth: ${total.toFixed(0)} B per connection; the largest kinds:`);
  for (const row of rows.slice(0, 30)) {
    console.log(
      `${row.bytes.toFixed(1).padStart(8)} B ${row.count.toFixed(2).padStart(6)} per connection  ${row.key}`,
    );
  }
}
for (const conn of conns) conn.close();
child.kill("SIGKILL");
await child.status;
await Deno.remove(dir, { recursive: true });
