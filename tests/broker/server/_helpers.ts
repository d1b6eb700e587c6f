/**
 * Shared by the listener tests: a broker with listeners that always closes, an authorizer that records who
 * did what, and an MQTT.js round trip (subscribe, publish to itself, receive).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { IClientOptions } from "mqtt";
import type { ClientIdentity } from "../../../lib/broker/auth/auth.ts";
import { Broker, type BrokerOptions } from "../../../lib/broker/broker.ts";
import {
  type ListenerOptions,
  type RunningListeners,
  startListeners,
} from "../../../lib/broker/server/listeners.ts";

/** How long a test waits for something that should happen. */
export const WAIT_MS = 5000;

/** Why MQTT.js cannot load here (its streams read the environment when loaded), or undefined when it can. */
export function mqttJsUnavailable(): string | undefined {
  return Deno.permissions.querySync({ name: "env" }).state === "granted"
    ? undefined
    : "needs --allow-env (MQTT.js)";
}

/** MQTT.js, loaded on first use so that a test file without `--allow-env` can still load and skip. */
export async function loadMqttJs(): Promise<typeof import("mqtt").default> {
  return (await import("mqtt")).default;
}

export { testIf } from "../../_permissions.ts";

/** An authorizer that allows everything and remembers the identities it saw. */
export class RecordingAuthorizer {
  readonly seen: ClientIdentity[] = [];
  canPublish(client: ClientIdentity): boolean {
    this.seen.push(client);
    return true;
  }
  canSubscribe(client: ClientIdentity): boolean {
    this.seen.push(client);
    return true;
  }
  canReceive(): boolean {
    return true;
  }
}

/** Runs `body` with a broker serving `listeners`; closes the broker, then the listeners, whatever happens. */
export async function withListeners(
  listeners: readonly ListenerOptions[],
  body: (running: RunningListeners, broker: Broker) => Promise<void>,
  options: BrokerOptions = {},
): Promise<void> {
  const broker = new Broker({ sysInterval: 0, ...options });
  let running: RunningListeners | undefined;
  try {
    running = await startListeners(broker, listeners);
    await body(running, broker);
  } finally {
    await broker.close();
    await running?.close();
  }
}

/** Rejects after `ms` unless `promise` settles first; the timer never outlives the call. */
export async function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) =>
        timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Connects MQTT.js to `url`, subscribes, publishes to itself and checks the message comes back. */
export async function mqttJsRoundTrip(url: string, options: IClientOptions = {}): Promise<void> {
  const mqtt = await loadMqttJs();
  const client = await within(
    mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: WAIT_MS, ...options }, false),
    `MQTT.js connect to ${url}`,
  );
  try {
    const received = new Promise<[string, string]>((resolve) => {
      client.on("message", (topic, payload) => resolve([topic, new TextDecoder().decode(payload)]));
    });
    await client.subscribeAsync("listeners/test", { qos: 1 });
    await client.publishAsync("listeners/test", `hello over ${url}`, { qos: 1 });
    assert.deepEqual(await within(received, "the message back"), ["listeners/test", `hello over ${url}`]);
  } finally {
    await client.endAsync();
  }
}
