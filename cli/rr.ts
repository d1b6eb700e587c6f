/**
 * `deno task client rr`: one MQTT 5 request and its response, as mosquitto_rr. Subscribes to the response topic
 * first, publishes the request with a Response Topic and Correlation Data (5.0 section 4.10), prints the first
 * message on the response topic that carries the same Correlation Data (or none), and exits.
 *
 * @module
 */

import { MqttClient } from "../lib/client/client.ts";
import { utf8Encode } from "../lib/codec/utf8.ts";
import { MqttError } from "../lib/mqtt_error.ts";
import { reasonName } from "../lib/packet/reason_code.ts";
import { validateTopicName } from "../lib/topic/topic.ts";
import { commandFailure, CommandStop, readCommandLine } from "./_command.ts";
import {
  clientOptions,
  CONNECTION_FLAGS,
  CONNECTION_HELP,
  type Endpoint,
  EXIT,
  integer,
  protocolVersion,
  qos,
  readInputFile,
  UsageError,
} from "./_flags.ts";
import { traceLine } from "./_format.ts";
import { readAll, writeErr } from "./_io.ts";
import { messagePrinter, PRINT_FLAGS } from "./_printer.ts";
import { parseBrokerUrl } from "./_target.ts";

/** The flags of `rr`. */
export const RR_FLAGS = {
  ...CONNECTION_FLAGS,
  ...PRINT_FLAGS,
  topic: { type: "string", short: "t" },
  "response-topic": { type: "string", short: "e" },
  message: { type: "string", short: "m" },
  file: { type: "string", short: "f" },
  "null-message": { type: "boolean", short: "n" },
  "stdin-file": { type: "boolean", short: "s" },
  qos: { type: "string", short: "q" },
  timeout: { type: "string", short: "W" },
} as const;

/** Usage of `rr`. */
export const RR_HELP = `Usage: deno task client rr -t TOPIC -e RESP_TOPIC (-m MSG | -f FILE | -n | -s)
         [options]

Publish a request and print its response (as mosquitto_rr; MQTT 5 only):
subscribe to RESP_TOPIC, publish to TOPIC with the Response Topic and
Correlation Data properties, print the first message on RESP_TOPIC with the
same Correlation Data (or none), and exit.

Request:
  -t, --topic TOPIC         topic of the request (or the topic of -L)
  -e, --response-topic T    where the response is expected (no wildcards)
  -m, --message MSG         the request's payload
  -f, --file FILE           the contents of FILE as the payload
  -n, --null-message        an empty payload
  -s, --stdin-file          all of stdin as the payload
  -q, --qos 0|1|2           QoS of the request and the subscription (default 0)
  -W, --timeout SECONDS     give up after SECONDS: exit 27 (as mosquitto_rr)
  -D publish correlation-data DATA
                            the Correlation Data (default: 16 random hex digits)

Response:
  -v, --verbose             print "topic payload"
  -F, --format FORMAT       print with a format (codes as in sub --help)
  --json, --pretty          print as JSON (--pretty indents it)
  -N, --no-newline          no newline after the response

${CONNECTION_HELP}

Exit codes: 0 response printed, 1 connection, subscription or publish failed,
2 bad flags, 27 -W timeout.`;

/** 16 random hex digits: Correlation Data that tells our response from others on a shared response topic. */
function randomCorrelation(): Uint8Array {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return utf8Encode([...bytes].map((b) => b.toString(16).padStart(2, "0")).join(""));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** Runs `rr` and returns the exit code. */
export async function runRr(args: string[]): Promise<number> {
  let client: MqttClient | undefined;
  let endpoint: Endpoint | undefined;
  const stop = new CommandStop();
  try {
    const line = await readCommandLine("rr", args, RR_FLAGS, RR_HELP);
    if (line === undefined) return EXIT.OK;
    const { values, defines } = line;
    if (protocolVersion(values["protocol-version"]) !== 5) {
      throw new UsageError(
        "rr needs MQTT 5 (-V 5): Response Topic and Correlation Data are MQTT 5 properties; with MQTT 3.1.1 " +
          "run sub on the response topic and pub the request",
      );
    }
    const urlTopic = values.url === undefined ? undefined : parseBrokerUrl(values.url).topic;
    if (values.topic !== undefined && urlTopic !== undefined) {
      throw new UsageError("the topic is given twice: by -t and by the -L URL");
    }
    const topic = values.topic ?? urlTopic;
    if (topic === undefined) throw new UsageError("-t TOPIC (or -L mqtt://HOST/TOPIC) is required");
    const responseTopic = values["response-topic"];
    if (responseTopic === undefined) throw new UsageError("-e RESP_TOPIC is required");
    for (const [flag, name] of [["-t", topic], ["-e", responseTopic]] as const) {
      try {
        // A Response Topic is a Topic Name: no wildcards [MQTT-3.3.2-14 (5.0)].
        validateTopicName(name);
      } catch (error) {
        throw new UsageError(`${flag}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    const sources = ["message", "file", "null-message", "stdin-file"] as const;
    const chosen = sources.filter((name) => values[name] !== undefined && values[name] !== false);
    if (chosen.length !== 1) {
      throw new UsageError(
        chosen.length === 0
          ? "give the request's payload with one of -m, -f, -n, -s"
          : "-m, -f, -n and -s exclude each other",
      );
    }
    const level = qos("-q", values.qos);
    const timeoutMs = values.timeout === undefined
      ? undefined
      : integer("-W", values.timeout, 1, 2_147_483) * 1000;
    const print = messagePrinter(values);
    let payload: Uint8Array = new Uint8Array(0);
    if (values.message !== undefined) payload = utf8Encode(values.message);
    if (values.file !== undefined) payload = await readInputFile("-f", values.file);
    const correlationData = defines.publish?.correlationData ?? randomCorrelation();
    const trace = values.trace === true || values.debug === true;
    const connection = await clientOptions(values, defines, {
      reconnect: false,
      ...(trace ? { onPacket: (direction, packet) => writeErr(traceLine(direction, packet, 5)) } : {}),
    });
    endpoint = connection.endpoint;
    if (values["stdin-file"]) payload = await readAll(Deno.stdin.readable);

    client = new MqttClient(connection.options);
    stop.listen();
    await client.connect();
    stop.startTimer(timeoutMs); // as mosquitto_rr: the timeout counts from the connection
    // Listen before subscribing, and subscribe before publishing, so a quick response is not missed.
    const messages = client.messages(responseTopic, { signal: stop.signal });
    const granted = await client.subscribe(responseTopic, { qos: level });
    const code = granted.reasonCodes[0] ?? 0x80;
    if (code >= 0x80) {
      throw new MqttError(
        code,
        `subscription to ${responseTopic} refused: ${reasonName(code)} (0x${code.toString(16)})`,
      );
    }
    await client.publish(topic, payload, {
      qos: level,
      properties: { ...defines.publish, responseTopic, correlationData },
    });
    let answered = false;
    try {
      for await (const message of messages) {
        const their = message.properties?.correlationData;
        if (their !== undefined && !sameBytes(their, correlationData)) continue; // someone else's response
        print(message);
        answered = true;
        break;
      }
    } catch (error) {
      if (!stop.signal.aborted) throw error;
    }
    await client.close(defines.disconnect === undefined ? {} : { properties: defines.disconnect });
    if (answered || stop.interrupted) return EXIT.OK;
    if (stop.timedOut) {
      writeErr("Timed out");
      return EXIT.TIMEOUT;
    }
    writeErr("Error: the connection ended before a response came");
    return EXIT.ERROR;
  } catch (error) {
    return await commandFailure("rr", error, client, endpoint, stop.interrupted);
  } finally {
    stop.dispose();
  }
}
