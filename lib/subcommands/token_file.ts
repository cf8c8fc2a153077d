/**
 * Reading a bearer-token file for the subcommands, with errors that name the
 * file and never the token.
 *
 * @module
 */

import { parseTokens } from "../auth.ts";
import { ConfigError } from "../errors.ts";

/**
 * Reads the tokens in `path` (see {@linkcode parseTokens}); throws
 * {@linkcode ConfigError} when it cannot be read or holds none.
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
      `Cannot read token file "${path}": ${(error as Error).message}`,
      { cause: error },
    );
  }
  const tokens = parseTokens(text);
  if (tokens.length === 0) {
    throw new ConfigError(`Token file "${path}" holds no token`);
  }
  return tokens;
}
