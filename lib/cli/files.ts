/**
 * Reading the files the subcommands are pointed at (bearer tokens, TLS
 * material), with errors that name the file and never its secrets.
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import { numberedTokenLines } from "../access/tokens.ts";
import { parseTokenLine } from "../access/permissions.ts";
import { ConfigError } from "../errors.ts";

/** `path` as tried: a relative one is named in full, from the working directory. */
function tried(path: string): string {
  return isAbsolute(path) ? `"${path}"` : `"${resolve(path)}"`;
}

/**
 * Why a file could not be read, without what Deno appends to the system's
 * words (`(os error 2): readfile '/etc/…'`: the path is named already).
 *
 * @example
 * ```ts ignore
 * whyUnreadable(new Deno.errors.NotFound("No such file or directory (os error 2): readfile '/x'"));
 * // "No such file or directory"
 * ```
 */
export function whyUnreadable(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/ \(os error \d+\)(?:: \w+ '.*')?$/s, "")
    .replace(/: \w+ '.*'$/s, "");
}

/**
 * Reads the token lines in `path` (see {@linkcode parseTokenLines}: a
 * token, then what it grants); throws {@linkcode ConfigError} when it cannot
 * be read or holds none.
 *
 * @example
 * ```ts ignore
 * const tokens = await readTokenFile("/etc/greeter/tokens");
 * ```
 */
export async function readTokenFile(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError(
      `Cannot read token file ${tried(path)}: ${whyUnreadable(error)}`,
      { cause: error },
    );
  }
  const lines = numberedTokenLines(text);
  if (lines.length === 0) {
    throw new ConfigError(`Token file ${tried(path)} holds no token`);
  }
  // Checked here, where the file's own line numbers are known (the
  // access list numbers the lines it is given).
  for (const { line, text } of lines) {
    try {
      parseTokenLine(text, line);
    } catch (error) {
      throw new ConfigError(
        `Token file ${tried(path)}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  return lines.map(({ text }) => text);
}

/**
 * Reads `path`, which holds `what` (e.g. "TLS key"); throws
 * {@linkcode ConfigError} naming both when it cannot be read.
 *
 * @example
 * ```ts ignore
 * const key = await readConfigFile("/etc/greeter/key.pem", "TLS key");
 * ```
 */
export async function readConfigFile(
  path: string,
  what: string,
): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    throw new ConfigError(
      `Cannot read ${what} file ${tried(path)}: ${whyUnreadable(error)}`,
      { cause: error },
    );
  }
}

/** Reads `path` when given; see {@linkcode readConfigFile}. */
export function readOptionalFile(
  path: string | undefined,
  what: string,
): Promise<Uint8Array | undefined> {
  return path === undefined
    ? Promise.resolve(undefined)
    : readConfigFile(path, what);
}

/** The largest payload read for publishing: no server accepts more. */
export const MAX_PAYLOAD_FILE_BYTES = 64 * 1024 * 1024;

/**
 * The bytes of `path` as they are (binary too), or of stdin when `path` is
 * `-`, read to their end; at most {@linkcode MAX_PAYLOAD_FILE_BYTES}.
 * Aborting `signal` stops a read of stdin that waits. Throws
 * {@linkcode ConfigError} when it cannot be read or is larger.
 *
 * @example
 * ```ts ignore
 * const payload = await readPayloadFile("report.json", signal);
 * const piped = await readPayloadFile("-", signal); // printf hi | deno task client …
 * ```
 */
export async function readPayloadFile(
  path: string,
  signal: AbortSignal,
): Promise<Uint8Array> {
  const what = path === "-" ? "stdin" : `payload file ${tried(path)}`;
  const tooLarge = () =>
    new ConfigError(
      `Cannot publish ${what}: it is over ${MAX_PAYLOAD_FILE_BYTES} bytes, more than any server accepts`,
    );
  if (path !== "-") {
    let file: Uint8Array;
    try {
      const { size } = await Deno.stat(path);
      if (size > MAX_PAYLOAD_FILE_BYTES) throw tooLarge();
      file = await Deno.readFile(path, { signal });
    } catch (error) {
      if (error instanceof ConfigError || signal.aborted) throw error;
      throw new ConfigError(
        `Cannot read ${what}: ${whyUnreadable(error)}`,
        { cause: error },
      );
    }
    return file;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = Deno.stdin.readable.getReader();
  const stop = () => reader.cancel().catch(() => {});
  signal.addEventListener("abort", stop, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > MAX_PAYLOAD_FILE_BYTES) throw tooLarge();
      chunks.push(value);
    }
  } finally {
    signal.removeEventListener("abort", stop);
    reader.releaseLock();
  }
  signal.throwIfAborted();
  const payload = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    payload.set(chunk, at);
    at += chunk.length;
  }
  return payload;
}
