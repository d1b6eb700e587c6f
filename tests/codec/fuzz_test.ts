/**
 * A bounded, seeded fuzz of the framer and the decoder: random bytes, and mutations of valid encodings (bit flips,
 * byte changes, truncations, insertions, Remaining Length changes). Every input must decode to a packet or throw
 * an MqttError, never anything else; every packet decoded must re-encode (no longer than its input) and decode to
 * an equal packet. Seeds are in the test names: a failure names the input to replay.
 *
 * @module
 */

import assert from "node:assert/strict";
import { decode, decodePacket } from "../../lib/packet/decode.ts";
import { encode } from "../../lib/packet/encode.ts";
import { Framer } from "../../lib/codec/framer.ts";
import { MqttError } from "../../lib/mqtt_error.ts";
import type { ProtocolVersion } from "../../lib/packet/packet_type.ts";
import { packetTypes, Random, randomPacket } from "./_generate.ts";
import { CASES } from "./cases.ts";

const VERSIONS: readonly ProtocolVersion[] = [3, 4, 5];

/** First bytes of real packets, so that random input often gets past the fixed header. */
const FIRST_BYTES = [
  0x10,
  0x20,
  0x30,
  0x31,
  0x32,
  0x33,
  0x34,
  0x35,
  0x3a,
  0x3d,
  0x40,
  0x50,
  0x62,
  0x70,
  0x82,
  0x90,
  0xa2,
  0xb0,
  0xc0,
  0xd0,
  0xe0,
  0xf0,
];

function hex(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 64), (b) => b.toString(16).padStart(2, "0")).join(" ") +
    (bytes.length > 64 ? ` ... (${bytes.length} bytes)` : "");
}

/** Decodes `input` in every version; asserts the outcome is a packet that round-trips, or an MqttError. */
function check(input: Uint8Array, what: string): number {
  let decoded = 0;
  for (const version of VERSIONS) {
    let packet;
    try {
      packet = decode(input, version);
    } catch (error) {
      if (error instanceof MqttError) continue;
      throw new Error(`${what} (v${version}) threw ${error}: ${hex(input)}`, { cause: error });
    }
    decoded++;
    try {
      const bytes = encode(packet, version);
      assert.ok(bytes.length <= input.length, `re-encoded to ${bytes.length} bytes from ${input.length}`);
      assert.deepStrictEqual(decode(bytes, version), packet);
    } catch (error) {
      throw new Error(`${what} (v${version}) does not round-trip: ${hex(input)}`, { cause: error });
    }
  }
  return decoded;
}

/** `input` with its Remaining Length rewritten to match its body, when its header is readable. */
function reframe(input: Uint8Array): Uint8Array {
  let i = 1;
  while (i < input.length && i < 5 && (input[i]! & 0x80) !== 0) i++;
  if (i >= input.length || i >= 5) return input;
  const body = input.subarray(i + 1);
  const length: number[] = [];
  let n = body.length;
  do {
    length.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return Uint8Array.of(input[0]!, ...length, ...body);
}

function mutate(rng: Random, source: Uint8Array): Uint8Array {
  let bytes = Uint8Array.from(source);
  for (let m = rng.int(1, 3); m > 0; m--) {
    const at = rng.int(0, Math.max(0, bytes.length - 1));
    switch (rng.int(0, 6)) {
      case 0: // flip one bit
        if (bytes.length > 0) bytes[at] = bytes[at]! ^ (1 << rng.int(0, 7));
        break;
      case 1: // set one byte
        if (bytes.length > 0) bytes[at] = rng.pick([0, 0xff, 0x7f, 0x80, rng.int(0, 255)]);
        break;
      case 2: // truncate
        bytes = bytes.subarray(0, rng.int(0, bytes.length));
        break;
      case 3: // append
        bytes = Uint8Array.of(...bytes, ...rng.bytes(rng.int(1, 8)));
        break;
      case 4: // insert a byte
        bytes = Uint8Array.of(...bytes.subarray(0, at), rng.int(0, 255), ...bytes.subarray(at));
        break;
      case 5: // delete a byte
        bytes = Uint8Array.of(...bytes.subarray(0, at), ...bytes.subarray(at + 1));
        break;
      default: // change a Remaining Length byte
        if (bytes.length > 1) bytes[1] = rng.pick([bytes[1]! + 1, bytes[1]! - 1, rng.int(0, 255)]) & 0xff;
    }
  }
  // Half the time, make the Remaining Length true again so the mutation reaches the packet decoders.
  return rng.chance(0.5) ? reframe(bytes) : bytes;
}

/** Valid encodings to mutate: every case, and random packets of every type and version. */
function corpus(rng: Random, perType: number): Uint8Array[] {
  const out: Uint8Array[] = CASES.map((c) => Uint8Array.from(c.bytes));
  for (const version of VERSIONS) {
    for (const type of packetTypes(version)) {
      for (let i = 0; i < perType; i++) {
        const packet = randomPacket(rng, type, version);
        if (packet.type === 3 && packet.payload.length > 400) continue; // keep inputs small and fast
        out.push(encode(packet, version));
      }
    }
  }
  return out;
}

Deno.test("fuzz: 80,000 random byte strings (seed 0xf022) decode to a packet or throw MqttError", () => {
  const rng = new Random(0xf022);
  let decoded = 0;
  for (let i = 0; i < 80_000; i++) {
    const input = rng.bytes(rng.chance(0.9) ? rng.int(0, 40) : rng.int(41, 300));
    if (input.length > 0 && rng.chance(0.8)) input[0] = rng.pick(FIRST_BYTES);
    if (input.length > 1 && rng.chance(0.6)) input[1] = input.length - 2 < 128 ? input.length - 2 : input[1]!;
    decoded += check(input, `random input #${i}`);
  }
  assert.ok(decoded > 500, `only ${decoded} random inputs decoded: the fuzz barely reaches the decoders`);
});

Deno.test("fuzz: 120,000 mutations of valid encodings (seed 0xf023) decode to a packet or throw MqttError", () => {
  const rng = new Random(0xf023);
  const sources = corpus(rng, 40);
  let decoded = 0;
  for (let i = 0; i < 120_000; i++) {
    decoded += check(mutate(rng, rng.pick(sources)), `mutation #${i}`);
  }
  assert.ok(decoded > 10_000, `only ${decoded} mutations decoded`);
});

Deno.test("fuzz: 3,000 mutated streams in random chunks (seed 0xf024) frame and decode or throw MqttError", () => {
  const rng = new Random(0xf024);
  const sources = corpus(rng, 10);
  for (let s = 0; s < 3_000; s++) {
    const version = rng.pick(VERSIONS);
    const parts = Array.from({ length: rng.int(1, 8) }, () => {
      const source = rng.pick(sources);
      return rng.chance(0.3) ? mutate(rng, source) : source;
    });
    const bytes = Uint8Array.from(parts.flatMap((p) => [...p]));
    const framer = new Framer({ maxPacketSize: rng.pick([64, 1024, 268_435_460]) });
    let calls = 0;
    try {
      for (let start = 0; start < bytes.length;) {
        const end = Math.min(bytes.length, start + rng.int(1, 64));
        framer.push(bytes.subarray(start, end));
        start = end;
        for (let frame = framer.next(); frame !== undefined; frame = framer.next()) {
          assert.ok(++calls <= bytes.length, "the framer returns more frames than bytes: a loop");
          try {
            decodePacket(frame.header, frame.body, version);
          } catch (error) {
            if (!(error instanceof MqttError)) throw error;
          }
        }
      }
    } catch (error) {
      if (error instanceof MqttError) continue; // the stream is refused; a connection would close here
      throw new Error(`stream #${s} (v${version}): ${hex(bytes)}`, { cause: error });
    }
  }
});
