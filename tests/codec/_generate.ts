/**
 * Seeded random input for the oracle, framer and fuzz tests: a small PRNG and a generator of valid packets for
 * each type and version. Every generated packet is one both our codec and mqtt-packet can encode: user property
 * names are unique within a block (mqtt-packet keeps them in an object), a password comes with a user name, an
 * MQTT 3.1 client id is not empty.
 *
 * @module
 */

import type { Packet } from "../../lib/packet/packet.ts";
import type { ProtocolVersion, QoS } from "../../lib/packet/packet_type.ts";
import {
  PROPERTIES,
  type Properties,
  PROPERTY_CONTEXT,
  type PropertyContext,
  type PropertySpec,
} from "../../lib/packet/properties.ts";
import { VALID_REASON_CODES } from "../../lib/packet/reason_code.ts";
import type { SubscriptionRequest } from "../../lib/packet/subscribe.ts";
import { mulberry32 } from "../_prng.ts";
import type { WillMessage } from "../../lib/packet/connect.ts";

/** A seeded PRNG (mulberry32): the same seed gives the same sequence on every run. */
export class Random {
  readonly #next: () => number;

  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }

  /** A float in [0, 1). */
  next(): number {
    return this.#next();
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** An integer in [min, max], at one of the bounds a third of the time (boundaries find bugs). */
  edgy(min: number, max: number): number {
    const r = this.next();
    if (r < 1 / 6) return min;
    if (r < 1 / 3) return max;
    return this.int(min, max);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.int(0, 255);
    return out;
  }

  /** A well-formed string without U+0000, up to `maxLength` code points, mixing 1- to 4-byte characters. */
  string(maxLength: number): string {
    const length = this.int(0, maxLength);
    let s = "";
    for (let i = 0; i < length; i++) {
      const r = this.next();
      if (r < 0.7) s += String.fromCharCode(this.int(0x20, 0x7e));
      else if (r < 0.8) s += this.pick(["/", "+", "#", "$"]);
      else if (r < 0.87) s += String.fromCharCode(this.int(0x80, 0x7ff));
      else if (r < 0.94) s += String.fromCharCode(this.pick([0xfeff, 0x2713, 0x4e2d, 0xe000, 0xfffd]));
      else s += String.fromCodePoint(this.int(0x10000, 0x10ffff));
    }
    return s;
  }
}

const VARINT_SIZES: readonly [number, number][] = [[1, 127], [128, 16_383], [16_384, 2_097_151], [
  2_097_152,
  268_435_455,
]];

function propertyValue(rng: Random, spec: PropertySpec, context: PropertyContext): unknown {
  switch (spec.type) {
    case "byte":
      return rng.int(0, 1);
    case "u16":
      return spec.key === "receiveMaximum" || spec.key === "topicAlias"
        ? rng.edgy(1, 65_535)
        : rng.edgy(0, 65_535);
    case "u32":
      return rng.edgy(spec.key === "maximumPacketSize" ? 1 : 0, 4_294_967_295);
    case "varint": {
      const count = context === PROPERTY_CONTEXT.PUBLISH ? rng.int(1, 3) : 1;
      return Array.from({ length: count }, () => {
        const [min, max] = rng.pick(VARINT_SIZES);
        return rng.edgy(min, max);
      });
    }
    case "utf8":
      return rng.string(12);
    case "binary":
      return rng.bytes(rng.int(0, 8));
    case "pair":
      // Unique names that are not array indexes, so a JS object keeps them in order (see oracle_test.ts).
      return Array.from({ length: rng.int(1, 3) }, (_, i) => [`n${i}${rng.string(4)}`, rng.string(6)]);
  }
}

/** Random properties for `context`, or undefined (about a third of the time, and when none was drawn). */
export function randomProperties(rng: Random, context: PropertyContext): Properties | undefined {
  if (rng.chance(0.3)) return undefined;
  const props: Record<string, unknown> = {};
  let any = false;
  for (const spec of PROPERTIES) {
    if ((spec.contexts & (1 << context)) === 0 || !rng.chance(0.35)) continue;
    if (spec.key === "authenticationData" && props.authenticationMethod === undefined) continue;
    props[spec.key] = propertyValue(rng, spec, context);
    any = true;
  }
  return any ? props as Properties : undefined;
}

function qos(rng: Random): QoS {
  return rng.int(0, 2) as QoS;
}

function packetId(rng: Random): number {
  return rng.edgy(1, 65_535);
}

function reasonCode(rng: Random, type: number): number {
  return rng.pick([...VALID_REASON_CODES[type]!]);
}

/** Adds `properties` to `packet` when defined (the decoder leaves the key out otherwise). */
function withProperties<T extends object>(packet: T, properties: Properties | undefined): T {
  return properties === undefined ? packet : { ...packet, properties };
}

/** A random valid packet of `type` (1..15) for `version`. AUTH (15) exists only in v5. */
export function randomPacket(rng: Random, type: number, version: ProtocolVersion): Packet {
  const v5 = version === 5;
  switch (type) {
    case 1: {
      const cleanStart = rng.chance(0.5);
      const clientId = version === 3 || !cleanStart ? "c" + rng.string(10) : rng.string(10);
      let will: WillMessage | undefined;
      if (rng.chance(0.5)) {
        will = withProperties({
          topic: "w" + rng.string(10),
          payload: rng.bytes(rng.int(0, 16)),
          qos: qos(rng),
          retain: rng.chance(0.5),
        }, v5 ? randomProperties(rng, PROPERTY_CONTEXT.WILL) : undefined);
      }
      const username = rng.chance(0.5) ? rng.string(8) : undefined;
      const password = username !== undefined && rng.chance(0.5) ? rng.bytes(rng.int(0, 8)) : undefined;
      return withProperties({
        type: 1,
        protocolVersion: version,
        clientId,
        cleanStart,
        keepAlive: rng.edgy(0, 65_535),
        ...(username === undefined ? {} : { username }),
        ...(password === undefined ? {} : { password }),
        ...(will === undefined ? {} : { will }),
      }, v5 ? randomProperties(rng, PROPERTY_CONTEXT.CONNECT) : undefined);
    }
    case 2: {
      const code = v5 ? reasonCode(rng, 2) : rng.int(0, 5);
      return withProperties(
        { type: 2, sessionPresent: code === 0 && rng.chance(0.5), reasonCode: code },
        v5 ? randomProperties(rng, PROPERTY_CONTEXT.CONNACK) : undefined,
      );
    }
    case 3: {
      const q = qos(rng);
      let properties = v5 ? randomProperties(rng, PROPERTY_CONTEXT.PUBLISH) : undefined;
      let topic = "t" + rng.string(16);
      if (v5 && rng.chance(0.1)) {
        topic = ""; // stands for the topic a Topic Alias maps to
        properties = { ...properties, topicAlias: rng.edgy(1, 65_535) };
      }
      const size = rng.chance(0.9)
        ? rng.int(0, 64)
        : rng.chance(0.9)
        ? rng.int(65, 400)
        : rng.int(16_000, 20_000);
      return withProperties({
        type: 3,
        topic,
        payload: rng.bytes(size),
        qos: q,
        retain: rng.chance(0.5),
        dup: q > 0 && rng.chance(0.5),
        ...(q > 0 ? { packetId: packetId(rng) } : {}),
      }, properties);
    }
    case 4:
    case 5:
    case 6:
    case 7:
      return withProperties(
        { type, packetId: packetId(rng), reasonCode: v5 ? reasonCode(rng, type) : 0 } as Packet,
        v5 ? randomProperties(rng, type as PropertyContext) : undefined,
      );
    case 8: {
      const subscriptions: SubscriptionRequest[] = Array.from({ length: rng.int(1, 4) }, () => ({
        filter: "f" + rng.string(12),
        qos: qos(rng),
        noLocal: v5 && rng.chance(0.5),
        retainAsPublished: v5 && rng.chance(0.5),
        retainHandling: v5 ? rng.int(0, 2) as 0 | 1 | 2 : 0,
      }));
      return withProperties(
        { type: 8, packetId: packetId(rng), subscriptions },
        v5 ? randomProperties(rng, PROPERTY_CONTEXT.SUBSCRIBE) : undefined,
      );
    }
    case 9: {
      const codes = v5 ? [...VALID_REASON_CODES[9]!] : [0, 1, 2, 0x80];
      return withProperties(
        {
          type: 9,
          packetId: packetId(rng),
          reasonCodes: Array.from({ length: rng.int(1, 5) }, () => rng.pick(codes)),
        },
        v5 ? randomProperties(rng, PROPERTY_CONTEXT.SUBACK) : undefined,
      );
    }
    case 10:
      return withProperties(
        {
          type: 10,
          packetId: packetId(rng),
          filters: Array.from({ length: rng.int(1, 4) }, () => "f" + rng.string(12)),
        },
        v5 ? randomProperties(rng, PROPERTY_CONTEXT.UNSUBSCRIBE) : undefined,
      );
    case 11:
      return v5
        ? withProperties(
          {
            type: 11,
            packetId: packetId(rng),
            reasonCodes: Array.from({ length: rng.int(1, 5) }, () => reasonCode(rng, 11)),
          },
          randomProperties(rng, PROPERTY_CONTEXT.UNSUBACK),
        )
        : { type: 11, packetId: packetId(rng), reasonCodes: [] };
    case 12:
      return { type: 12 };
    case 13:
      return { type: 13 };
    case 14:
      return v5
        ? withProperties(
          { type: 14, reasonCode: reasonCode(rng, 14) },
          randomProperties(rng, PROPERTY_CONTEXT.DISCONNECT),
        )
        : { type: 14, reasonCode: 0 };
    case 15:
      if (!v5) throw new RangeError("AUTH exists only in MQTT 5.0");
      return withProperties(
        { type: 15, reasonCode: reasonCode(rng, 15) },
        randomProperties(rng, PROPERTY_CONTEXT.AUTH),
      );
    default:
      throw new RangeError(`No packet type ${type}`);
  }
}

/** The packet types that exist in `version`. */
export function packetTypes(version: ProtocolVersion): number[] {
  return Array.from({ length: version === 5 ? 15 : 14 }, (_, i) => i + 1);
}
