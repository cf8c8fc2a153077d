/**
 * Reading the files the subcommands are pointed at (bearer tokens, TLS
 * material), with errors that name the file and never its secrets.
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import { parseTokenLines } from "../access/tokens.ts";
import { ConfigError } from "../errors.ts";

/** `path` as tried: a relative one is named in full, from the working directory. */
function tried(path: string): string {
  return isAbsolute(path) ? `"${path}"` : `"${resolve(path)}"`;
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
      `Cannot read token file ${tried(path)}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const tokens = parseTokenLines(text);
  if (tokens.length === 0) {
    throw new ConfigError(`Token file "${path}" holds no token`);
  }
  return tokens;
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
      `Cannot read ${what} file ${tried(path)}: ${(error as Error).message}`,
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
