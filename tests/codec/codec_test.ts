import assert from "node:assert/strict";
import { decode } from "../../lib/packet/decode.ts";
import { encode } from "../../lib/packet/encode.ts";
import { utf8Length } from "../../lib/codec/utf8.ts";
import type { Packet } from "../../lib/packet/packet.ts";
import { PROPERTIES, type Properties, PROPERTY_CONTEXT } from "../../lib/packet/properties.ts";
import { encodePublish, patchPublish, publishPacketIdOffset } from "../../lib/packet/publish.ts";
import { CASES, text, versionLabel } from "./cases.ts";

for (const c of CASES) {
  for (const version of c.versions) {
    const label = `${c.name} (${versionLabel(version)})`;
    const bytes = Uint8Array.from(c.bytes);
    const canonical = Uint8Array.from(c.canonical ?? c.bytes);

    Deno.test(`decode() reads ${label}`, () => {
      assert.deepStrictEqual(decode(bytes, version), c.packet);
    });

    Deno.test(`encode() writes ${label}${c.canonical === undefined ? "" : " in its shortest form"}`, () => {
      assert.deepStrictEqual(encode(c.packet, version), canonical);
    });

    Deno.test(`decode(encode()) round-trips ${label}`, () => {
      assert.deepStrictEqual(decode(encode(c.packet, version), version), c.packet);
    });
  }
}

/** The property blocks of a packet, each with the context it appears in. */
function propertyBlocks(packet: Packet): [number, Properties][] {
  const blocks: [number, Properties][] = [];
  if ("properties" in packet && packet.properties !== undefined) {
    blocks.push([packet.type, packet.properties]);
  }
  if (packet.type === 1 && packet.will?.properties !== undefined) {
    blocks.push([PROPERTY_CONTEXT.WILL, packet.will.properties]);
  }
  return blocks;
}

Deno.test("the cases cover every packet type in every version", () => {
  const missing: string[] = [];
  for (const version of [3, 4, 5] as const) {
    const last = version === 5 ? 15 : 14;
    for (let type = 1; type <= last; type++) {
      const found = CASES.some((c) => c.packet.type === type && c.versions.includes(version));
      if (!found) missing.push(`type ${type} in ${versionLabel(version)}`);
    }
  }
  assert.deepStrictEqual(missing, []);
});

Deno.test("the cases cover every v5 property in every packet it is allowed in", () => {
  const seen = new Set<string>();
  for (const c of CASES) {
    if (!c.versions.includes(5)) continue;
    for (const [context, props] of propertyBlocks(c.packet)) {
      for (const key of Object.keys(props)) seen.add(`${key}@${context}`);
    }
  }
  const missing: string[] = [];
  for (const spec of PROPERTIES) {
    for (const [name, context] of Object.entries(PROPERTY_CONTEXT)) {
      if ((spec.contexts & (1 << context)) !== 0 && !seen.has(`${spec.key}@${context}`)) {
        missing.push(`${spec.key} in ${name}`);
      }
    }
  }
  assert.deepStrictEqual(missing, []);
});

Deno.test("encode() leaves out what 3.1.1 cannot carry: properties, reason codes, subscription options", () => {
  const props: Properties = { reasonString: "r", userProperties: [["k", "v"]] };
  assert.deepStrictEqual(
    encode({ type: 3, topic: "a", payload: text("p"), qos: 0, retain: false, dup: false, properties: {} }, 4),
    Uint8Array.of(0x30, 4, 0, 1, 0x61, 0x70),
  );
  assert.deepStrictEqual(
    encode({ type: 4, packetId: 1, reasonCode: 0x10, properties: props }, 4),
    Uint8Array.of(0x40, 2, 0, 1),
  );
  assert.deepStrictEqual(
    encode({ type: 14, reasonCode: 0x04, properties: props }, 4),
    Uint8Array.of(0xe0, 0),
  );
  assert.deepStrictEqual(
    encode({ type: 2, sessionPresent: false, reasonCode: 0, properties: props }, 4),
    Uint8Array.of(0x20, 2, 0, 0),
  );
  assert.deepStrictEqual(
    encode({ type: 11, packetId: 2, reasonCodes: [0x11], properties: props }, 4),
    Uint8Array.of(0xb0, 2, 0, 2),
  );
  assert.deepStrictEqual(
    encode({
      type: 8,
      packetId: 3,
      subscriptions: [{ filter: "f", qos: 1, noLocal: true, retainAsPublished: true, retainHandling: 2 }],
      properties: props,
    }, 4),
    Uint8Array.of(0x82, 6, 0, 3, 0, 1, 0x66, 0x01),
  );
});

Deno.test("encode() writes a CONNECT for its own protocolVersion, whatever the version argument", () => {
  const connect: Packet = { type: 1, protocolVersion: 3, clientId: "c", cleanStart: true, keepAlive: 0 };
  assert.deepStrictEqual(encode(connect, 5), encode(connect, 3));
  assert.equal(encode(connect, 5)[10], 3); // protocol level, after the header and "MQIsdp"
});

Deno.test("decode() returns the payload as a view of the input, not a copy", () => {
  const bytes = Uint8Array.of(0x30, 4, 0, 1, 0x61, 0x70);
  const packet = decode(bytes, 4);
  assert.equal(packet.type, 3);
  if (packet.type !== 3) return;
  assert.equal(packet.payload.buffer, bytes.buffer);
  assert.equal(packet.payload.byteOffset, 5);
});

Deno.test("patchPublish() writes the packet identifier and DUP into a copy of an encoded PUBLISH", () => {
  const shared = encodePublish({
    type: 3,
    topic: "a/b",
    payload: text("x"),
    qos: 1,
    retain: false,
    dup: false,
  }, 5);
  const offset = publishPacketIdOffset(shared);
  assert.equal(offset, 7); // header, length, topic (2 + 3)
  assert.deepStrictEqual([...shared.subarray(offset, offset + 2)], [0, 0]); // placeholder
  const target = new Uint8Array(shared.length + 3);
  target.set(shared, 3);
  patchPublish(target, 3, offset, 0x1234, true);
  assert.deepStrictEqual(decode(target.subarray(3), 5), {
    type: 3,
    topic: "a/b",
    payload: text("x"),
    qos: 1,
    retain: false,
    dup: true,
    packetId: 0x1234,
  });
});

Deno.test("utf8Length() agrees with TextEncoder, lone surrogates included", () => {
  for (
    const s of ["", "abc", "é", "✓", "😀", "a\ud800b", "\udc00", "x\ud83d", "\ufeff", "\u07ff\u0800\uffff"]
  ) {
    assert.equal(utf8Length(s), new TextEncoder().encode(s).length, JSON.stringify(s));
  }
});

Deno.test("encode() returns packets that never share bytes, though small ones share a slab", () => {
  const packets = Array.from(
    { length: 600 },
    (_, i) => encode({ type: 4, packetId: i + 1, reasonCode: 0 }, 4),
  );
  for (const p of packets) p[1] = 0xff; // scribbling on one packet must not touch another
  packets.forEach((p, i) => assert.deepStrictEqual([...p], [0x40, 0xff, (i + 1) >> 8, (i + 1) & 0xff]));
  const large = encode({
    type: 3,
    topic: "t",
    payload: new Uint8Array(2000),
    qos: 0,
    retain: false,
    dup: false,
  }, 4);
  assert.equal(large.byteOffset, 0);
  assert.equal(large.buffer.byteLength, large.length); // large packets get their own buffer
});

Deno.test("decode() copies binary properties, so Correlation Data outlives the frame it came in", () => {
  const bytes = encode({
    type: 3,
    topic: "t",
    payload: text("p"),
    qos: 0,
    retain: false,
    dup: false,
    properties: { correlationData: Uint8Array.of(1, 2, 3) },
  }, 5);
  const packet = decode(bytes, 5);
  bytes.fill(0); // the framer reuses its buffer for the next reads
  assert.equal(packet.type, 3);
  if (packet.type !== 3) return;
  assert.deepStrictEqual(packet.properties?.correlationData, Uint8Array.of(1, 2, 3));
  assert.deepStrictEqual(packet.payload, Uint8Array.of(0)); // the payload is a view, by design
});
