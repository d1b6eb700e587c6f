/**
 * `deno task client sub`: subscribe and print messages, as mosquitto_sub.
 *
 * @module
 */

import { MqttClient } from "../lib/client/client.ts";
import type { MqttMessage } from "../lib/client/inbox.ts";
import { MqttError } from "../lib/mqtt_error.ts";
import { reasonName } from "../lib/packet/reason_code.ts";
import { matchesFilter, validateTopicFilter } from "../lib/topic/topic.ts";
import {
  clientOptions,
  CONNECTION_FLAGS,
  CONNECTION_HELP,
  EXIT,
  extractDefines,
  integer,
  parseFlags,
  qos,
  UsageError,
} from "./_flags.ts";
import { describeError, formatMessage, jsonMessage, plainMessage, traceLine } from "./_format.ts";
import { writeErr, writeOut } from "./_io.ts";

const SUB_FLAGS = {
  ...CONNECTION_FLAGS,
  topic: { type: "string", short: "t", multiple: true },
  "filter-out": { type: "string", short: "T", multiple: true },
  qos: { type: "string", short: "q" },
  verbose: { type: "boolean", short: "v" },
  count: { type: "string", short: "C" },
  timeout: { type: "string", short: "W" },
  format: { type: "string", short: "F" },
  json: { type: "boolean" },
  "no-retain": { type: "boolean", short: "R" },
  "retained-only": { type: "boolean" },
  "no-newline": { type: "boolean", short: "N" },
} as const;

/** Usage of `sub`. */
export const SUB_HELP = `Usage: deno task client sub -t FILTER [-t FILTER ...] [options]

Subscribe:
  -t FILTER            topic filter to subscribe to (repeatable)
  -T FILTER            do not print messages whose topic matches FILTER (repeatable)
  -q 0|1|2             subscription QoS (default 0)
  -v                   print "topic payload"
  -F FORMAT            print with a format: %t topic, %p payload, %q QoS, %r retain, %l length,
                       %m packet id, %x hex payload, %j JSON, %I ISO time, %U Unix time, %% percent;
                       \\n \\t escapes
  --json               one JSON object per line: time, topic, payload (or payloadBase64), qos, retain, properties
  -N                   no newline after each message
  -C N                 exit after N messages
  -W SECONDS           exit with code 27 if the messages (-C) have not all arrived by then
  -R                   do not print stale (retained) messages
  --retained-only      print only retained messages; exit at the first live one
  -c -i ID [-x S]      persistent session

${CONNECTION_HELP}

Ctrl-C disconnects cleanly. Exit codes: 0 done, 1 connection or subscription failed, 2 bad flags, 27 -W timeout.`;

/** Runs `sub` and returns the exit code. */
export async function runSub(args: string[]): Promise<number> {
  let client: MqttClient | undefined;
  let endpoint: { host: string; port: number } | undefined;
  const stop = new AbortController();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    stop.abort("signal");
    client?.close().catch(() => {});
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const { rest, defines } = extractDefines(args);
    const { values, positionals } = parseFlags(rest, SUB_FLAGS, true);
    if (values.help) {
      writeOut(`${SUB_HELP}\n`);
      return EXIT.OK;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const filters = values.topic ?? [];
    if (filters.length === 0) throw new UsageError("-t FILTER is required");
    const filterOut = values["filter-out"] ?? [];
    for (const filter of [...filters, ...filterOut]) {
      try {
        validateTopicFilter(filter);
      } catch (error) {
        throw new UsageError(error instanceof Error ? error.message : String(error));
      }
    }
    const subscriptionQoS = qos("-q", values.qos);
    const count = values.count === undefined
      ? Infinity
      : integer("-C", values.count, 1, Number.MAX_SAFE_INTEGER);
    const timeoutMs = values.timeout === undefined
      ? undefined
      : integer("-W", values.timeout, 1, 2_147_483) * 1000;
    if (values.json && values.format !== undefined) throw new UsageError("--json and -F exclude each other");
    if (values["no-retain"] && values["retained-only"]) {
      throw new UsageError("-R and --retained-only exclude each other");
    }
    const trace = values.trace === true || values.debug === true;
    const connection = await clientOptions(values, defines, {
      // As mosquitto_sub, keep going through lost connections; say so once per outage.
      onStateChange: (state) => {
        if (state.kind === "reconnecting" && state.attempt === 1) {
          writeErr(`Warning: connection lost (${describeError(state.error, endpoint)}); reconnecting`);
        }
      },
      ...(trace ? { onPacket: (direction, packet) => writeErr(traceLine(direction, packet, version)) } : {}),
    });
    endpoint = connection.endpoint;
    const version = connection.options.protocolVersion ?? 5;
    const newline = values["no-newline"] ? "" : "\n";
    const print = (message: MqttMessage): void => {
      if (values.json) writeOut(`${jsonMessage(message)}${newline}`);
      else if (values.format !== undefined) writeOut(formatMessage(message, values.format + newline));
      else {
        writeOut(plainMessage(message, values.verbose === true));
        if (newline !== "") writeOut(newline);
      }
    };

    client = new MqttClient(connection.options);
    for (const signal of signals) Deno.addSignalListener(signal, onSignal);
    await client.connect();
    let timedOut = false;
    if (timeoutMs !== undefined) {
      // As mosquitto_sub: the timeout counts from the connection.
      timer = setTimeout(() => {
        timedOut = true;
        stop.abort("timeout");
      }, timeoutMs);
    }
    const messages = client.messages(undefined, { signal: stop.signal });
    const sub = defines.subscribe;
    const result = await client.subscribe(filters, {
      qos: subscriptionQoS,
      ...(sub?.subscriptionIdentifiers === undefined
        ? {}
        : { subscriptionIdentifier: sub.subscriptionIdentifiers[0]! }),
      ...(sub?.userProperties === undefined ? {} : { userProperties: sub.userProperties }),
    });
    const refused = result.reasonCodes.flatMap((code, i) =>
      code >= 0x80 ? [[filters[i]!, code] as const] : []
    );
    for (const [filter, code] of refused) {
      writeErr(`Warning: subscription to ${filter} refused: ${reasonName(code)} (0x${code.toString(16)})`);
    }
    if (refused.length === filters.length) {
      throw new MqttError(refused[0]![1], "All subscriptions were refused");
    }
    let printed = 0;
    try {
      for await (const message of messages) {
        if (filterOut.some((filter) => matchesFilter(filter, message.topic))) continue;
        if (values["no-retain"] && message.retain) continue;
        if (values["retained-only"] && !message.retain) break;
        print(message);
        if (++printed >= count) break;
      }
    } catch (error) {
      if (!stop.signal.aborted) throw error;
    }
    await client.close(defines.disconnect === undefined ? {} : { properties: defines.disconnect });
    if (timedOut) {
      writeErr("Timed out");
      return EXIT.TIMEOUT;
    }
    return EXIT.OK;
  } catch (error) {
    if (error instanceof UsageError) {
      writeErr(`Error: ${error.message}\nRun "deno task client sub --help" for usage.`);
      return EXIT.USAGE;
    }
    if (interrupted) return EXIT.OK;
    writeErr(`Error: ${describeError(error, endpoint)}`);
    await client?.close().catch(() => {});
    return EXIT.ERROR;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    for (const signal of signals) {
      try {
        Deno.removeSignalListener(signal, onSignal);
      } catch {
        // never added
      }
    }
  }
}
