/**
 * `deno task client sub`: subscribe and print messages, as mosquitto_sub.
 *
 * @module
 */

import { MqttClient } from "../lib/client/client.ts";
import { MqttError } from "../lib/mqtt_error.ts";
import type { QoS } from "../lib/packet/packet_type.ts";
import { reasonName } from "../lib/packet/reason_code.ts";
import { matchesFilter, validateTopicFilter } from "../lib/topic/topic.ts";
import { commandFailure, CommandStop, readCommandLine } from "./_command.ts";
import {
  clientOptions,
  CONNECTION_FLAGS,
  CONNECTION_HELP,
  type Defines,
  type Endpoint,
  EXIT,
  integer,
  qos,
  UsageError,
} from "./_flags.ts";
import { describeError, traceLine } from "./_format.ts";
import { writeErr } from "./_io.ts";
import { messagePrinter, PRINT_FLAGS } from "./_printer.ts";
import { parseBrokerUrl } from "./_target.ts";

/** The flags of `sub`. */
export const SUB_FLAGS = {
  ...CONNECTION_FLAGS,
  topic: { type: "string", short: "t", multiple: true },
  "filter-out": { type: "string", short: "T", multiple: true },
  qos: { type: "string", short: "q" },
  ...PRINT_FLAGS,
  count: { type: "string", short: "C" },
  timeout: { type: "string", short: "W" },
  "no-retain": { type: "boolean", short: "R" },
  "retained-only": { type: "boolean" },
  "remove-retained": { type: "boolean" },
  "exit-after-subscribe": { type: "boolean", short: "E" },
  unsubscribe: { type: "string", short: "U", multiple: true },
} as const;

/** Usage of `sub`. */
export const SUB_HELP = `Usage: deno task client sub -t FILTER [-t FILTER ...] [options]

Subscribe:
  -t, --topic FILTER        topic filter to subscribe to (repeatable; -L
                            mqtt://HOST/FILTER adds one)
  -T, --filter-out FILTER   do not print messages whose topic matches FILTER
                            (repeatable)
  -U, --unsubscribe FILTER  unsubscribe FILTER (repeatable; e.g. from a
                            persistent session, with -c -i ID); alone, exit
                            after the UNSUBACK
  -q, --qos 0|1|2           subscription QoS (default 0)
  -E, --exit-after-subscribe
                            exit once the subscriptions are acknowledged
  -v, --verbose             print "topic payload"
  -F, --format FORMAT       print with a format (as mosquitto_sub), see below
  --json                    one JSON object per message: time, topic, payload
                            (or payloadBase64), qos, retain, properties
  --pretty                  indent the JSON of --json, %j and %J
  -N, --no-newline          no newline after each message
  -C, --count N             exit after N messages
  -W, --timeout SECONDS     exit with code 27 if the messages (-C) have not
                            all arrived by then
  -R, --no-retain           do not print stale (retained) messages
  --retained-only           print only retained messages; exit at the first
                            live one
  --remove-retained         clear each retained message received (publish an
                            empty retained message to its topic)

-F codes: %t topic, %p payload, %q QoS, %r retain (0/1), %l payload length,
  %m packet id, %x / %X payload in hex, %j / %J JSON (mosquitto_sub's keys;
  %J embeds a JSON payload), %I ISO 8601 local time, %U Unix time, %% %;
  v5 properties: %A topic alias, %C content type, %D correlation data,
  %E message expiry, %F payload format, %P user properties (key:value),
  %R response topic, %S subscription identifier. %[-][0][WIDTH][.MAX]CODE
  pads or cuts a field. Local time as strftime: @Y @m @d @H @M @S @F @T @z
  and more (@N nanoseconds, @@ an at sign). Escapes \\n \\t \\r \\0 \\e \\\\.
  An unknown code is an error.

${CONNECTION_HELP}

Ctrl-C disconnects cleanly. Exit codes: 0 done, 1 connection or subscription
failed, 2 bad flags, 27 -W timeout.`;

/** Runs `sub` and returns the exit code. */
export async function runSub(args: string[]): Promise<number> {
  let client: MqttClient | undefined;
  let endpoint: Endpoint | undefined;
  const stop = new CommandStop(() => client?.close().catch(() => {}));
  try {
    const line = await readCommandLine("sub", args, SUB_FLAGS, SUB_HELP);
    if (line === undefined) return EXIT.OK;
    const { values, defines } = line;
    const urlTopic = values.url === undefined ? undefined : parseBrokerUrl(values.url).topic;
    const filters = [...values.topic ?? [], ...urlTopic === undefined ? [] : [urlTopic]];
    const unsubscribe = values.unsubscribe ?? [];
    if (filters.length === 0 && unsubscribe.length === 0) {
      throw new UsageError("-t FILTER (or -L mqtt://HOST/FILTER, or -U FILTER) is required");
    }
    const filterOut = values["filter-out"] ?? [];
    for (const filter of [...filters, ...filterOut, ...unsubscribe]) {
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
    const print = messagePrinter(values);
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
    client = new MqttClient(connection.options);
    stop.listen();
    await client.connect();
    stop.startTimer(timeoutMs); // as mosquitto_sub: the timeout counts from the connection
    const messages = client.messages(undefined, { signal: stop.signal });
    if (filters.length > 0) await subscribe(client, filters, subscriptionQoS, defines.subscribe);
    if (unsubscribe.length > 0) {
      await client.unsubscribe(
        unsubscribe,
        defines.unsubscribe?.userProperties === undefined
          ? {}
          : { userProperties: defines.unsubscribe.userProperties },
      );
    }
    let printed = 0;
    const removals: Promise<unknown>[] = [];
    if (filters.length > 0 && !values["exit-after-subscribe"]) {
      try {
        for await (const message of messages) {
          if (filterOut.some((filter) => matchesFilter(filter, message.topic))) continue;
          if (values["remove-retained"] && message.retain) {
            // As mosquitto_sub: an empty retained message clears the topic's retained message [MQTT-3.3.1-6 (5.0)].
            removals.push(client.publish(message.topic, new Uint8Array(0), { qos: 1, retain: true }));
          }
          if (values["no-retain"] && message.retain) continue;
          if (values["retained-only"] && !message.retain) break;
          print(message);
          if (++printed >= count) break;
        }
      } catch (error) {
        if (!stop.signal.aborted) throw error;
      }
    }
    await Promise.all(removals);
    await client.close(defines.disconnect === undefined ? {} : { properties: defines.disconnect });
    if (stop.timedOut) {
      writeErr("Timed out");
      return EXIT.TIMEOUT;
    }
    return EXIT.OK;
  } catch (error) {
    return await commandFailure("sub", error, client, endpoint, stop.interrupted);
  } finally {
    stop.dispose();
  }
}

/**
 * Subscribes, warning about each refused filter.
 * @throws {MqttError} when every filter was refused.
 */
async function subscribe(
  client: MqttClient,
  filters: readonly string[],
  level: QoS,
  properties: Defines["subscribe"],
): Promise<void> {
  const result = await client.subscribe([...filters], {
    qos: level,
    ...(properties?.subscriptionIdentifiers === undefined
      ? {}
      : { subscriptionIdentifier: properties.subscriptionIdentifiers[0]! }),
    ...(properties?.userProperties === undefined ? {} : { userProperties: properties.userProperties }),
  });
  const refused = result.reasonCodes.flatMap((code, i) => code >= 0x80 ? [[filters[i]!, code] as const] : []);
  for (const [filter, code] of refused) {
    writeErr(`Warning: subscription to ${filter} refused: ${reasonName(code)} (0x${code.toString(16)})`);
  }
  if (refused.length === filters.length) {
    throw new MqttError(refused[0]![1], "All subscriptions were refused");
  }
}
