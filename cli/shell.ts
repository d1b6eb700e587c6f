/**
 * `deno task client shell`: an interactive MQTT session. Every packet from the server is printed as it arrives;
 * on a terminal the prompt and the half-typed line are redrawn under it. From a pipe, lines run in order, each
 * after the previous command's acknowledgement, and at the end of input the shell waits briefly for incoming
 * messages, disconnects and exits.
 *
 * @module
 */

import * as readline from "node:readline";
import process from "node:process";
import { MqttClient } from "../lib/client/client.ts";
import type { Packet } from "../lib/packet/packet.ts";
import type { ProtocolVersion, QoS } from "../lib/packet/packet_type.ts";
import { readCommandLine, usageFailure } from "./_command.ts";
import {
  clientOptions,
  CONNECTION_FLAGS,
  CONNECTION_HELP,
  type Endpoint,
  EXIT,
  extractDefines,
  integer,
  parseFlags,
  qos,
  UsageError,
} from "./_flags.ts";
import { describeError, formatPacket } from "./_format.ts";
import { readLines, writeOut } from "./_io.ts";

/** The flags of `shell`. */
export const SHELL_FLAGS = {
  ...CONNECTION_FLAGS,
  "no-connect": { type: "boolean" },
  reconnect: { type: "boolean" },
} as const;

/** Usage of `shell`. */
export const SHELL_HELP = `Usage: deno task client shell [connection flags] [--no-connect]

An interactive session: connects with the flags (unless --no-connect), then
reads commands. Every packet the server sends is printed as it arrives ("<-");
with --trace the packets sent are printed too ("->"). From a pipe
  printf 'sub a/#\\npub a/b hi\\n' | deno task client shell
commands run in order, each waiting for its acknowledgement; at the end of
input the shell waits briefly for messages, disconnects and exits (0, or 1 if
a command failed). Type "help" for the commands.

  --no-connect              start without connecting (use "connect")
  --reconnect               reconnect automatically when the connection is lost

${CONNECTION_HELP}`;

/** The shell's commands: usage, then what it does (printed under the usage when both do not fit 80 columns). */
const COMMAND_HELP: readonly (readonly [string, string])[] = [
  ["connect [flags]", "connect (command-line flags; they add to the shell's own)"],
  ["sub [-q Q] [--nl] [--rap] [--rh 0|1|2] [--sid N] FILTER...", "subscribe; prints the SUBACK"],
  ["unsub FILTER...", "unsubscribe; prints the UNSUBACK"],
  ["pub [-q Q] [-r] [-D publish NAME VALUE] TOPIC [PAYLOAD...]", 'publish (keep spaces: pub a "x  y")'],
  ["ping", "send PINGREQ and print the round-trip time"],
  ["status", "connection, subscriptions, counters, the server's limits"],
  ["disconnect [REASON]", "send DISCONNECT (v5 reason code; 4 = send the will)"],
  ["help", "this list"],
  ["quit", "disconnect and leave (also Ctrl-D, Ctrl-C)"],
];

/** The `help` lines: `usage  text` in two columns, or the text on its own line under a long usage. */
export function commandHelp(width = 80): string[] {
  const column = 18;
  const lines: string[] = [];
  for (const [usage, text] of COMMAND_HELP) {
    const line = `  ${usage.padEnd(column)}  ${text}`;
    if (line.length <= width) lines.push(line);
    else lines.push(`  ${usage}`, `  ${" ".repeat(column)}  ${text}`);
  }
  return lines;
}

/**
 * Splits a command line into words: blanks separate, "double" and 'single' quotes group, a backslash escapes the
 * next character (outside single quotes).
 * @throws {UsageError} for an unterminated quote.
 */
export function tokenize(line: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"' && i + 1 < line.length) word += line[++i];
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (c === " " || c === "\t") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote !== undefined) throw new UsageError(`unterminated ${quote} quote`);
  if (inWord) words.push(word);
  return words;
}

interface Session {
  readonly client: MqttClient;
  readonly endpoint: Endpoint;
  readonly version: ProtocolVersion;
}

/** A command that failed: printed as `error: …`. */
class CommandError extends Error {}

const VERSION_NAMES: Record<ProtocolVersion, string> = { 3: "MQTT 3.1", 4: "MQTT 3.1.1", 5: "MQTT 5.0" };

/** The session and its commands, independent of where lines come from and output goes. */
class Shell {
  #print: (line: string) => void;
  #baseArgs: readonly string[];
  #session: Session | undefined;
  /** Where the last connect went, so its failure names the address. */
  #lastEndpoint: Endpoint | undefined;
  /** When a packet last arrived (for the end-of-input wait). */
  lastActivity = Date.now();
  failures = 0;
  #quit = false;

  constructor(baseArgs: readonly string[], print: (line: string) => void) {
    this.#baseArgs = baseArgs;
    this.#print = print;
  }

  get wantsQuit(): boolean {
    return this.#quit;
  }

  /** Runs one command line, printing its outcome; never throws. */
  async run(line: string): Promise<void> {
    let words: string[];
    try {
      words = tokenize(line.trim());
    } catch (error) {
      this.#fail(error);
      return;
    }
    const [command, ...args] = words;
    if (command === undefined || command.startsWith("#")) return;
    try {
      switch (command) {
        case "connect":
          await this.connect(args);
          return;
        case "sub":
        case "subscribe":
          await this.#subscribe(args);
          return;
        case "unsub":
        case "unsubscribe":
          await this.#unsubscribe(args);
          return;
        case "pub":
        case "publish":
          await this.#publish(args);
          return;
        case "ping": {
          const rtt = await this.#connected().client.ping();
          this.#print(`ping: ${rtt} ms`);
          return;
        }
        case "status":
          this.#status();
          return;
        case "disconnect":
          await this.#disconnect(args);
          return;
        case "help":
        case "?":
          this.#help();
          return;
        case "quit":
        case "exit":
          this.#quit = true;
          return;
        default:
          throw new CommandError(`unknown command "${command}" (type help)`);
      }
    } catch (error) {
      this.#fail(error);
    }
  }

  #fail(error: unknown): void {
    this.failures++;
    const session = this.#session;
    const message = error instanceof CommandError || error instanceof UsageError
      ? error.message
      : describeError(error, session?.endpoint ?? this.#lastEndpoint);
    this.#print(`error: ${message}`);
  }

  #connected(): Session {
    const session = this.#session;
    if (session === undefined) throw new CommandError('not connected (use "connect")');
    return session;
  }

  /** Connects with the shell's flags plus `args`. */
  async connect(args: readonly string[]): Promise<void> {
    if (this.#session !== undefined) throw new CommandError('already connected ("disconnect" first)');
    const { rest, defines } = extractDefines([...this.#baseArgs, ...args]);
    const { values, positionals } = parseFlags(rest, SHELL_FLAGS, true);
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const trace = values.trace === true || values.debug === true;
    const { options, endpoint } = await clientOptions(values, defines, {
      reconnect: values.reconnect === true,
      onPacket: (direction, packet) => this.#onPacket(direction, packet, version, trace),
      onStateChange: (state) => {
        if (state.kind === "reconnecting") {
          this.#print(
            `connection lost (${describeError(state.error, endpoint)}); reconnecting in ${state.delayMs} ms`,
          );
        }
      },
    });
    const version = options.protocolVersion ?? 5;
    this.#lastEndpoint = endpoint;
    const client = new MqttClient(options);
    const session: Session = { client, endpoint, version };
    await client.connect();
    this.#session = session;
    this.#print(
      `connected to ${endpoint.label} as ${client.clientId} (${VERSION_NAMES[version]})`,
    );
    // Take every message so QoS 1/2 are acknowledged; the packet observer printed them.
    (async () => {
      for await (const _ of client.messages()) { /* printed as packets */ }
    })().catch(() => {});
    client.closed.then((error) => {
      if (this.#session !== session) return;
      this.#session = undefined;
      this.#print(
        error === undefined ? "disconnected" : `connection closed: ${describeError(error, endpoint)}`,
      );
    });
  }

  #onPacket(direction: "in" | "out", packet: Packet, version: ProtocolVersion, trace: boolean): void {
    if (direction === "in") {
      this.lastActivity = Date.now();
      this.#print(`<- ${formatPacket(packet, version)}`);
    } else if (trace) {
      this.#print(`-> ${formatPacket(packet, version)}`);
    }
  }

  async #subscribe(args: readonly string[]): Promise<void> {
    const session = this.#connected();
    const { values, positionals } = parseFlags([...args], {
      qos: { type: "string", short: "q" },
      nl: { type: "boolean" },
      rap: { type: "boolean" },
      rh: { type: "string" },
      sid: { type: "string" },
    }, true);
    if (positionals.length === 0) {
      throw new UsageError("usage: sub [-q Q] [--nl] [--rap] [--rh 0|1|2] [--sid N] FILTER...");
    }
    const result = await session.client.subscribe(positionals, {
      qos: qos("-q", values.qos),
      noLocal: values.nl === true,
      retainAsPublished: values.rap === true,
      retainHandling: (values.rh === undefined ? 0 : integer("--rh", values.rh, 0, 2)) as 0 | 1 | 2,
      ...(values.sid === undefined
        ? {}
        : { subscriptionIdentifier: integer("--sid", values.sid, 1, 268_435_455) }),
    });
    if (result.reasonCodes.every((code) => code >= 0x80)) {
      throw new CommandError("the subscription was refused");
    }
  }

  async #unsubscribe(args: readonly string[]): Promise<void> {
    const session = this.#connected();
    if (args.length === 0) throw new UsageError("usage: unsub FILTER...");
    await session.client.unsubscribe(args);
  }

  async #publish(args: readonly string[]): Promise<void> {
    const session = this.#connected();
    const { rest, defines } = extractDefines(args);
    const { values, positionals } = parseFlags(rest, {
      qos: { type: "string", short: "q" },
      retain: { type: "boolean", short: "r" },
    }, true);
    const [topic, ...payload] = positionals;
    if (topic === undefined) throw new UsageError("usage: pub [-q Q] [-r] TOPIC [PAYLOAD...]");
    const level: QoS = qos("-q", values.qos);
    await session.client.publish(topic, payload.join(" "), {
      qos: level,
      retain: values.retain === true,
      ...(defines.publish === undefined ? {} : { properties: defines.publish }),
    });
  }

  #status(): void {
    const session = this.#session;
    if (session === undefined) {
      this.#print("state: not connected");
      return;
    }
    const status = session.client.status();
    const state = session.client.state;
    this.#print(
      `state: ${status.state} to ${session.endpoint.label} as ${status.clientId} (${
        VERSION_NAMES[status.protocolVersion]
      })${state.kind === "connected" ? `, keep-alive ${state.connack.keepAlive} s` : ""}`,
    );
    this.#print(
      `subscriptions: ${status.subscriptions.length === 0 ? "none" : status.subscriptions.join(", ")}`,
    );
    this.#print(
      `outgoing: ${status.inflightOut} in flight, ${status.queuedOut} queued; incoming: ${status.inflightIn} unacknowledged`,
    );
    const server = status.server;
    if (server !== undefined) {
      this.#print(
        `server: receive maximum ${server.receiveMaximum}, topic alias maximum ${server.topicAliasMaximum}, ` +
          `maximum QoS ${server.maximumQoS}, retain ${server.retainAvailable ? "yes" : "no"}` +
          (server.maximumPacketSize === undefined ? "" : `, maximum packet size ${server.maximumPacketSize}`),
      );
    }
  }

  async #disconnect(args: readonly string[]): Promise<void> {
    const session = this.#connected();
    const raw = args[0];
    const reasonCode = raw === undefined
      ? 0
      : integer("disconnect REASON", raw.startsWith("0x") ? String(parseInt(raw, 16)) : raw, 0, 255);
    this.#session = undefined;
    await session.client.close({ reasonCode });
    this.#print("disconnected");
  }

  #help(): void {
    for (const line of commandHelp()) this.#print(line);
  }

  /** Disconnects if connected. */
  async close(): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    await session?.client.close();
  }
}

/** Runs `shell` and returns the exit code. */
export async function runShell(args: string[]): Promise<number> {
  let noConnect = false;
  try {
    const line = await readCommandLine("shell", args, SHELL_FLAGS, SHELL_HELP);
    if (line === undefined) return EXIT.OK;
    noConnect = line.values["no-connect"] === true;
  } catch (error) {
    return usageFailure("shell", error);
  }
  const baseArgs = args.filter((arg) => arg !== "--no-connect");
  return Deno.stdin.isTerminal() ? await interactive(baseArgs, noConnect) : await piped(baseArgs, noConnect);
}

/** Lines from a pipe, in order; each waits for the previous command. */
async function piped(baseArgs: readonly string[], noConnect: boolean): Promise<number> {
  const shell = new Shell(baseArgs, (line) => writeOut(`${line}\n`));
  if (!noConnect) await shell.run("connect");
  for await (const line of readLines(Deno.stdin.readable)) {
    await shell.run(line);
    if (shell.wantsQuit) break;
  }
  // Wait for messages still on their way: until 300 ms pass without a packet, at most 2 s.
  const start = Date.now();
  while (Date.now() - shell.lastActivity < 300 && Date.now() - start < 2000) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await shell.close();
  return shell.failures === 0 ? EXIT.OK : EXIT.ERROR;
}

/** A terminal: readline with history and completion; incoming packets print above the prompt. */
async function interactive(baseArgs: readonly string[], noConnect: boolean): Promise<number> {
  const names = ["connect", "sub", "unsub", "pub", "ping", "status", "disconnect", "help", "quit"];
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: true,
    prompt: "mqtt> ",
    historySize: 1000,
    completer: (line: string): [string[], string] => {
      const hits = names.filter((name) => name.startsWith(line));
      return [hits.length > 0 ? hits : names, line];
    },
  });
  let prompting = false;
  const print = (line: string): void => {
    if (!prompting) {
      process.stdout.write(`${line}\n`);
      return;
    }
    // The prompt and the typed line may wrap over several rows. Go up to the prompt's first row, erase from there
    // down (ESC [J) and print the line in its place. readline's redraw then moves up as many rows as the cursor
    // was below the prompt's start, so first step down that many rows: the redraw lands right under the line.
    const rows = rl.getCursorPos().rows;
    process.stdout.write(`${rows > 0 ? `\x1b[${rows}A` : ""}\r\x1b[J${line}\n${"\n".repeat(rows)}`);
    rl.prompt(true);
  };
  const shell = new Shell(baseArgs, print);
  writeOut('MQTT shell: type "help" for commands, "quit" to leave.\n');
  if (!noConnect) await shell.run("connect");
  const ended = Promise.withResolvers<void>();
  rl.on("SIGINT", () => rl.close());
  rl.on("close", () => ended.resolve());
  const lines = (async () => {
    for await (const line of rl) {
      prompting = false;
      await shell.run(line);
      if (shell.wantsQuit) break;
      prompting = true;
      rl.prompt();
    }
  })();
  prompting = true;
  rl.prompt();
  await Promise.race([lines, ended.promise]);
  prompting = false;
  rl.close();
  process.stdout.write("\n");
  await shell.close();
  return EXIT.OK;
}
