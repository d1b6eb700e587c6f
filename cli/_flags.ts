/**
 * Flag parsing shared by `pub`, `sub` and `shell`: mosquitto_pub/mosquitto_sub-style connection flags, `-D`
 * property definitions (parsed here, since `parseArgs` cannot take 3-4 values per flag) and value checks.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import type { MqttClientOptions } from "../lib/client/options.ts";
import {
  type Connector,
  tlsConnector,
  type TlsOptions,
  unixConnector,
  webSocketConnector,
} from "../lib/client/connector.ts";
import {
  PROPERTIES,
  type Properties,
  PROPERTY_CONTEXT,
  type PropertyContext,
} from "../lib/packet/properties.ts";
import type { ProtocolVersion, QoS } from "../lib/packet/packet_type.ts";
import { callerPath } from "./_paths.ts";
import { type BrokerUrl, parseBrokerUrl } from "./_target.ts";

/** A bad command line: printed with a hint, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Exit codes of `deno task client`. */
export const EXIT = {
  /** Done. */
  OK: 0,
  /** Connection refused, not authorized, unreachable, a refused publish or subscription, a lost connection. */
  ERROR: 1,
  /** Bad flags or arguments. */
  USAGE: 2,
  /** `sub -W`: the timeout passed before `-C` messages arrived (as mosquitto_sub). */
  TIMEOUT: 27,
} as const;

/** The flags every command that connects understands. */
export const CONNECTION_FLAGS = {
  host: { type: "string", short: "h" },
  port: { type: "string", short: "p" },
  id: { type: "string", short: "i" },
  username: { type: "string", short: "u" },
  pw: { type: "string", short: "P" },
  keepalive: { type: "string", short: "k" },
  "protocol-version": { type: "string", short: "V" },
  "disable-clean-session": { type: "boolean", short: "c" },
  "session-expiry": { type: "string", short: "x" },
  "will-topic": { type: "string" },
  "will-payload": { type: "string" },
  "will-qos": { type: "string" },
  "will-retain": { type: "boolean" },
  url: { type: "string", short: "L" },
  unix: { type: "string" },
  tls: { type: "boolean" },
  cafile: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  insecure: { type: "boolean" },
  trace: { type: "boolean" },
  debug: { type: "boolean", short: "d" },
  help: { type: "boolean" },
  version: { type: "boolean" },
} as const satisfies ParseArgsOptionsConfig;

/** What `-D` can define a property on (mosquitto's command names). */
const DEFINE_CONTEXTS = {
  connect: PROPERTY_CONTEXT.CONNECT,
  publish: PROPERTY_CONTEXT.PUBLISH,
  subscribe: PROPERTY_CONTEXT.SUBSCRIBE,
  unsubscribe: PROPERTY_CONTEXT.UNSUBSCRIBE,
  disconnect: PROPERTY_CONTEXT.DISCONNECT,
  will: PROPERTY_CONTEXT.WILL,
} as const;

/** A `-D` command name. */
export type DefineCommand = keyof typeof DEFINE_CONTEXTS;

/** Properties defined with `-D`, per command. */
export type Defines = Partial<Record<DefineCommand, Properties>>;

/** Properties the client manages itself, so `-D` may not set them. */
const MANAGED: ReadonlySet<keyof Properties> = new Set(["topicAlias"]);

type MutableProperties = { -readonly [K in keyof Properties]: Properties[K] };

/** `user-property` to `userProperties`, `subscription-identifier` to `subscriptionIdentifiers`, etc. */
function propertyKey(name: string): keyof Properties | undefined {
  if (name === "user-property") return "userProperties";
  if (name === "subscription-identifier") return "subscriptionIdentifiers";
  const camel = name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  return PROPERTIES.some((spec) => spec.key === camel) ? camel as keyof Properties : undefined;
}

/**
 * Takes every `-D command identifier value [value]` out of `args` (`user-property` takes a name and a value) and
 * checks each against the property table: the property must exist, be allowed in that packet, and its value fit
 * its type.
 * @throws {UsageError}
 */
export function extractDefines(args: readonly string[]): { rest: string[]; defines: Defines } {
  const rest: string[] = [];
  const defines: Record<string, MutableProperties> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg !== "-D" && arg !== "--property") {
      rest.push(arg);
      continue;
    }
    const [command, name] = [args[i + 1], args[i + 2]];
    if (command === undefined || name === undefined) {
      throw new UsageError(
        "-D needs a command, a property name and a value, e.g. -D publish content-type text/plain",
      );
    }
    if (!(command in DEFINE_CONTEXTS)) {
      throw new UsageError(`-D: unknown command "${command}" (${Object.keys(DEFINE_CONTEXTS).join(", ")})`);
    }
    const context: PropertyContext = DEFINE_CONTEXTS[command as DefineCommand];
    const key = propertyKey(name);
    const spec = PROPERTIES.find((s) => s.key === key);
    if (key === undefined || spec === undefined) throw new UsageError(`-D: unknown property "${name}"`);
    if ((spec.contexts & (1 << context)) === 0) {
      throw new UsageError(`-D: ${name} is not allowed in ${command}`);
    }
    if (MANAGED.has(key)) throw new UsageError(`-D: ${name} is managed by the client`);
    const arity = spec.type === "pair" ? 2 : 1;
    const values = args.slice(i + 3, i + 3 + arity);
    if (values.length < arity) throw new UsageError(`-D ${command} ${name} needs ${arity} value(s)`);
    i += 2 + arity;
    const props = defines[command] ??= {};
    const target = props as Record<string, unknown>;
    switch (spec.type) {
      case "pair":
        props.userProperties = [...props.userProperties ?? [], [values[0]!, values[1]!]];
        break;
      case "utf8":
        target[key] = values[0];
        break;
      case "binary":
        target[key] = new TextEncoder().encode(values[0]);
        break;
      case "varint":
        props.subscriptionIdentifiers = [integer(`-D ${command} ${name}`, values[0]!, 1, 268_435_455)];
        break;
      default: {
        const max = spec.type === "byte" ? 255 : spec.type === "u16" ? 65_535 : 4_294_967_295;
        target[key] = integer(`-D ${command} ${name}`, values[0]!, 0, max);
      }
    }
  }
  return { rest, defines: defines as Defines };
}

/**
 * `parseArgs` in strict mode, with its errors turned into {@linkcode UsageError}s.
 * @throws {UsageError}
 */
export function parseFlags<T extends ParseArgsOptionsConfig>(
  args: string[],
  options: T,
  allowPositionals = false,
): ReturnType<typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: boolean }>> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (error) {
    // parseArgs adds a long hint about "--" to unknown options; the first sentence says it all.
    const message = error instanceof Error ? error.message : String(error);
    throw new UsageError(message.replace(/\. To specify a positional argument.*$/s, ""));
  }
}

/**
 * An integer flag value within [min, max].
 * @throws {UsageError}
 */
export function integer(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, not "${value}"`);
  }
  return n;
}

/**
 * A QoS flag value.
 * @throws {UsageError}
 */
export function qos(flag: string, value: string | undefined): QoS {
  return value === undefined ? 0 : integer(flag, value, 0, 2) as QoS;
}

/**
 * `-V`: 31, 311, 5 or mosquitto's mqttv31, mqttv311, mqttv5 (3, 4 and 5 work too).
 * @throws {UsageError}
 */
export function protocolVersion(value: string | undefined): ProtocolVersion {
  switch (value?.toLowerCase()) {
    case undefined:
    case "5":
    case "mqttv5":
    case "50":
      return 5;
    case "311":
    case "mqttv311":
    case "4":
      return 4;
    case "31":
    case "mqttv31":
    case "3":
      return 3;
    default:
      throw new UsageError(`-V must be 31, 311 or 5 (or mqttv31, mqttv311, mqttv5), not "${value}"`);
  }
}

/** Parsed connection flags. */
export type ConnectionValues = ReturnType<typeof parseFlags<typeof CONNECTION_FLAGS>>["values"];

/** Where to connect, for messages. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
  /** How messages name it: `host:port`, a `ws(s)://` URL or a Unix socket path. */
  readonly label: string;
}

/** Why `--insecure` cannot go with `wss://` (exit 2 rather than a silent no-op). */
export const INSECURE_WSS = "--insecure does not go with wss://: Deno's WebSocket cannot skip only the " +
  "certificate host name check. Connect to a name the certificate carries, or run client.ts with " +
  "deno run --unsafely-ignore-certificate-errors=HOST (this skips every certificate check for HOST)";

/**
 * Client options from connection flags (`-L` included) and `-D connect|will` properties.
 * @throws {UsageError}
 */
export async function clientOptions(
  values: ConnectionValues,
  defines: Defines,
  fixed: Partial<MqttClientOptions> = {},
): Promise<{ options: MqttClientOptions; endpoint: Endpoint }> {
  const version = protocolVersion(values["protocol-version"]);
  const url: BrokerUrl | undefined = values.url === undefined ? undefined : parseBrokerUrl(values.url);
  if (
    url !== undefined && (values.host !== undefined || values.port !== undefined || values.unix !== undefined)
  ) {
    throw new UsageError("-L gives the host and port: leave out -h, -p and --unix");
  }
  if (values.unix !== undefined && (values.host !== undefined || values.port !== undefined)) {
    throw new UsageError("--unix replaces -h and -p: give one or the other");
  }
  const secureUrl = url?.scheme === "mqtts" || url?.scheme === "wss";
  const tls = values.tls === true || values.cafile !== undefined || values.cert !== undefined || secureUrl;
  if (url?.scheme === "mqtt" && tls) throw new UsageError("-L mqtt:// is plain TCP: use mqtts:// for TLS");
  if (url?.scheme === "ws" && tls) throw new UsageError("-L ws:// is plain WebSocket: use wss:// for TLS");
  if (values.unix !== undefined && tls) throw new UsageError("--unix does not go with TLS");
  if (values.insecure && url?.scheme === "wss") throw new UsageError(INSECURE_WSS);
  if (values.insecure && !tls) throw new UsageError("--insecure is for TLS (--tls, --cafile, mqtts://)");
  const host = url?.host ?? values.host ?? "localhost";
  const port = url?.port ??
    (values.port === undefined ? (tls ? 8883 : 1883) : integer("-p", values.port, 1, 65_535));
  const persistent = values["disable-clean-session"] === true;
  if (persistent && values.id === undefined) {
    throw new UsageError("-c needs a client id (-i): a persistent session is found again by its id");
  }
  if (values["session-expiry"] !== undefined && version !== 5) {
    throw new UsageError("-x (session expiry) needs MQTT 5 (-V 5)");
  }
  if (
    (values.pw ?? url?.password) !== undefined && (values.username ?? url?.username) === undefined &&
    version !== 5
  ) {
    throw new UsageError("-P needs -u with MQTT 3.1/3.1.1 [MQTT-3.1.2-22 (3.1.1)]");
  }
  const hasWill = values["will-topic"] !== undefined;
  if (
    !hasWill &&
    (values["will-payload"] !== undefined || values["will-qos"] !== undefined || values["will-retain"])
  ) {
    throw new UsageError("--will-payload, --will-qos and --will-retain need --will-topic");
  }
  const connectProps: MutableProperties = { ...defines.connect };
  if (version === 5 && (persistent || values["session-expiry"] !== undefined)) {
    const raw = values["session-expiry"];
    // As mosquitto: -c alone means a session that never expires; -x -1 or ∞ too.
    connectProps.sessionExpiryInterval = raw === undefined || raw === "-1" || raw === "∞"
      ? 4_294_967_295
      : integer("-x", raw, 0, 4_294_967_295);
  }
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new UsageError("--cert and --key go together (a client certificate and its private key)");
  }
  const tlsOptions: TlsOptions = {};
  if (values.cafile !== undefined) tlsOptions.caCerts = [await readPem("--cafile", values.cafile)];
  const username = values.username ?? url?.username;
  const password = values.pw ?? url?.password;
  if (values.cert !== undefined) tlsOptions.cert = await readPem("--cert", values.cert);
  if (values.key !== undefined) tlsOptions.key = await readPem("--key", values.key);
  const unixPath = values.unix === undefined ? undefined : callerPath(values.unix);
  const connect: Connector | undefined = unixPath !== undefined
    ? unixConnector(unixPath)
    : url?.webSocketUrl !== undefined
    ? webSocketConnector(url.webSocketUrl, { tls: tlsOptions })
    : values.insecure
    ? tlsConnector(host, port, { ...tlsOptions, unsafelyDisableHostnameVerification: true })
    : undefined;
  const options: MqttClientOptions = {
    hostname: host,
    port,
    protocolVersion: version,
    cleanStart: !persistent,
    keepAlive: values.keepalive === undefined ? 60 : integer("-k", values.keepalive, 0, 65_535),
    ...(tls ? { tls: Object.keys(tlsOptions).length === 0 ? true : tlsOptions } : {}),
    ...(connect === undefined ? {} : { connect }),
    ...(values.id === undefined ? {} : { clientId: values.id }),
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(hasWill
      ? {
        will: {
          topic: values["will-topic"]!,
          payload: values["will-payload"] ?? "",
          qos: qos("--will-qos", values["will-qos"]),
          retain: values["will-retain"] === true,
          ...(defines.will === undefined ? {} : { properties: defines.will }),
        },
      }
      : {}),
    ...(Object.keys(connectProps).length === 0 ? {} : { properties: connectProps }),
    ...fixed,
  };
  if (version !== 5 && Object.keys(defines).length > 0) {
    throw new UsageError("-D (properties) needs MQTT 5 (-V 5)");
  }
  const label = unixPath ?? url?.webSocketUrl ?? `${host}:${port}`;
  return { options, endpoint: { host, port, label } };
}

/** Reads a PEM file named by `flag` (relative to the caller's directory). @throws {UsageError} */
async function readPem(flag: string, path: string): Promise<string> {
  return new TextDecoder().decode(await readInputFile(flag, path));
}

/**
 * Reads a file named on the command line, relative to the caller's directory (`INIT_CWD` under `deno task`).
 * @throws {UsageError} when it cannot be read.
 */
export async function readInputFile(flag: string, path: string): Promise<Uint8Array> {
  const resolved = callerPath(path);
  try {
    return await Deno.readFile(resolved);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new UsageError(`${flag}: cannot read ${path}${resolved === path ? "" : ` (${resolved})`}: ${why}`);
  }
}

/** The connection flags as help text (each line fits 80 columns). */
export const CONNECTION_HELP = `Connection:
  -h, --host HOST           broker host (default localhost)
  -p, --port PORT           broker port (default 1883, 8883 with TLS)
  -L, --url URL             mqtt[s]://[USER[:PASS]@]HOST[:PORT]/TOPIC, or
                            ws[s]://[USER[:PASS]@]HOST[:PORT][/PATH] (default
                            path /mqtt; give the topic with -t)
  --unix PATH               a Unix socket instead of TCP (Deno needs
                            --allow-write=PATH for it)
  -V, --protocol-version V  31, 311 or 5 (also mqttv31, mqttv311, mqttv5;
                            default 5)
  -i, --id ID               client id (default deno-<random>)
  -u, --username USER       user name
  -P, --pw PASS             password
  -k, --keepalive SECONDS   keep alive (default 60, 0 = off)
  -c, --disable-clean-session
                            persistent session (needs -i; with v5 it never
                            expires unless -x)
  -x, --session-expiry S    v5 session expiry interval in seconds (-1 = never)
  --will-topic T [--will-payload P] [--will-qos Q] [--will-retain]
  --tls                     TLS (default port 8883)
  --cafile FILE             PEM CA to trust besides the system's
  --cert FILE --key FILE    PEM client certificate and key
  --insecure                do not check the certificate's host name (the chain
                            is still checked; not with wss://)
  -D, --property CMD NAME VALUE
                            v5 property, e.g. -D connect session-expiry-interval
                            60 or -D publish user-property KEY VALUE (CMD:
                            connect publish subscribe unsubscribe disconnect
                            will)
  -d, --debug, --trace      print every packet sent and received on stderr
  --help, --version         this text; the version

Relative file names (--cafile, --cert, --key, -f, --unix) are read from the
directory deno task was started in.`;
