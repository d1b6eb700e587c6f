/**
 * The admin API's answers: JSON bodies, errors as `{"error":{"code","message"}}`, and the query and body readers
 * whose failures are such errors (400 with a code that names what was wrong).
 *
 * @module
 */

/** An error answer; thrown by handlers and turned into a response by the server. */
export class ApiError extends Error {
  /** `"ApiError"` */
  override readonly name = "ApiError";
  /** The HTTP status, 4xx or 5xx. */
  readonly status: number;
  /** A stable, upper-case code such as `CLIENT_NOT_FOUND`. */
  readonly code: string;
  /** Extra headers (`WWW-Authenticate`, `Retry-After`). */
  readonly headers: Record<string, string>;

  /** An error answer with `status`, `code` and a message for people. */
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** A JSON answer. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/** An empty answer (204 unless told). */
export function empty(status = 204, headers: HeadersInit = {}): Response {
  return new Response(null, { status, headers });
}

/** The error's JSON answer. */
export function errorResponse(error: ApiError): Response {
  return json({ error: { code: error.code, message: error.message } }, error.status, error.headers);
}

/** An integer query parameter within `[min, max]`, or `fallback` when absent. */
export function intParam(url: URL, name: string, fallback: number, min: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ApiError(400, "BAD_PARAMETER", `${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

/** A string query parameter, or undefined when absent or empty. */
export function stringParam(url: URL, name: string): string | undefined {
  const raw = url.searchParams.get(name);
  return raw === null || raw === "" ? undefined : raw;
}

/** A query parameter that must be one of `allowed`. */
export function oneOfParam<T extends string>(url: URL, name: string, allowed: readonly T[]): T | undefined {
  const raw = stringParam(url, name);
  if (raw === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ApiError(400, "BAD_PARAMETER", `${name} must be one of ${allowed.join(", ")}`);
  }
  return raw as T;
}

/** Largest request body read, bytes: the API takes small JSON objects only. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** The request's JSON body as an object; 400 when it is not one, 413 when it is too large. */
export async function jsonBody(request: Request): Promise<Record<string, unknown>> {
  const text = new TextDecoder().decode(await limitedBody(request, MAX_BODY_BYTES));
  let value: unknown;
  try {
    value = text === "" ? {} : JSON.parse(text);
  } catch {
    throw new ApiError(400, "BAD_JSON", "the body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ApiError(400, "BAD_JSON", "the body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/** The body's bytes, read only up to `max` (a chunked body has no Content-Length to check first). */
async function limitedBody(request: Request, max: number): Promise<Uint8Array> {
  const tooLarge = () => new ApiError(413, "BODY_TOO_LARGE", `bodies are at most ${max} bytes`);
  if (Number(request.headers.get("content-length") ?? "0") > max) throw tooLarge();
  if (request.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** A field of a JSON body that must be a string (or absent, when `optional`). */
export function bodyString(body: Record<string, unknown>, name: string): string;
/** A field of a JSON body that must be a string when present. */
export function bodyString(body: Record<string, unknown>, name: string, optional: true): string | undefined;
export function bodyString(
  body: Record<string, unknown>,
  name: string,
  optional = false,
): string | undefined {
  const value = body[name];
  if (value === undefined && optional) return undefined;
  if (typeof value !== "string") throw new ApiError(400, "BAD_FIELD", `${name} must be a string`);
  return value;
}

/** A field of a JSON body that must be an integer in `[min, max]`, or `fallback` when absent. */
export function bodyInt(
  body: Record<string, unknown>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = body[name];
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ApiError(400, "BAD_FIELD", `${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** A field of a JSON body that must be true or false, or `fallback` when absent. */
export function bodyBool(body: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const value = body[name];
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new ApiError(400, "BAD_FIELD", `${name} must be true or false`);
  return value;
}
