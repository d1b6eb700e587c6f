/**
 * Our broker with its TCP listeners on `node:net` (`acceptTcp`, `transport/net.ts`) instead of `Deno.Conn`: the
 * load benchmark's `ours-net` peer, so that what the transport changes is measured in the same run as `ours`.
 * Settings as the benchmark gives `broker.ts`: in memory, `--max-inflight 65535 --max-queued 0`, no $SYS, errors
 * logged only, no per-address connection cap.
 *
 * Run alone: `deno run --allow-net bench/_ours_net.ts [LISTENERS]` (prints `listening on 127.0.0.1:PORT` for
 * each of LISTENERS listeners, default 1).
 *
 * @module
 */

import { Broker } from "../lib/broker/broker.ts";
import { leveledLogger } from "../lib/broker/logger.ts";
import { acceptTcp } from "../lib/broker/server/accept_loop.ts";

/**
 * Our broker, not yet started, with the settings the load benchmark gives `broker.ts` (see the module doc); also
 * the broker of `_idle_probe_broker.ts`.
 */
export function benchBroker(): Broker {
  return new Broker({
    logger: leveledLogger("error", (_level, message) => console.error(message)),
    sysInterval: 0,
    maxInflight: 65535,
    maxQueued: 0,
    maxConnectionsPerAddress: 10_000_000,
  });
}

if (import.meta.main) {
  const count = Math.max(1, Number(Deno.args[0] ?? 1));
  const broker = benchBroker();
  await broker.start();
  for (let i = 0; i < count; i++) {
    const loop = await acceptTcp(broker, { hostname: "127.0.0.1", port: 0 }, {
      name: `tcp listener ${i}`,
      allowAnonymous: true,
    });
    console.log(`listening on 127.0.0.1:${loop.addr.port}`);
  }
  Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
}
