/**
 * From a validated config to what the broker runs with: {@linkcode brokerOptions} for the limits and switches,
 * {@linkcode listenerOptions} for the listeners, whose certificate files it reads. Apart from the validation
 * (`config_parse.ts`) because it is the one step that knows the shape of {@linkcode BrokerOptions} and
 * {@linkcode ListenerOptions}.
 *
 * @module
 */

import type { BrokerOptions } from "../options.ts";
import { DEFAULT_WEBSOCKET_PATH, type ListenerOptions } from "./listeners.ts";
import { type BrokerConfig, ConfigError, type DirectLimit, SWITCHES } from "./config_schema.ts";

/**
 * The broker options a config sets (limits, `sysInterval` and the feature switches); the caller adds logger,
 * storage and auth.
 */
export function brokerOptions(config: BrokerConfig): BrokerOptions {
  const { maxTopicLength, maxTopicDepth, ...limits } = config.limits ?? {};
  const direct: Pick<BrokerOptions, DirectLimit> = limits;
  const options: BrokerOptions = { ...direct };
  if (config.sysInterval !== undefined) options.sysInterval = config.sysInterval;
  for (const key of SWITCHES) {
    const value = config[key];
    if (value !== undefined) options[key] = value;
  }
  if (config.maxQoS !== undefined) options.maxQoS = config.maxQoS;
  if (config.responseInformation !== undefined) options.responseInformation = config.responseInformation;
  if (maxTopicLength !== undefined || maxTopicDepth !== undefined) {
    // The one not set keeps its BrokerOptions default.
    options.topicLimits = {
      maxLength: maxTopicLength ?? 65535,
      maxDepth: maxTopicDepth ?? 128,
    };
  }
  return options;
}

/**
 * The listeners a config describes, with their certificate files read. `source` names the config file in
 * errors: `broker.json: listeners[1].cert: cannot read /etc/mqtt/server.crt: No such file or directory`.
 */
export async function listenerOptions(config: BrokerConfig, source: string): Promise<ListenerOptions[]> {
  if (config.listeners === undefined) return [{ type: "tcp", name: "the default tcp listener", port: 1883 }];
  const listeners = config.listeners;
  const read = async (file: string, at: string): Promise<string> => {
    try {
      return await Deno.readTextFile(file);
    } catch (error) {
      throw new ConfigError(`${source}: ${at}: cannot read ${file}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  };
  return await Promise.all(listeners.map(async (l, i): Promise<ListenerOptions> => {
    const at = `listeners[${i}]`;
    const base = {
      name: at,
      hostname: l.host ?? "127.0.0.1",
      port: l.port,
      ...(l.allowAnonymous === undefined ? {} : { allowAnonymous: l.allowAnonymous }),
      ...(l.reusePort === undefined ? {} : { reusePort: l.reusePort }),
    };
    switch (l.type) {
      case "tcp":
        return { ...base, type: "tcp" };
      case "ws":
        return { ...base, type: "ws", path: l.path ?? DEFAULT_WEBSOCKET_PATH };
      case "tls":
      case "wss": {
        const cert = await read(l.cert!, `${at}.cert`);
        const key = await read(l.key!, `${at}.key`);
        // The file names too, so SIGHUP can read them again (RunningListeners.reloadCertificates).
        const files = { certFile: l.cert!, keyFile: l.key! };
        if (l.type === "wss") {
          return { ...base, type: "wss", path: l.path ?? DEFAULT_WEBSOCKET_PATH, cert, key, ...files };
        }
        return {
          ...base,
          type: "tls",
          cert,
          key,
          ...files,
          ...(l.ca === undefined ? {} : { ca: await read(l.ca, `${at}.ca`) }),
          ...(l.requireCertificate === undefined ? {} : { requireCertificate: l.requireCertificate }),
          ...(l.useIdentityAsUsername === undefined
            ? {}
            : { useIdentityAsUsername: l.useIdentityAsUsername }),
        };
      }
    }
  }));
}
