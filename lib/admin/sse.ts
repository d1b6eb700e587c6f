/**
 * Server-sent event streams (`text/event-stream`), tracked so the server can close them all: `Deno.serve`'s
 * `shutdown()` waits for open responses, so an SSE stream left open would hold `broker.close()` and SIGTERM.
 * Each stream says `retry: 3000` first and sends a `: ping` comment every 15 s (proxies drop idle connections).
 * A client that goes away cancels the stream; its cleanup runs then, or when the server closes it.
 *
 * @module
 */

import { ApiError } from "./http.ts";

const encoder = new TextEncoder();

/** Seconds between `: ping` comments. */
export const PING_MS = 15_000;

/** One open event stream. */
export class SseStream {
  readonly #controller: ReadableStreamDefaultController<Uint8Array>;
  readonly #cleanups: (() => void)[] = [];
  #closed = false;

  /** Wraps the stream's controller; {@linkcode SseHub.open} makes these. */
  constructor(controller: ReadableStreamDefaultController<Uint8Array>) {
    this.#controller = controller;
  }

  /** Whether the stream has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one event (`data` as JSON on one line). */
  send(event: string, data: unknown, id?: string): void {
    if (this.#closed) return;
    this.#write(`${id === undefined ? "" : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** Sends a comment line (ignored by `EventSource`; keeps the connection alive). */
  comment(text: string): void {
    if (!this.#closed) this.#write(`: ${text}\n\n`);
  }

  /** Runs `cleanup` when the stream ends (timers, listeners). */
  onClose(cleanup: () => void): void {
    if (this.#closed) cleanup();
    else this.#cleanups.push(cleanup);
  }

  /** Ends the stream and runs its cleanups. */
  close(): void {
    if (this.#closed) return;
    this.ended();
    try {
      this.#controller.close();
    } catch {
      // already cancelled by the client
    }
  }

  /** @ignore The client went away (the stream was cancelled): cleanups run, nothing more is written. */
  ended(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const cleanup of this.#cleanups.splice(0)) {
      try {
        cleanup();
      } catch {
        // a cleanup's failure must not keep the others from running
      }
    }
  }

  #write(text: string): void {
    try {
      this.#controller.enqueue(encoder.encode(text));
    } catch {
      this.ended();
    }
  }
}

/** Event streams open at once, per server: each holds a connection, a timer and listeners. */
export const MAX_STREAMS = 100;

/** The open streams of one server. */
export class SseHub {
  readonly #streams = new Set<SseStream>();
  #closed = false;

  /** Streams open now. */
  get size(): number {
    return this.#streams.size;
  }

  /**
   * A `text/event-stream` response whose stream `setup` feeds (it registers its cleanups on the stream).
   *
   * @throws {ApiError} 503 when {@linkcode MAX_STREAMS} are open.
   */
  open(setup: (stream: SseStream) => void, headers: Record<string, string> = {}): Response {
    if (this.#streams.size >= MAX_STREAMS) {
      throw new ApiError(503, "TOO_MANY_STREAMS", `${MAX_STREAMS} event streams are open: try again later`, {
        "retry-after": "3",
      });
    }
    let stream: SseStream | undefined;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        stream = new SseStream(controller);
        if (this.#closed) {
          // Closed first, so what setup registers is cleaned up at once and nothing is sent.
          stream.close();
          setup(stream);
          return;
        }
        this.#streams.add(stream);
        const current = stream;
        current.onClose(() => this.#streams.delete(current));
        controller.enqueue(encoder.encode("retry: 3000\n\n"));
        const ping = setInterval(() => current.comment("ping"), PING_MS);
        current.onClose(() => clearInterval(ping));
        setup(current);
      },
      cancel: () => stream?.ended(),
    });
    return new Response(body, {
      headers: { "content-type": "text/event-stream; charset=utf-8", ...headers },
    });
  }

  /** Ends every stream, and every one opened from now on. */
  closeAll(): void {
    this.#closed = true;
    for (const stream of [...this.#streams]) stream.close();
  }
}
