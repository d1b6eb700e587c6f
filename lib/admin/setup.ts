/**
 * From config and flags to a running admin server, for `broker.ts`: the http listeners of the config plus
 * `--admin-port`, their certificates, the admin users and token file, the start-up rule, and the one-time token
 * of a loopback server with no credentials configured (printed as `admin: http://127.0.0.1:8088/#token=…`, as
 * Jupyter does: only the process owner sees it).
 *
 * @module
 */

import type { Broker } from "../broker/broker.ts";
import { type BrokerConfig, loadConfig } from "../broker/server/config.ts";
import { isLoopback } from "../broker/server/listeners.ts";
import { AdminAuth, type PasswordCheck } from "./auth.ts";
import { type AdminConfig, adminSectionOf, resolveAdminPaths } from "./config.ts";
import type { ClientEventRecord, ListenerView, ReloadOutcome, StatsSource } from "./routes.ts";
import { type AdminListenerOptions, checkAdminListeners, type RunningAdmin, startAdmin } from "./server.ts";
import { newToken, tokenEntry, TokenFile } from "./tokens.ts";

/** Flags that add an admin listener. */
export interface AdminFlags {
  /** `--admin-port` */
  readonly port?: number;
  /** `--admin-host` @default {"127.0.0.1"} */
  readonly host?: string;
}

/** An admin server ready to start. */
export interface AdminPlan {
  /** The one-time token of a loopback server with no credentials configured. */
  readonly startupToken: string | undefined;
  /** Starts the listeners. */
  start(
    broker: Broker,
    extra: {
      mqttListeners?: () => readonly ListenerView[];
      reload?: () => Promise<Readonly<Record<string, ReloadOutcome>>>;
      stats?: StatsSource;
      clientEvents?: (clientId: string) => readonly ClientEventRecord[];
    },
  ): Promise<RunningAdmin>;
  /** Reads the admin users (from the config file) and the token file again (SIGHUP). */
  reload(): Promise<ReloadOutcome>;
}

/**
 * The admin server `config` and `flags` ask for, or undefined when none (nothing new listens unless asked).
 * `configFile` is where relative paths are taken from; `passwords` checks admin users' passwords.
 *
 * @throws {import("../broker/server/listeners.ts").ListenerError} by the start-up rule, naming the listener;
 * {@linkcode Error} for a certificate or token file that cannot be read.
 */
export async function planAdmin(
  config: BrokerConfig,
  configFile: string | undefined,
  flags: AdminFlags,
  passwords: PasswordCheck | undefined,
): Promise<AdminPlan | undefined> {
  const section = configFile === undefined
    ? adminSectionOf(config)
    : resolveAdminPaths(adminSectionOf(config), configFile);
  const listeners: AdminListenerOptions[] = [];
  for (const l of section.httpListeners) {
    listeners.push({
      name: l.name,
      type: l.type,
      hostname: l.host ?? "127.0.0.1",
      port: l.port,
      ...(l.type === "https"
        ? { cert: await read(l.cert!, `${l.name}.cert`), key: await read(l.key!, `${l.name}.key`) }
        : {}),
      ...(l.allowAnonymous === undefined ? {} : { allowAnonymous: l.allowAnonymous }),
      ...(l.publicMetrics === undefined ? {} : { publicMetrics: l.publicMetrics }),
    });
  }
  if (flags.port !== undefined) {
    listeners.push({
      name: "--admin-port",
      type: "http",
      hostname: flags.host ?? "127.0.0.1",
      port: flags.port,
    });
  }
  if (listeners.length === 0) return undefined;
  const admin: AdminConfig = section.admin ?? {};
  const tokens = admin.tokenFile === undefined ? undefined : await TokenFile.load(admin.tokenFile);
  const users = admin.users ?? {};
  const hasCredentials = tokens !== undefined || (passwords !== undefined && Object.keys(users).length > 0);
  checkAdminListeners(listeners, hasCredentials);
  const needsToken = !hasCredentials &&
    listeners.some((l) => isLoopback(l.hostname ?? "127.0.0.1") && l.allowAnonymous !== true);
  const startupToken = needsToken ? newToken() : undefined;
  const memoryTokens = startupToken === undefined
    ? []
    : [await tokenEntry("start-up token", "admin", startupToken)];
  const auth = new AdminAuth({
    users,
    ...(passwords === undefined ? {} : { passwords }),
    ...(tokens === undefined ? {} : { tokens }),
    memoryTokens,
    ...(admin.sessionMinutes === undefined ? {} : { sessionMinutes: admin.sessionMinutes }),
  });
  return {
    startupToken,
    start: (broker, extra) =>
      startAdmin(broker, {
        listeners,
        auth,
        allowedHosts: admin.allowedHosts ?? [],
        ...extra,
      }),
    reload: async () => {
      try {
        if (configFile !== undefined) {
          auth.setUsers(adminSectionOf(await loadConfig(configFile)).admin?.users ?? {});
        }
        await auth.reloadTokens();
        return configFile === undefined && tokens === undefined ? "none" : "reloaded";
      } catch (error) {
        return { error: (error as Error).message };
      }
    },
  };
}

async function read(file: string, at: string): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch (error) {
    throw new Error(`${at}: cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
}
