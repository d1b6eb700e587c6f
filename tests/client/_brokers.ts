/**
 * The brokers the client library suite runs against: Mosquitto (when installed and `--allow-run` is granted)
 * and ours. Every library test is registered once per target.
 *
 * @module
 */

import { Broker } from "../../lib/broker/broker.ts";
import { type MosquittoOptions, mosquittoUnavailable, startMosquitto } from "./_mosquitto.ts";

/** A running broker for one test. */
export interface RunningBroker {
  readonly port: number;
  stop(): Promise<void>;
}

/** A broker the suite can run against. */
export interface BrokerTarget {
  readonly name: "mosquitto" | "ours";
  /** Why it cannot run here (the test is registered as ignored and says so), or undefined. */
  readonly unavailable: string | undefined;
  start(options?: MosquittoOptions): Promise<RunningBroker>;
}

/** Every target, available or not. */
export const BROKERS: readonly BrokerTarget[] = [
  {
    name: "mosquitto",
    unavailable: mosquittoUnavailable(),
    async start(options) {
      const handle = await startMosquitto(options);
      if (handle === undefined) throw new Error("mosquitto is not available");
      return handle;
    },
  },
  {
    name: "ours",
    unavailable: undefined,
    async start() {
      const broker = new Broker();
      const { port } = await broker.listen({ hostname: "127.0.0.1", port: 0 });
      return { port, stop: () => broker.close() };
    },
  },
];

/** Registers `fn` once per broker, ignored (with the reason in its name) where that broker cannot run. */
export function brokerTest(
  name: string,
  fn: (broker: RunningBroker, target: BrokerTarget) => Promise<void>,
  options: MosquittoOptions = {},
): void {
  for (const target of BROKERS) {
    const reason = target.unavailable;
    Deno.test({
      name: `[${target.name}] ${name}${reason === undefined ? "" : ` (skipped: ${reason})`}`,
      ignore: reason !== undefined,
      async fn() {
        const broker = await target.start(options);
        try {
          await fn(broker, target);
        } finally {
          await broker.stop();
        }
      },
    });
  }
}
