/**
 * `deno task client pub`: publish one message, a file, stdin, or one message per stdin line, as mosquitto_pub.
 *
 * @module
 */

import { MqttClient } from "../lib/client/client.ts";
import type { PublishOptions } from "../lib/client/options.ts";
import { utf8Encode } from "../lib/codec/utf8.ts";
import { validateTopicName } from "../lib/topic/topic.ts";
import { commandFailure, readCommandLine } from "./_command.ts";
import {
  clientOptions,
  CONNECTION_FLAGS,
  CONNECTION_HELP,
  type Endpoint,
  EXIT,
  integer,
  qos,
  readInputFile,
  UsageError,
} from "./_flags.ts";
import { traceLine } from "./_format.ts";
import { readAll, readLines, writeErr } from "./_io.ts";
import { parseBrokerUrl } from "./_target.ts";

/** The flags of `pub`. */
export const PUB_FLAGS = {
  ...CONNECTION_FLAGS,
  topic: { type: "string", short: "t" },
  message: { type: "string", short: "m" },
  file: { type: "string", short: "f" },
  "stdin-line": { type: "boolean", short: "l" },
  "null-message": { type: "boolean", short: "n" },
  "stdin-file": { type: "boolean", short: "s" },
  qos: { type: "string", short: "q" },
  retain: { type: "boolean", short: "r" },
  repeat: { type: "string" },
  "repeat-delay": { type: "string" },
} as const;

/** Usage of `pub`. */
export const PUB_HELP = `Usage: deno task client pub -t TOPIC (-m MSG | -f FILE | -l | -n | -s) [options]

Publish:
  -t, --topic TOPIC         topic to publish to (or the topic of -L)
  -m, --message MSG         the message
  -f, --file FILE           the contents of FILE as the message
  -l, --stdin-line          one message per line of stdin (blank lines skipped)
  -n, --null-message        an empty (zero-length) message
  -s, --stdin-file          all of stdin as one message
  -q, --qos 0|1|2           QoS (default 0); QoS 1/2 wait for PUBACK/PUBCOMP
  -r, --retain              retain
  --repeat N                publish the message N times (with -m, -f, -n, -s)
  --repeat-delay SECONDS    seconds between repeats

${CONNECTION_HELP}

Exit codes: 0 published, 1 connection or publish failed, 2 bad flags.`;

/** Runs `pub` and returns the exit code. */
export async function runPub(args: string[]): Promise<number> {
  let client: MqttClient | undefined;
  let endpoint: Endpoint | undefined;
  try {
    const line = await readCommandLine("pub", args, PUB_FLAGS, PUB_HELP);
    if (line === undefined) return EXIT.OK;
    const { values, defines } = line;
    const urlTopic = values.url === undefined ? undefined : parseBrokerUrl(values.url).topic;
    if (values.topic !== undefined && urlTopic !== undefined) {
      throw new UsageError("the topic is given twice: by -t and by the -L URL");
    }
    const topic = values.topic ?? urlTopic;
    if (topic === undefined) throw new UsageError("-t TOPIC (or -L mqtt://HOST/TOPIC) is required");
    // Checked before connecting, as sub checks its filters. An empty Topic Name is never valid here: the client
    // manages Topic Aliases itself, so no PUBLISH from this command may rely on one [MQTT-4.7.3-1 (5.0)].
    try {
      validateTopicName(topic);
    } catch (error) {
      throw new UsageError(error instanceof Error ? error.message : String(error));
    }
    const sources = ["message", "file", "stdin-line", "null-message", "stdin-file"] as const;
    const chosen = sources.filter((name) => values[name] !== undefined && values[name] !== false);
    if (chosen.length !== 1) {
      throw new UsageError(
        chosen.length === 0
          ? "give the message with one of -m, -f, -l, -n, -s"
          : "-m, -f, -l, -n and -s exclude each other",
      );
    }
    const repeat = values.repeat === undefined
      ? 1
      : integer("--repeat", values.repeat, 1, Number.MAX_SAFE_INTEGER);
    const delayMs = values["repeat-delay"] === undefined
      ? 0
      : seconds("--repeat-delay", values["repeat-delay"]);
    if (values["stdin-line"] && repeat !== 1) throw new UsageError("--repeat does not go with -l");
    const trace = values.trace === true || values.debug === true;
    const connection = await clientOptions(values, defines, {
      reconnect: false,
      ...(trace ? { onPacket: (direction, packet) => writeErr(traceLine(direction, packet, version)) } : {}),
    });
    endpoint = connection.endpoint;
    const version = connection.options.protocolVersion ?? 5;
    const publishOptions: PublishOptions = {
      qos: qos("-q", values.qos),
      retain: values.retain === true,
      ...(defines.publish === undefined ? {} : { properties: defines.publish }),
    };
    let payload: Uint8Array | undefined;
    if (values.message !== undefined) payload = utf8Encode(values.message);
    if (values["null-message"]) payload = new Uint8Array(0);
    if (values.file !== undefined) payload = await readInputFile("-f", values.file);
    client = new MqttClient(connection.options);
    await client.connect();
    if (values["stdin-file"]) payload = await readAll(Deno.stdin.readable);
    if (payload !== undefined) {
      for (let i = 0; i < repeat; i++) {
        if (i > 0 && delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
        await client.publish(topic, payload, publishOptions);
      }
    } else {
      // One message per line; up to 1,000 in flight at once (the server's Receive Maximum still applies).
      let pending: Promise<unknown>[] = [];
      for await (const line of readLines(Deno.stdin.readable)) {
        if (line === "") continue;
        pending.push(client.publish(topic, line, publishOptions));
        if (pending.length >= 1000) {
          await Promise.all(pending);
          pending = [];
        }
      }
      await Promise.all(pending);
    }
    await client.close(defines.disconnect === undefined ? {} : { properties: defines.disconnect });
    return EXIT.OK;
  } catch (error) {
    return await commandFailure("pub", error, client, endpoint);
  }
}

function seconds(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new UsageError(`${flag} must be a number of seconds, not "${value}"`);
  }
  return n * 1000;
}
