/**
 * Codec benchmark: decode and encode of a PUBLISH with a 64-byte payload (v3.1.1 and v5) and of a v5 CONNECT
 * with properties, ours against npm:mqtt-packet (the codec of MQTT.js and Aedes) on the same bytes in the same
 * run. Decode is measured as a broker does it: one chunk pushed into a long-lived {@linkcode Framer}, the frame
 * decoded with {@linkcode decodePacket}; mqtt-packet's side is its streaming `parser.parse()` on the same chunk.
 *
 * Run alone: `deno run --allow-env bench/codec_bench.ts`
 *
 * @module
 */

import { Buffer } from "node:buffer";
import mqttPacket from "mqtt-packet";
import { type BenchGroup, type BenchRow, median, renderGroup } from "./_report.ts";
import { decodePacket } from "../lib/packet/decode.ts";
import { encode } from "../lib/packet/encode.ts";
import { Framer } from "../lib/codec/framer.ts";
import type { Packet } from "../lib/packet/packet.ts";
import type { ProtocolVersion } from "../lib/packet/packet_type.ts";

/** Operations per timed run; each figure is the median of RUNS runs, after a warm-up run of each side. */
const ITERATIONS = 100_000;
const RUNS = 7;

/** Defeats dead-code elimination: every measured call feeds it. */
let sink = 0;

type MqttPacketInput = Parameters<typeof mqttPacket.generate>[0];

interface Scenario {
  readonly name: string;
  readonly version: ProtocolVersion;
  readonly ours: Packet;
  /** The same packet in mqtt-packet's shape. */
  readonly theirs: MqttPacketInput;
}

const PAYLOAD = Uint8Array.from({ length: 64 }, (_, i) => (i * 7) & 0xff);

function publish(version: ProtocolVersion): Scenario {
  return {
    name: `PUBLISH QoS 1, 64 B payload (${version === 5 ? "v5" : "v3.1.1"})`,
    version,
    ours: {
      type: 3,
      topic: "devices/42/telemetry",
      payload: PAYLOAD,
      qos: 1,
      retain: false,
      dup: false,
      packetId: 7,
    },
    theirs: {
      cmd: "publish",
      topic: "devices/42/telemetry",
      payload: Buffer.from(PAYLOAD),
      qos: 1,
      retain: false,
      dup: false,
      messageId: 7,
    },
  };
}

const CONNECT_V5: Scenario = {
  name: "CONNECT with properties and a will (v5)",
  version: 5,
  ours: {
    type: 1,
    protocolVersion: 5,
    clientId: "sensor-0042",
    cleanStart: true,
    keepAlive: 60,
    username: "device",
    password: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8),
    properties: {
      sessionExpiryInterval: 3600,
      receiveMaximum: 100,
      topicAliasMaximum: 10,
      userProperties: [["site", "lyon"], ["model", "x2"]],
      maximumPacketSize: 1_048_576,
    },
    will: {
      topic: "devices/42/status",
      payload: Uint8Array.of(0x6f, 0x66, 0x66),
      qos: 1,
      retain: true,
      properties: { willDelayInterval: 10, contentType: "text/plain" },
    },
  },
  theirs: {
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: 5,
    clientId: "sensor-0042",
    clean: true,
    keepalive: 60,
    username: "device",
    password: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]),
    properties: {
      sessionExpiryInterval: 3600,
      receiveMaximum: 100,
      topicAliasMaximum: 10,
      userProperties: { site: "lyon", model: "x2" },
      maximumPacketSize: 1_048_576,
    },
    will: {
      topic: "devices/42/status",
      payload: Buffer.from([0x6f, 0x66, 0x66]),
      qos: 1,
      retain: true,
      properties: { contentType: "text/plain", willDelayInterval: 10 }, // in our (table) order
    },
  },
};

/** Operations per second of one timed run of `fn`. */
function rate(fn: () => unknown): number {
  const start = performance.now();
  for (let i = 0; i < ITERATIONS; i++) fn();
  return ITERATIONS / ((performance.now() - start) / 1000);
}

/**
 * Ours and theirs, each the median of RUNS runs. The runs alternate between the two sides so that a change in
 * machine load (other processes, the other side's garbage) falls on both alike.
 */
function compare(name: string, ours: () => unknown, theirs: () => unknown): BenchRow {
  rate(ours);
  rate(theirs);
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    a.push(rate(ours));
    b.push(rate(theirs));
  }
  return {
    name,
    unit: "ops/s",
    ours: median(a),
    peer: { name: "mqtt-packet 9.0.2", value: median(b) },
    higherIsBetter: true,
  };
}

function measureDecode(s: Scenario): BenchRow {
  const bytes = encode(s.ours, s.version);
  const theirBytes = mqttPacket.generate(s.theirs, { protocolVersion: s.version });
  if (!Buffer.from(bytes).equals(theirBytes)) throw new Error(`${s.name}: the two encodings differ`);
  const framer = new Framer();
  const parser = mqttPacket.parser({ protocolVersion: s.version });
  parser.on("packet", (packet) => sink += packet.cmd.length);
  parser.on("error", (error) => {
    throw error;
  });
  const chunk = Buffer.from(bytes);
  return compare(`${s.name}: framer + decode`, () => {
    framer.push(bytes);
    const frame = framer.next()!;
    sink += decodePacket(frame.header, frame.body, s.version).type;
  }, () => parser.parse(chunk));
}

function measureEncode(s: Scenario): BenchRow {
  const opts = { protocolVersion: s.version };
  return compare(
    `${s.name}: encode`,
    () => sink += encode(s.ours, s.version).length,
    () => sink += mqttPacket.generate(s.theirs, opts).length,
  );
}

/**
 * Runs the codec benchmark group. `progress` gets a line as each measurement starts (on stderr by default), so
 * a run of half a minute is not silent.
 */
export async function codecBench(
  progress: (line: string) => void = (line) => console.error(line),
): Promise<BenchGroup> {
  const scenarios = [publish(4), publish(5), CONNECT_V5];
  const rows: BenchRow[] = [];
  for (const [i, s] of scenarios.entries()) {
    progress(`codec ${2 * i + 1}/${2 * scenarios.length}: ${s.name}: decode`);
    rows.push(measureDecode(s));
    progress(`codec ${2 * i + 2}/${2 * scenarios.length}: ${s.name}: encode`);
    rows.push(measureEncode(s));
    await new Promise((resolve) => setTimeout(resolve, 0)); // let pending I/O run between scenarios
  }
  if (sink === 0) throw new Error("the measured calls produced nothing");
  return {
    title: "Codec: ours vs mqtt-packet (same bytes, same run)",
    rows,
    notes: [
      `Median of ${RUNS} runs of ${ITERATIONS / 1000}k operations per side, the sides alternating, after a ` +
      `warm-up run of each; Deno ${Deno.version.deno}, V8 ${Deno.version.v8}.`,
      "Decode: a chunk holding one packet pushed into a long-lived Framer, then decodePacket(); mqtt-packet: " +
      "parser.parse() on the same chunk. Encode: encode() vs generate(), each returning one buffer.",
    ],
  };
}

if (import.meta.main) console.log(renderGroup(await codecBench()));
