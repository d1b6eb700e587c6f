/**
 * v5 properties as stored bytes: the property block exactly as it goes on the wire (section 2.2.2), so storing
 * them reuses the packet encoder and keeps User Property order and binary values byte for byte.
 *
 * @module
 */

import { Reader } from "../../codec/reader.ts";
import { Writer } from "../../codec/writer.ts";
import {
  PROPERTIES,
  type Properties,
  propertiesLength,
  type PropertySpec,
  writeProperties,
} from "../../packet/properties.ts";
import { varintLength } from "../../codec/varint.ts";

const BY_ID: (PropertySpec | undefined)[] = [];
for (const spec of PROPERTIES) BY_ID[spec.id] = spec;

/** Encodes `props` as a property block (length prefix included). */
export function encodeProperties(props: Properties): Uint8Array {
  const length = propertiesLength(props);
  const writer = new Writer(varintLength(length) + length);
  writeProperties(writer, props, length);
  return writer.bytes;
}

/**
 * Decodes what {@linkcode encodeProperties} wrote. Unlike the packet decoder it does not check which packet may
 * carry a property: stored properties were validated when they arrived. Binary values are copies.
 *
 * @throws {Error} when the bytes are not a property block (a corrupt row).
 */
export function decodeProperties(bytes: Uint8Array): Properties {
  const reader = new Reader(bytes, "stored properties");
  const length = reader.varint("property length");
  const end = reader.pos + length;
  if (end !== reader.end) throw new Error(`Cannot decode stored properties: length ${length} does not match`);
  const props: Record<string, unknown> = {};
  while (reader.pos < end) {
    const id = reader.varint("property identifier");
    const spec = BY_ID[id];
    if (spec === undefined) {
      throw new Error(`Cannot decode stored properties: unknown property identifier 0x${id.toString(16)}`);
    }
    const key = spec.key;
    switch (spec.type) {
      case "byte":
        props[key] = reader.u8(key);
        break;
      case "u16":
        props[key] = reader.u16(key);
        break;
      case "u32":
        props[key] = reader.u32(key);
        break;
      case "varint":
        ((props[key] ??= []) as number[]).push(reader.varint(key));
        break;
      case "utf8":
        props[key] = reader.utf8(key);
        break;
      case "binary":
        props[key] = reader.binary(key).slice();
        break;
      case "pair": {
        const name = reader.utf8(`${key} name`);
        const value = reader.utf8(`${key} value`);
        ((props[key] ??= []) as [string, string][]).push([name, value]);
        break;
      }
    }
  }
  return props as Properties;
}
