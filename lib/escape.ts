/**
 * What a client or publisher sent, made safe to print: in a log line, in an
 * error message, on a terminal. One set of characters for all three, each
 * written as `\uXXXX` (as JSON writes C0 controls).
 *
 * @module
 */

// Characters a terminal acts on, or that change how the text around them
// reads: C0 and C1 controls (U+009B is CSI, as ESC [ is), DEL, line and
// paragraph separators, bidirectional controls, and invisible characters
// (soft hyphen, combining grapheme joiner, Hangul fillers, zero-width and
// word-joiner characters, the byte-order mark).
const UNSAFE =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\u3164\ufeff\uffa0]/g;

const escapeChar = (char: string) =>
  "\\u" + char.charCodeAt(0).toString(16).padStart(4, "0");

/**
 * `text` with every control, bidirectional control and invisible character
 * written as `\uXXXX`: what a peer sent can neither drive a terminal nor
 * reorder or hide what is printed around it. Inside a JSON string the
 * result is still the same JSON.
 *
 * @example
 * ```ts
 * import { escapeUnsafe } from "./escape.ts";
 * escapeUnsafe("a\u202eb"); // "a\\u202eb"
 * ```
 */
export function escapeUnsafe(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/**
 * Quotes a value a peer supplied (a name, a topic, an address) JSON-style,
 * escaped by {@linkcode escapeUnsafe}: `eve is leaving. x=` becomes
 * `"eve is leaving. x="`, so it can never pass for the words or fields
 * around it.
 *
 * @example
 * ```ts
 * import { quote } from "./escape.ts";
 * quote('eve" x=1'); // '"eve\\" x=1"'
 * ```
 */
export function quote(value: string): string {
  return escapeUnsafe(JSON.stringify(value));
}
