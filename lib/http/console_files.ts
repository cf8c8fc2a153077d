/**
 * The console's files (`lib/http/console/`: `index.html` and what it
 * references), served at `/` (the page) and `/console/NAME`: read once at start (they are part
 * of the program, included by `deno task compile`), each with its type, an
 * entity tag, and headers that keep a page to its own origin (a strict
 * content security policy: no inline script or style, nothing from
 * elsewhere).
 *
 * @module
 */

import { join } from "node:path";

/** Where the console's files are. */
export const CONSOLE_DIR: string = join(import.meta.dirname!, "console");

/** Content types by file extension; files of other types are not served. */
const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".webmanifest": "application/manifest+json",
};

/** What an HTML page may load and do: only what this origin serves. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join("; ");

/** Where the console's files are served, each under its name. */
export const FILES_PATH = "/console/";

/** A file name the console may hold: one path segment, no dot first. */
const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Most bytes a console file may have: it is read into memory at start. */
const MAX_FILE_BYTES = 4 * 1024 * 1024;

interface ConsoleFile {
  body: Uint8Array<ArrayBuffer>;
  headers: Record<string, string>;
}

/** The file's extension, with its dot (`.js`); "" when none. */
function extension(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot).toLowerCase() : "";
}

/** A strong entity tag of `body`: its SHA-256, shortened. */
async function entityTag(body: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  const hex = [...digest.slice(0, 12)].map((b) =>
    b.toString(16).padStart(2, "0")
  ).join("");
  return `"${hex}"`;
}

/**
 * The console's files, read at start.
 *
 * @example
 * ```ts ignore
 * const files = await ConsoleFiles.load();
 * const response = files.answer(request, "/"); // index.html, or undefined when absent
 * ```
 */
export class ConsoleFiles {
  #files: ReadonlyMap<string, ConsoleFile>;

  private constructor(files: ReadonlyMap<string, ConsoleFile>) {
    this.#files = files;
  }

  /**
   * Reads the files of `dir` (default {@linkcode CONSOLE_DIR}; a missing
   * folder holds none): those of a known type, named as
   * {@linkcode FILE_NAME} allows, up to 4 MiB each.
   */
  static async load(dir: string = CONSOLE_DIR): Promise<ConsoleFiles> {
    const files = new Map<string, ConsoleFile>();
    let entries: Deno.DirEntry[] = [];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    for (const entry of entries) {
      const type = TYPES[extension(entry.name)];
      if (!entry.isFile || !FILE_NAME.test(entry.name) || !type) continue;
      const body = await Deno.readFile(join(dir, entry.name));
      if (body.length > MAX_FILE_BYTES) {
        throw new RangeError(
          `Console file "${entry.name}" is ${body.length} bytes: at most ${MAX_FILE_BYTES} are served`,
        );
      }
      const headers: Record<string, string> = {
        "content-type": type,
        "cache-control": "no-cache",
        etag: await entityTag(body),
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
      };
      if (type.startsWith("text/html")) {
        headers["content-security-policy"] = CONTENT_SECURITY_POLICY;
      }
      files.set(entry.name, { body, headers });
    }
    return new ConsoleFiles(files);
  }

  /** Whether the console's page is there. */
  get present(): boolean {
    return this.#files.has("index.html");
  }

  /**
   * The answer to a `GET` or `HEAD` of `pathname` (`/` is `index.html`,
   * `/console/NAME` the file NAME): the file (304 when the request's
   * `if-none-match` names it), or undefined when the console has no such
   * file.
   */
  answer(request: Request, pathname: string): Response | undefined {
    const name = pathname === "/"
      ? "index.html"
      : pathname.startsWith(FILES_PATH)
      ? pathname.slice(FILES_PATH.length)
      : "";
    if (!FILE_NAME.test(name)) return undefined;
    const file = this.#files.get(name);
    if (!file) return undefined;
    if (request.headers.get("if-none-match") === file.headers.etag) {
      return new Response(null, { status: 304, headers: file.headers });
    }
    const body = request.method === "HEAD" ? null : file.body;
    return new Response(body, { headers: file.headers });
  }
}
