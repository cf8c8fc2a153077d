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
