/**
 * Console I/O for the CLI: whole writes to stdout and stderr (raw bytes for payloads), and stdin as lines.
 *
 * @module
 */

const encoder = new TextEncoder();

function writeAllSync(target: { writeSync(data: Uint8Array): number }, data: Uint8Array): void {
  let offset = 0;
  while (offset < data.length) offset += target.writeSync(data.subarray(offset));
}

/** Writes text or bytes to stdout. A closed pipe (`| head`) ends the process quietly. */
export function writeOut(data: string | Uint8Array): void {
  try {
    writeAllSync(Deno.stdout, typeof data === "string" ? encoder.encode(data) : data);
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) Deno.exit(0);
    throw error;
  }
}

/** Writes one line to stderr. */
export function writeErr(line: string): void {
  try {
    writeAllSync(Deno.stderr, encoder.encode(line.endsWith("\n") ? line : `${line}\n`));
  } catch {
    // nowhere left to report it
  }
}

/** The lines of a byte stream, without their line ends (`\n` or `\r\n`). */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let newline = buffered.indexOf("\n");
    while (newline >= 0) {
      yield buffered.slice(0, newline).replace(/\r$/, "");
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf("\n");
    }
  }
  if (buffered !== "") yield buffered;
}

/** All of a byte stream. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return concatBytes(chunks);
}

/** `parts` end to end (a single part is returned as is). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
