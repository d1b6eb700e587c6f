/**
 * The broker's JSON config file (`deno task broker --config broker.json`): {@linkcode loadConfig} reads one,
 * validates it and resolves its relative paths. `broker.example.json` at the repository root shows every key.
 * The steps live beside this file and are re-exported here, so the broker and `lib/mod.ts` import one module:
 * the schema as types (`config_schema.ts`), the validator (`config_parse.ts`) and the mapping to broker and
 * listener options (`config_options.ts`).
 *
 * @module
 */

import { directoryOf, isAbsolutePath, resolvePath } from "./paths.ts";
import { type BrokerConfig, ConfigError } from "./config_schema.ts";
import { parseConfig } from "./config_parse.ts";

export {
  type BrokerConfig,
  ConfigError,
  type DirectLimit,
  type LimitsConfig,
  type ListenerConfig,
} from "./config_schema.ts";
export { LIMIT_RANGES, parseConfig } from "./config_parse.ts";
export { brokerOptions, listenerOptions } from "./config_options.ts";

/**
 * Reads and validates a config file, resolving its relative file paths (certificates, password and ACL files,
 * the SQLite database) against the directory that holds it.
 */
export async function loadConfig(path: string): Promise<BrokerConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError(`${path}: cannot read the config file: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const config = parseConfig(text, path);
  const base = directoryOf(resolvePath(path));
  const at = (file: string) => isAbsolutePath(file) ? file : resolvePath(file, base);
  if (config.passwordFile !== undefined) config.passwordFile = at(config.passwordFile);
  if (config.aclFile !== undefined) config.aclFile = at(config.aclFile);
  if (config.scramFile !== undefined) config.scramFile = at(config.scramFile);
  if (config.persistence?.startsWith("sqlite:")) {
    config.persistence = `sqlite:${at(config.persistence.slice(7))}`;
  }
  for (const listener of config.listeners ?? []) {
    for (const key of ["cert", "key", "ca"] as const) {
      const file = listener[key];
      if (file !== undefined) listener[key] = at(file);
    }
  }
  return config;
}
