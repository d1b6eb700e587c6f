/**
 * The dashboard's files (`lib/admin/ui/`, a flat folder): read once when the server starts, served from memory
 * with an ETag. `GET /` is `index.html`, `GET /assets/<name>` the file `<name>`. Without the folder, `/` says the
 * dashboard is not installed.
 *
 * @module
 */

/** One file, ready to serve. */
interface Asset {
  readonly body: Uint8Array<ArrayBuffer>;
  readonly type: string;
  readonly etag: string;
}

const TYPES: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  json: "application/json; charset=utf-8",
  txt: "text/plain; charset=utf-8",
  map: "application/json; charset=utf-8",
  woff2: "font/woff2",
};

const NOT_INSTALLED = "The dashboard is not installed (lib/admin/ui/ is missing). The API is at /api/v1.\n";
const NOT_READABLE =
  "The dashboard cannot be served: the broker may not read lib/admin/ui/ (run it with --allow-read). The API is at /api/v1.\n";

/** The dashboard files in memory. */
export class StaticAssets {
  readonly #files: ReadonlyMap<string, Asset>;
  /** What `/` says when there is no dashboard. */
  readonly #missing: string;

  private constructor(files: ReadonlyMap<string, Asset>, missing = NOT_INSTALLED) {
    this.#files = files;
    this.#missing = missing;
  }

  /** Reads every file of `dir` (default: `lib/admin/ui/`); an absent or unreadable folder serves none. */
  static async load(dir: URL = new URL("./ui/", import.meta.url)): Promise<StaticAssets> {
    const files = new Map<string, Asset>();
    try {
      for await (const entry of Deno.readDir(dir)) {
        if (!entry.isFile) continue;
        const body = await Deno.readFile(new URL(entry.name, dir));
        const ext = entry.name.slice(entry.name.lastIndexOf(".") + 1).toLowerCase();
        const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
        const etag = `"${[...digest.subarray(0, 12)].map((b) => b.toString(16).padStart(2, "0")).join("")}"`;
        files.set(entry.name, { body, type: TYPES[ext] ?? "application/octet-stream", etag });
      }
    } catch (error) {
      // Absent, or not readable under the broker's permissions: the API still serves, the dashboard says why.
      if (error instanceof Deno.errors.NotCapable) return new StaticAssets(new Map(), NOT_READABLE);
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return new StaticAssets(files);
  }

  /** Whether the dashboard is installed (it has an `index.html`). */
  get installed(): boolean {
    return this.#files.has("index.html");
  }

  /** `GET /` (name `index.html`) or `GET /assets/<name>`; undefined when there is no such file. */
  serve(name: string, request: Request): Response | undefined {
    if (name === "index.html" && !this.installed) {
      return new Response(this.#missing, { headers: { "content-type": "text/plain; charset=utf-8" } });
    }
    const asset = this.#files.get(name);
    if (asset === undefined) return undefined;
    const headers = { "content-type": asset.type, etag: asset.etag };
    if (request.headers.get("if-none-match") === asset.etag) {
      return new Response(null, { status: 304, headers });
    }
    return new Response(request.method === "HEAD" ? null : asset.body, { headers });
  }
}
