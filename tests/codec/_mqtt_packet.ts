/**
 * mqtt-packet, the peer codec the oracle test compares against, loaded so that `deno test --allow-net` is
 * enough: its dependencies (readable-stream, debug) read `process.env` while they load, which would need
 * `--allow-env`. Without that permission they see an empty environment, only while loading.
 *
 * @module
 */

import process from "node:process";
import type * as MqttPacketModule from "mqtt-packet";

/** The part of mqtt-packet the tests use. */
export type MqttPacketApi = Pick<typeof MqttPacketModule, "generate" | "parser">;

async function load(): Promise<MqttPacketApi> {
  if (Deno.permissions.querySync({ name: "env" }).state === "granted") {
    return (await import("mqtt-packet")).default;
  }
  const env = Object.getOwnPropertyDescriptor(process, "env");
  Object.defineProperty(process, "env", { value: {}, configurable: true, writable: true });
  try {
    return (await import("mqtt-packet")).default;
  } finally {
    if (env !== undefined) Object.defineProperty(process, "env", env);
  }
}

/** The mqtt-packet module (`generate`, `parser`). */
export const mqttPacket: MqttPacketApi = await load();
