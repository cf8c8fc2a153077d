/**
 * Bearer tokens: reading a token list and checking a presented token against
 * it in constant time. Knows nothing of gRPC (the service adapter applies it).
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";

/**
 * Parses a token file: one token per line; blank lines and lines starting
 * with `#` are skipped; surrounding white space is trimmed.
 *
 * @example
 * ```ts
 * import { parseTokens } from "./auth.ts";
 * parseTokens("# ops\ns3cret\n\nother\n"); // ["s3cret", "other"]
 * ```
 */
export function parseTokens(text: string): string[] {
  return text.split(/\r?\n/).map((line) => line.trim()).filter((line) =>
    line !== "" && !line.startsWith("#")
  );
}

const digest = (value: string) => createHash("sha256").update(value).digest();

/**
 * A set of accepted bearer tokens. {@linkcode BearerTokens.accepts} takes the
 * same time whichever token matches, if any: every token is compared, each
 * through fixed-length SHA-256 digests.
 *
 * @example
 * ```ts
 * import { BearerTokens } from "./auth.ts";
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

  /** Whether an `authorization` header value carries an accepted token. */
  accepts(authorization: string | undefined): boolean {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
    const presented = digest(match?.[1] ?? "");
    let ok = false;
    for (const accepted of this.#digests) {
      ok = timingSafeEqual(presented, accepted) || ok;
    }
    return ok && match !== null;
  }
}
