/**
 * How `sub` and `rr` print a message: the payload, `-v` topic and payload, `-F` format or `--json`, each followed
 * by a newline unless `-N`.
 *
 * @module
 */

import type { MqttMessage } from "../lib/client/inbox.ts";
import { UsageError } from "./_flags.ts";
import { jsonMessage, plainMessage } from "./_format.ts";
import { writeErr, writeOut } from "./_io.ts";
import { compileFormat, PayloadNotJsonError, renderMessage } from "./_message_format.ts";

/** The output flags. */
export interface PrintFlags {
  readonly verbose?: boolean | undefined;
  readonly format?: string | undefined;
  readonly json?: boolean | undefined;
  readonly pretty?: boolean | undefined;
  readonly "no-newline"?: boolean | undefined;
}

/** The output flags as they appear in `SUB_FLAGS` and `RR_FLAGS`. */
export const PRINT_FLAGS = {
  verbose: { type: "boolean", short: "v" },
  format: { type: "string", short: "F" },
  json: { type: "boolean" },
  pretty: { type: "boolean" },
  "no-newline": { type: "boolean", short: "N" },
} as const;

/**
 * A function that prints one message as the flags say; the format is checked now, before connecting.
 * @throws {UsageError} for an unknown `-F` code or `--json` with `-F`.
 */
export function messagePrinter(flags: PrintFlags): (message: MqttMessage) => void {
  if (flags.json && flags.format !== undefined) throw new UsageError("--json and -F exclude each other");
  const format = flags.format === undefined ? undefined : compileFormat(flags.format);
  const pretty = flags.pretty === true;
  const newline = flags["no-newline"] ? "" : "\n";
  const verbose = flags.verbose === true;
  return (message) => {
    if (flags.json) {
      writeOut(`${jsonMessage(message, new Date(), pretty)}${newline}`);
      return;
    }
    if (format !== undefined) {
      try {
        writeOut(renderMessage(message, format, { now: new Date(), pretty }));
      } catch (error) {
        // As mosquitto_sub: %J with a payload that is not JSON skips the message with an error line.
        if (error instanceof PayloadNotJsonError) return writeErr(`Error: ${error.message}`);
        throw error;
      }
    } else {
      writeOut(plainMessage(message, verbose));
    }
    if (newline !== "") writeOut(newline);
  };
}
