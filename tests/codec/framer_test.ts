import assert from "node:assert/strict";
import { decodePacket } from "../../lib/packet/decode.ts";
import { encode } from "../../lib/packet/encode.ts";
import { Framer } from "../../lib/codec/framer.ts";
import { MqttError } from "../../lib/mqtt_error.ts";
import type { Packet } from "../../lib/packet/packet.ts";
import type { ProtocolVersion } from "../../lib/packet/packet_type.ts";
import { Random } from "./_generate.ts";
import { CASES, versionLabel } from "./cases.ts";

/**
 * Pushes `chunks` one by one and decodes every frame as soon as it is returned. A frame, and the payload views of
 * the packet decoded from it, are valid only until the next push, so each packet is cloned before pushing on.
 */
function frameAll(framer: Framer, chunks: Iterable<Uint8Array>, version: ProtocolVersion): Packet[] {
  const packets: Packet[] = [];
  for (const chunk of chunks) {
    framer.push(chunk);
    for (let frame = framer.next(); frame !== undefined; frame = framer.next()) {
      packets.push(structuredClone(decodePacket(frame.header, frame.body, version)));
    }
  }
  return packets;
}

/** The cases valid in `version`: their bytes concatenated, and the packets in order. */
function stream(version: ProtocolVersion): { bytes: Uint8Array; packets: Packet[] } {
  const cases = CASES.filter((c) => c.versions.includes(version));
  const bytes = Uint8Array.from(cases.flatMap((c) => c.bytes));
  return { bytes, packets: cases.map((c) => c.packet) };
}

/** `bytes` cut at `count - 1` random points (some chunks empty). */
function randomSplit(rng: Random, bytes: Uint8Array, count: number): Uint8Array[] {
  const cuts = Array.from({ length: count - 1 }, () => rng.int(0, bytes.length)).sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    chunks.push(bytes.subarray(start, cut));
    start = cut;
  }
  return chunks;
}

function isMqttError(code: number): (e: unknown) => boolean {
  return (e) => e instanceof MqttError && e.reasonCode === code;
}

for (const version of [3, 4, 5] as const) {
  const label = versionLabel(version);

  Deno.test(`Framer frames every case fed one byte at a time (${label})`, () => {
    for (const c of CASES.filter((c) => c.versions.includes(version))) {
      const framer = new Framer();
      const bytes = Uint8Array.from(c.bytes);
      const chunks = Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
      assert.deepStrictEqual(frameAll(framer, chunks, version), [c.packet], c.name);
      assert.equal(framer.buffered, 0);
    }
  });

  Deno.test(`Framer frames all cases concatenated in one chunk (${label})`, () => {
    const { bytes, packets } = stream(version);
    const framer = new Framer();
    assert.deepStrictEqual(frameAll(framer, [bytes], version), packets);
    assert.equal(framer.buffered, 0);
  });

  const seed = 0xf4a3_0000 + version;
  Deno.test(`Framer frames all cases split at random points (${label}, seed 0x${seed.toString(16)})`, () => {
    const rng = new Random(seed);
    const { bytes, packets } = stream(version);
    for (let round = 0; round < 300; round++) {
      const framer = new Framer();
      const chunks = randomSplit(rng, bytes, rng.int(2, 60));
      assert.deepStrictEqual(frameAll(framer, chunks, version), packets, `round ${round}`);
      assert.equal(framer.buffered, 0);
    }
  });
}

Deno.test("Framer refuses a Remaining Length over the maximum packet size from the header alone (0x95)", () => {
  const framer = new Framer({ maxPacketSize: 100 });
  framer.push(Uint8Array.of(0x30)); // PUBLISH, then Remaining Length 128 = 0x80 0x01, arriving byte by byte
  assert.equal(framer.next(), undefined);
  framer.push(Uint8Array.of(0x80));
  assert.equal(framer.next(), undefined);
  framer.push(Uint8Array.of(0x01)); // no body byte has arrived
  assert.throws(() => framer.next(), isMqttError(0x95));
});

Deno.test("Framer refuses a 268,435,455-byte Remaining Length at once with the default maximum lowered", () => {
  const framer = new Framer({ maxPacketSize: 1024 * 1024 });
  framer.push(Uint8Array.of(0x30, 0xff, 0xff, 0xff, 0x7f));
  assert.throws(() => framer.next(), isMqttError(0x95));
});

Deno.test("Framer counts the fixed header in the maximum packet size", () => {
  const body = new Uint8Array(126); // 1 + 1 + 126 = 128 bytes in all
  const packet = Uint8Array.of(0x30, 126, 0, 1, 0x61, ...body.subarray(3));
  const exact = new Framer({ maxPacketSize: 128 });
  exact.push(packet);
  assert.equal(exact.next()?.body.length, 126);
  const under = new Framer({ maxPacketSize: 127 });
  under.push(packet.subarray(0, 2));
  assert.throws(() => under.next(), isMqttError(0x95));
});

Deno.test("Framer refuses a 5-byte Remaining Length at its fourth byte (0x81) [MQTT-1.5.5-1 (5.0)]", () => {
  const framer = new Framer();
  framer.push(Uint8Array.of(0x30, 0xff, 0xff, 0xff));
  assert.equal(framer.next(), undefined); // may still end in a fourth byte
  framer.push(Uint8Array.of(0xff));
  assert.throws(() => framer.next(), isMqttError(0x81));
});

Deno.test("Framer refuses a Remaining Length not in its shortest form (0x81) [MQTT-1.5.5-1 (5.0)]", () => {
  for (const header of [[0xc0, 0x80, 0x00], [0x30, 0x85, 0x80, 0x00], [0x30, 0xff, 0xff, 0xff, 0x00]]) {
    const framer = new Framer();
    framer.push(Uint8Array.from(header));
    assert.throws(() => framer.next(), isMqttError(0x81), JSON.stringify(header));
  }
});

Deno.test("Framer frames stay valid until the next push", () => {
  const a = Uint8Array.of(0x30, 3, 0, 1, 0x61);
  const b = Uint8Array.of(0x40, 2, 0, 7);
  const c = Uint8Array.of(0xc0, 0);
  const framer = new Framer();
  framer.push(Uint8Array.of(...a, ...b, ...c, ...a.subarray(0, 2)));
  const frames = [framer.next()!, framer.next()!, framer.next()!];
  assert.equal(framer.next(), undefined);
  assert.deepStrictEqual(frames.map((f) => [f.header, ...f.body]), [[0x30, 0, 1, 0x61], [0x40, 0, 7], [
    0xc0,
  ]]);
  assert.equal(framer.buffered, 2);
});

Deno.test("Framer keeps no reference to a drained chunk: the caller may reuse its memory", () => {
  const framer = new Framer();
  const chunk = Uint8Array.of(0xc0, 0, 0x40, 2, 0); // PINGREQ, then a PUBACK cut after its first id byte
  framer.push(chunk);
  assert.equal(framer.next()?.header, 0xc0);
  assert.equal(framer.next(), undefined);
  chunk.fill(0xee); // the caller's read buffer is overwritten by the next read
  framer.push(Uint8Array.of(9));
  const frame = framer.next()!;
  assert.deepStrictEqual(decodePacket(frame.header, frame.body, 4), { type: 4, packetId: 9, reasonCode: 0 });
});

Deno.test("Framer frames a 2 MB PUBLISH (4-byte Remaining Length) split over many chunks (seed 0xb16)", () => {
  const rng = new Random(0xb16);
  const packet: Packet = {
    type: 3,
    topic: "big/payload",
    payload: rng.bytes(2_100_000),
    qos: 1,
    retain: false,
    dup: false,
    packetId: 42,
  };
  const bytes = encode(packet, 5);
  assert.equal(bytes[4]! & 0x80, 0); // the 4th Remaining Length byte is the last
  assert.notEqual(bytes[3]! & 0x80, 0);
  const chunks: Uint8Array[] = [];
  for (let start = 0; start < bytes.length;) {
    const size = rng.int(1, 65_536);
    chunks.push(bytes.slice(start, start + size)); // copies, as a socket read would be
    start += size;
  }
  const framer = new Framer();
  assert.deepStrictEqual(frameAll(framer, [...chunks, encode({ type: 12 }, 5)], 5), [packet, { type: 12 }]);
  assert.equal(framer.buffered, 0);
});

Deno.test("Framer reports the bytes it holds in buffered", () => {
  const framer = new Framer();
  assert.equal(framer.buffered, 0);
  framer.push(Uint8Array.of(0x30, 5, 0));
  assert.equal(framer.next(), undefined);
  assert.equal(framer.buffered, 3);
  framer.push(Uint8Array.of(1, 0x61, 0x62, 0x63, 0xc0));
  assert.equal(framer.next()?.body.length, 5);
  assert.equal(framer.buffered, 1);
});

Deno.test("Framer allocates with the bytes received, not with the Remaining Length a header claims", () => {
  const before = Deno.memoryUsage().external;
  const framers: Framer[] = [];
  for (let i = 0; i < 50; i++) {
    const framer = new Framer(); // default maximum: 256 MB frames allowed
    framer.push(Uint8Array.of(0x30, 0xff, 0xff, 0xff, 0x7f, 0)); // claims 268,435,455 bytes, sends 1
    assert.equal(framer.next(), undefined);
    framer.push(Uint8Array.of(0, 0x61));
    assert.equal(framer.next(), undefined);
    framers.push(framer);
  }
  const grown = Deno.memoryUsage().external - before;
  assert.ok(grown < 32 * 1024 * 1024, `50 idle framers hold ${grown} bytes`);
  assert.equal(framers.reduce((sum, f) => sum + f.buffered, 0), 50 * 8);
});

Deno.test("Framer sets nothing aside for a frame's claimed length before its bytes arrive", () => {
  // Issue 15 item 9: 8,000 sockets that sent a 4-byte CONNECT header cost 64 KiB each.
  const count = 1000;
  const before = Deno.memoryUsage().external;
  const framers: Framer[] = [];
  for (let i = 0; i < count; i++) {
    const framer = new Framer();
    framer.push(Uint8Array.of(0x10, 0xff, 0xff, 0x03)); // CONNECT claiming 65,535 bytes
    assert.equal(framer.next(), undefined);
    framers.push(framer);
  }
  const perFramer = (Deno.memoryUsage().external - before) / count;
  assert.ok(perFramer < 2048, `an idle framer holding a 4-byte header takes ${perFramer} bytes`);
  assert.equal(framers.reduce((sum, f) => sum + f.buffered, 0), count * 4);
});
