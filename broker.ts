/**
 * `deno task broker`: starts an MQTT broker. Parses flags, prints, wires lib/ together; nothing else.
 *
 * @module
 */

import { parseArgs } from "./cli/_parse_args.ts";
import { resolvePath } from "./lib/broker/server/paths.ts";
import type { AclFile } from "./lib/broker/auth/acl_file.ts";
import { ANONYMOUS_AUTHENTICATOR } from "./lib/broker/auth/auth.ts";
import { Broker, BROKER_VERSION, type BrokerOptions } from "./lib/broker/broker.ts";
import { type BrokerConfig, brokerOptions, listenerOptions, loadConfig } from "./lib/broker/server/config.ts";
import {
  certificateIdentity,
  ListenerError,
  type ListenerOptions,
  type RunningListeners,
  startListeners,
} from "./lib/broker/server/listeners.ts";
import {
  leveledLogger,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
  logLineWriter,
} from "./lib/broker/logger.ts";
import type { PasswordFile } from "./lib/broker/auth/password_file.ts";
import { parsePeerFlag, type PeerConfig, redisUrlProblem } from "./lib/cluster/config.ts";
import type { ClusterOptions } from "./lib/cluster/node.ts";
import type { ScramFile } from "./lib/broker/auth/scram_file.ts";
import type { AdminPlan } from "./lib/admin/setup.ts";
import { adminSectionOf, namedAsInFile } from "./lib/admin/config.ts";
import { countReload } from "./lib/broker/counters.ts";
import type { RunningAdmin } from "./lib/admin/server.ts";
import type { ReloadOutcome, ReloadResult } from "./lib/admin/routes.ts";

const USAGE = `Usage: deno task broker [options]

Starts an MQTT 3.1 / 3.1.1 / 5.0 broker. With no options it listens on
127.0.0.1:1883.

Options:
  -c, --config FILE        JSON config: listeners (tcp, tls, ws, wss; http
                           and https for the admin API), persistence,
                           passwordFile, aclFile, scramFile, admin, limits
                           (see broker.example.json); the flags below
                           override it
  --host HOST              address of the TCP listener (default 127.0.0.1)
  -p, --port PORT          port of the TCP listener (default 1883; 0 picks
                           a free port and prints it)
  --reuse-port             the TCP listener shares its port with other
                           brokers (SO_REUSEPORT: Linux spreads the
                           connections; with --cluster, README: Cluster)
  --persistence KIND       sqlite:PATH (default sqlite:./data/broker.db) or
                           memory (nothing survives a restart)
  --cluster URL            join a cluster of brokers on Redis
                           (redis://HOST:PORT or unix:///path/to/socket);
                           sessions, retained messages and wills then live
                           in Redis, not in --persistence (README: Cluster)
  --cluster-peer HOST:PORT where this node listens for the other nodes'
                           QoS 0 (default 127.0.0.1 and a free port)
  --max-keepalive SECONDS  largest keep alive a client may use (default
                           65535; v5 clients get Server Keep Alive)
  --max-packet-size BYTES  largest packet accepted (default 1048576)
  --sys-interval SECONDS   seconds between $SYS updates, 0 for none
                           (default 10)
  --max-inflight N         outgoing QoS 1/2 messages in flight per client
                           (default 100)
  --max-queued N           QoS 1/2 messages queued per session behind the
                           window; more are dropped (default 1000; 0: no
                           limit)
  --admin-port PORT        serve the admin API and dashboard over http on
                           PORT (off by default; see README, Operations)
  --admin-host HOST        address of that listener (default 127.0.0.1)
  --log-level LEVEL        error, warn, info or debug (default info)
  -v, --verbose            the same as --log-level debug
  --log-format FORMAT      text (default) or json: one JSON object per
                           line {time, level, msg, event, ...fields}
  --version                print the version and exit
  -h, --help               show this help

Relative paths (FILE, PATH) are taken from the directory the task was
started in. \`deno task broker\` may write only under the repository's
./data; for storage elsewhere see the README (Storage).
Prints "mqtt broker listening on URL" for each listener (tcp://, tls://,
ws://, wss://) and "admin: URL" for each admin listener. SIGHUP reloads
the password, ACL, SCRAM and admin token files; SIGINT and SIGTERM stop
the broker.`;

/** Exit code for bad command-line input. */
const EXIT_USAGE = 2;

function fail(message: string): never {
  console.error(`broker: ${message}`);
  console.error("Try 'deno task broker --help'.");
  Deno.exit(EXIT_USAGE);
}

/**
 * Where a path given on the command line is: `deno task` runs in the repository root, so a relative path is
 * taken from the directory the task was started in (`INIT_CWD`, which the task may read).
 */
function fromCaller(path: string): string {
  if (Deno.permissions.querySync({ name: "env", variable: "INIT_CWD" }).state !== "granted") return path;
  const caller = Deno.env.get("INIT_CWD");
  return caller === undefined ? path : resolvePath(path, caller);
}

function integer(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    fail(`--${name} must be an integer from ${min} to ${max}, got "${value}"`);
  }
  return n;
}

async function main(args: string[]): Promise<void> {
  let values;
  try {
    // Not node:util's parseArgs: loading node:util costs every broker about 1 MiB of RSS.
    values = parseArgs(args, {
      config: { type: "string", short: "c" },
      host: { type: "string" },
      port: { type: "string", short: "p" },
      "reuse-port": { type: "boolean" },
      persistence: { type: "string" },
      cluster: { type: "string" },
      "cluster-peer": { type: "string" },
      "max-keepalive": { type: "string" },
      "max-packet-size": { type: "string" },
      "sys-interval": { type: "string" },
      "max-inflight": { type: "string" },
      "max-queued": { type: "string" },
      "admin-port": { type: "string" },
      "admin-host": { type: "string" },
      "log-level": { type: "string" },
      "log-format": { type: "string" },
      verbose: { type: "boolean", short: "v" },
      version: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    });
  } catch (error) {
    fail((error as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.version) {
    console.log(`${BROKER_VERSION} (MQTT 3.1, 3.1.1, 5.0; Deno ${Deno.version.deno})`);
    return;
  }
  if (values.verbose && values["log-level"] !== undefined) fail("-v and --log-level cannot be used together");
  let config: BrokerConfig = {};
  if (values.config !== undefined) {
    try {
      config = await loadConfig(fromCaller(values.config));
    } catch (error) {
      console.error(`broker: ${(error as Error).message}`);
      Deno.exit(EXIT_USAGE);
    }
  }
  const level = (values.verbose ? "debug" : values["log-level"] ?? config.logLevel ?? "info") as LogLevel;
  if (!LOG_LEVELS.includes(level)) {
    fail(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got "${level}"`);
  }
  let persistence = values.persistence ?? config.persistence ?? "sqlite:./data/broker.db";
  if (persistence !== "memory" && !(persistence.startsWith("sqlite:") && persistence.length > 7)) {
    fail(`--persistence must be "memory" or "sqlite:PATH", got "${persistence}"`);
  }
  if (values.persistence?.startsWith("sqlite:")) persistence = `sqlite:${fromCaller(persistence.slice(7))}`;
  const port = integer("port", values.port, 0, 65535) ?? 1883;
  const hostname = values.host ?? "127.0.0.1";
  const logFormat = (values["log-format"] ?? config.logFormat ?? "text") as LogFormat;
  if (!LOG_FORMATS.includes(logFormat)) {
    fail(`--log-format must be one of ${LOG_FORMATS.join(", ")}, got "${logFormat}"`);
  }
  const logger = leveledLogger(level, logLineWriter(logFormat, (line) => console.error(line)));
  // --cluster and the config's cluster key: checked here, the Redis client loaded only when asked for (its
  // `debug` dependency reads the environment at import).
  const clusterUrl = values.cluster ?? config.cluster?.redis;
  if (values.cluster !== undefined) {
    const problem = redisUrlProblem(values.cluster);
    if (problem !== undefined) fail(`--cluster: ${problem}`);
  }
  let peer: PeerConfig | false | undefined = config.cluster?.peer;
  if (values["cluster-peer"] !== undefined) {
    if (clusterUrl === undefined) {
      fail("--cluster-peer needs --cluster (or a cluster key in the config file)");
    }
    const parsed = parsePeerFlag(values["cluster-peer"]);
    if (typeof parsed === "string") fail(`--cluster-peer: ${parsed}`);
    peer = parsed as PeerConfig;
  }
  const options: BrokerOptions & { cluster?: ClusterOptions } = { ...brokerOptions(config), logger };
  if (clusterUrl !== undefined) {
    const { RedisClusterEngine } = await import("./lib/cluster/redis_engine.ts");
    options.cluster = {
      engine: new RedisClusterEngine({ url: clusterUrl }),
      ...(config.cluster?.node === undefined ? {} : { node: config.cluster.node }),
      ...(config.cluster?.leaseMs === undefined ? {} : { leaseMs: config.cluster.leaseMs }),
      ...(peer === undefined ? {} : { peer }),
    };
    if (values.persistence !== undefined || config.persistence !== undefined) {
      logger.warn(
        "--cluster: sessions, retained messages and wills are kept in Redis; --persistence is not used",
      );
    }
  } else if (persistence.startsWith("sqlite:")) {
    // node:sqlite is loaded only for sqlite persistence.
    const { SqlitePersistence } = await import("./lib/broker/storage/sqlite_persistence.ts");
    options.persistence = new SqlitePersistence(persistence.slice(7));
  }
  const maxKeepAlive = integer("max-keepalive", values["max-keepalive"], 1, 65535);
  if (maxKeepAlive !== undefined) options.maxKeepAlive = maxKeepAlive;
  const maxPacketSize = integer("max-packet-size", values["max-packet-size"], 16, 268_435_460);
  if (maxPacketSize !== undefined) options.maxPacketSize = maxPacketSize;
  const sysInterval = integer("sys-interval", values["sys-interval"], 0, 86_400);
  if (sysInterval !== undefined) options.sysInterval = sysInterval;
  const maxInflight = integer("max-inflight", values["max-inflight"], 1, 65535);
  if (maxInflight !== undefined) options.maxInflight = maxInflight;
  const adminPort = integer("admin-port", values["admin-port"], 0, 65535);
  const maxQueued = integer("max-queued", values["max-queued"], 0, 10_000_000);
  if (maxQueued !== undefined) options.maxQueued = maxQueued;

  let passwords: PasswordFile | undefined;
  let acl: AclFile | undefined;
  let scram: ScramFile | undefined;
  let listeners: ListenerOptions[];
  // The password and SCRAM modules (and node:crypto with them) are loaded only when the config names their file.
  const passwordModule = config.passwordFile === undefined && config.scramFile === undefined
    ? undefined
    : await import("./lib/broker/auth/password_file.ts");
  try {
    if (config.passwordFile !== undefined) {
      passwords = await passwordModule?.PasswordFile.load(config.passwordFile);
    }
    if (config.aclFile !== undefined) {
      acl = await (await import("./lib/broker/auth/acl_file.ts")).AclFile.load(config.aclFile);
    }
    if (config.scramFile !== undefined) {
      scram = await (await import("./lib/broker/auth/scram_file.ts")).ScramFile.load(config.scramFile);
    }
    listeners = namedAsInFile(await listenerOptions(config, values.config ?? ""), config); // http ones apart
  } catch (error) {
    console.error(`broker: ${(error as Error).message}`);
    Deno.exit(EXIT_USAGE);
  }
  for (const warning of acl?.warnings ?? []) logger.warn(warning);
  // A certificate's CN is the user name on listeners with useIdentityAsUsername (only they pass one). With SCRAM
  // users but no password file, a CONNECT with a user name and password is checked against no users (0x86),
  // not let in as that user.
  const checked = passwords ?? (scram === undefined ? undefined : passwordModule?.PasswordFile.parse(""));
  options.authenticator = certificateIdentity(
    checked === undefined || passwordModule === undefined
      ? ANONYMOUS_AUTHENTICATOR
      : new passwordModule.PasswordFileAuthenticator(checked),
  );
  if (scram !== undefined) {
    options.authMethods = [new (await import("./lib/broker/auth/scram.ts")).ScramSha256(scram.lookup)];
  }
  if (acl !== undefined) {
    options.authorizer = new (await import("./lib/broker/auth/acl_file.ts")).AclAuthorizer(acl, { logger });
  }
  // --host and --port set the first tcp listener (added when the config has none).
  if (values.host !== undefined || values.port !== undefined) {
    const tcp = listeners.find((l) => l.type === "tcp");
    if (tcp === undefined) listeners.unshift({ type: "tcp", name: "--host/--port", hostname, port });
    else {
      if (values.host !== undefined) tcp.hostname = values.host;
      if (values.port !== undefined) tcp.port = port;
    }
  }
  if (values["reuse-port"]) {
    let tcp = listeners.find((l) => l.type === "tcp");
    if (tcp === undefined) listeners.unshift(tcp = { type: "tcp", name: "--reuse-port", hostname, port });
    tcp.reusePort = true;
  }

  const broker = new Broker(options);
  let running: RunningListeners | undefined;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal} received, shutting down`, { event: "broker.stopping", signal });
    // The broker first: it sends every client DISCONNECT, which closing a WebSocket server would preempt.
    await broker.close();
    await running?.close();
    Deno.exit(0);
  };
  // Armed before the listeners start: Deno arms a signal listener only on a later turn of the event loop, so one
  // added after the "listening" line let a SIGINT/SIGTERM sent right after it kill the process (exit 130/143).
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  // SIGHUP too (its default action ends the process): reloads the password, ACL and SCRAM files in place, so
  // connected clients stay; a file that fails to load leaves the previous one in force.
  const files: {
    readonly what: string;
    readonly key: string;
    readonly file: PasswordFile | AclFile | ScramFile;
  }[] = [];
  if (passwords !== undefined) {
    files.push({ what: "the password file", key: "passwordFile", file: passwords });
  }
  if (acl !== undefined) files.push({ what: "the ACL file", key: "aclFile", file: acl });
  if (scram !== undefined) files.push({ what: "the SCRAM file", key: "scramFile", file: scram });
  // SIGHUP and POST /api/v1/reload do the same: this.
  let adminPlan: AdminPlan | undefined;
  const reload = async (heading: string, by: string): Promise<ReloadResult> => {
    const result: Record<string, ReloadOutcome> = {};
    // TLS and WSS listeners read their certificate and key files again (each logs its outcome).
    await running?.reloadCertificates();
    if (adminPlan !== undefined) result.admin = await adminPlan.reload();
    if (files.length === 0) {
      logger.info(
        `${heading}: nothing to reload (the config names no passwordFile, aclFile or scramFile)`,
      );
      countReload(broker.counters, result.admin === undefined || typeof result.admin === "string");
      return result;
    }
    logger.info(`${heading}: reloading ${files.map((f) => `${f.what} ${f.file.path}`).join(", ")}`);
    for (const { key, file } of files) {
      try {
        await file.reload();
        const users = key === "aclFile" ? "" : ` (${(file as PasswordFile | ScramFile).size} user(s))`;
        logger.info(`${by}: reloaded ${file.path}${users}`, { event: "config.reloaded", file: file.path });
        result[key] = "reloaded";
      } catch (error) {
        logger.error(`${by}: kept the previous ${file.path}: ${(error as Error).message}`, {
          event: "config.reload_failed",
          file: file.path,
        });
        result[key] = { error: (error as Error).message };
      }
    }
    // Users no longer in the password file are disconnected; held messages are read-checked before they go out.
    broker.updateSecurity();
    logger.info(`${by}: re-checked connected clients and queued messages against the reloaded files`);
    countReload(broker.counters, Object.values(result).every((outcome) => typeof outcome === "string"));
    return result;
  };
  if (Deno.build.os !== "windows") {
    Deno.addSignalListener("SIGHUP", () => reload("SIGHUP received", "SIGHUP"));
  }
  let admin: RunningAdmin | undefined;
  try {
    // The admin HTTP server (lib/admin/): its start-up rule is checked before anything binds.
    // lib/admin/ is loaded only when an admin listener is configured: a broker without one saves its memory.
    const wantsAdmin = adminPort !== undefined || adminSectionOf(config).httpListeners.length > 0;
    adminPlan = !wantsAdmin ? undefined : await (await import("./lib/admin/setup.ts")).planAdmin(
      config,
      values.config === undefined ? undefined : fromCaller(values.config),
      {
        ...(adminPort === undefined ? {} : { port: adminPort }),
        ...(values["admin-host"] === undefined ? {} : { host: values["admin-host"] }),
      },
      passwords === undefined ? undefined : { verify: (user, password) => passwords.verify(user, password) },
    );
    running = await startListeners(broker, listeners, { passwordAuthentication: checked !== undefined });
    const mqtt = running.listeners;
    if (adminPlan !== undefined) {
      const { mqttListenerView } = await import("./lib/admin/routes.ts");
      admin = await adminPlan.start(broker, {
        mqttListeners: () => mqtt.map((l) => mqttListenerView(l)),
        reload: () => reload("reload asked for through the admin API", "reload"),
      });
    }
  } catch (error) {
    // A listener refused by the anonymous rule or unable to bind; storage that is corrupt, locked by another
    // broker or from a newer schema also stops us here.
    // JSON logs stay one object per line: the reason goes through the logger there.
    if (logFormat === "json") {
      const event = error instanceof ListenerError ? "listener.failed" : "broker.failed";
      logger.error((error as Error).message, { event });
    } else console.error(`broker: ${(error as Error).message}`);
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      console.error(
        "broker: `deno task broker` may write to the repository's ./data only; for storage elsewhere run " +
          "`deno run --no-code-cache --v8-flags=--max-semi-space-size=4 --allow-net --allow-read --allow-write=DIR broker.ts …`",
      );
    }
    await broker.close();
    Deno.exit(1);
  }
  for (const listener of running.listeners) console.log(`mqtt broker listening on ${listener.url}`);
  for (const listener of admin?.listeners ?? []) {
    const token = adminPlan?.startupToken;
    console.log(`admin: ${listener.url}/${token === undefined ? "" : `#token=${token}`}`);
  }
  logger.info(`broker started (${BROKER_VERSION}, ${running.listeners.length} listener(s))`, {
    event: "broker.started",
    version: BROKER_VERSION,
  });
}

if (import.meta.main) await main(Deno.args);
