/**
 * Bearer tokens: reading a token list and checking a presented token against
 * it in constant time. Knows nothing of gRPC (the access control applies it;
 * `permissions.ts` reads what each line grants).
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";

/**
 * Splits a token file into its token lines: blank lines and lines starting
 * with `#` are skipped; surrounding white space is trimmed. Each line is a
 * token, then optionally what it grants (see `permissions.ts`).
 *
 * @example
 * ```ts
 * import { parseTokenLines } from "./tokens.ts";
 * parseTokenLines("# ops\ns3cret\n\nother publish:news.>\n"); // ["s3cret", "other publish:news.>"]
 * ```
 */
export function parseTokenLines(text: string): string[] {
  return numberedTokenLines(text).map(({ text }) => text);
}

/**
 * The token lines of a token file with their line numbers in it (from 1,
 * comments and blank lines counted), so that an error can name the line
 * a person finds in an editor.
 *
 * @example
 * ```ts
 * import { numberedTokenLines } from "./tokens.ts";
 * numberedTokenLines("# ops\ns3cret\n\nother publish:news.>\n");
 * // [{ line: 2, text: "s3cret" }, { line: 4, text: "other publish:news.>" }]
 * ```
 */
export function numberedTokenLines(
  text: string,
): { line: number; text: string }[] {
  return text.split(/\r?\n/).map((line, i) => ({
    line: i + 1,
    text: line.trim(),
  })).filter(({ text }) => text !== "" && !text.startsWith("#"));
}

/**
 * The token of a token line: its first word.
 *
 * @example
 * ```ts
 * import { tokenOf } from "./tokens.ts";
 * tokenOf("s3cret publish:news.>"); // "s3cret"
 * ```
 */
export function tokenOf(line: string): string {
  return line.split(/\s+/, 1)[0];
}

/**
 * The tokens of a token file, one per token line (see
 * {@linkcode parseTokenLines}).
 *
 * @example
 * ```ts
 * import { parseTokens } from "./tokens.ts";
 * parseTokens("# ops\ns3cret\n\nother subscribe:news.*\n"); // ["s3cret", "other"]
 * ```
 */
export function parseTokens(text: string): string[] {
  return parseTokenLines(text).map(tokenOf);
}

const digest = (value: string) => createHash("sha256").update(value).digest();

/**
 * A set of accepted bearer tokens. {@linkcode BearerTokens.find} takes the
 * same time whichever token matches, if any: every token is compared, each
 * through fixed-length SHA-256 digests.
 *
 * @example
 * ```ts
 * import { BearerTokens } from "./tokens.ts";
 * const tokens = new BearerTokens(["s3cret"]);
 * tokens.accepts("Bearer s3cret"); // true
 * tokens.accepts("Bearer nope"); // false
 * ```
 */
export class BearerTokens {
  #digests: Uint8Array[];

  /** Accepts any of `tokens`; throws if there is none. */
  constructor(tokens: readonly string[]) {
    if (tokens.length === 0) {
      throw new RangeError(
        "Cannot check bearer tokens: the token list is empty",
      );
    }
    this.#digests = tokens.map(digest);
  }

  /** How many tokens are accepted. */
  get size(): number {
    return this.#digests.length;
  }

  /** Whether an `authorization` header value carries an accepted token. */
  accepts(authorization: string | undefined): boolean {
    return this.find(authorization) >= 0;
  }

  /**
   * The index (in the constructor's list) of the token an `authorization`
   * header value carries, or -1 when it carries none that is accepted.
   */
  find(authorization: string | undefined): number {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
    const presented = digest(match?.[1] ?? "");
    let found = -1;
    for (let i = 0; i < this.#digests.length; i++) {
      // No early exit and no branch on the secret: the same work each time.
      const equal = timingSafeEqual(presented, this.#digests[i]);
      found = equal && found < 0 ? i : found;
    }
    return match === null ? -1 : found;
  }
}
