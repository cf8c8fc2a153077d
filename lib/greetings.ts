/**
 * The words the Greeter says, and what it accepts as a name.
 *
 * @module
 */

import { InvalidArgumentError } from "./errors.ts";
import { quote } from "./escape.ts";

/** How many timer messages `SayHelloStream2` sends between first and goodbye. */
export const STREAM2_TIMERS = 5;

/** The longest name accepted, in characters (Unicode code points). */
export const MAX_NAME_LENGTH = 256;

// C0/C1 controls and line/paragraph separators: they would forge log lines.
// deno-lint-ignore no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u;

// Characters that reorder text or do not show: with one, a name can pass for
// another in presence listings and logs ("ann" and "an\u200bn"). Bidi
// controls, zero-width and other invisible characters; ZWNJ and ZWJ only
// where they join nothing (at an end, or beside ASCII), since Persian, Indic
// scripts and emoji sequences need them between their own characters.
const DECEPTIVE =
  /[\u00ad\u034f\u061c\u115f\u1160\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0]|^[\u200c\u200d]|[\u200c\u200d]$|[\u0020-\u007e][\u200c\u200d]|[\u200c\u200d][\u0020-\u007e]/u;

/**
 * Checks a caller's name and returns it; throws
 * {@linkcode InvalidArgumentError} naming what is wrong otherwise.
 *
 * @example
 * ```ts
 * import { validateName } from "./greetings.ts";
 * validateName("world"); // "world"
 * ```
 */
export function validateName(name: string): string {
  if (name.length === 0) {
    throw new InvalidArgumentError(
      'Name must not be empty: send a HelloRequest with "name" set',
    );
  }
  const length = [...name].length;
  if (length > MAX_NAME_LENGTH) {
    throw new InvalidArgumentError(
      `Name is ${length} characters long: at most ${MAX_NAME_LENGTH} are accepted`,
    );
  }
  if (UNPRINTABLE.test(name)) {
    throw new InvalidArgumentError(
      `Name ${quote(name)} contains a control character`,
    );
  }
  const deceptive = name.match(DECEPTIVE)?.[0];
  if (deceptive !== undefined) {
    const c = [...deceptive].find((c) => !/^[\u0020-\u007e]$/.test(c))!;
    throw new InvalidArgumentError(
      `Name ${quote(name)} contains U+${
        c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")
      }, an invisible or text-direction character that would let it pass for another name: remove it`,
    );
  }
  return name;
}

/**
 * The unary reply: `Hello, NAME!`.
 *
 * @example
 * ```ts
 * import { helloMessage } from "./greetings.ts";
 * helloMessage("you"); // "Hello, you!"
 * ```
 */
export function helloMessage(name: string): string {
  return `Hello, ${name}!`;
}

/**
 * The hub tick as one subscriber reads it:
 * `hello NAME, it's YYYY-MM-DD HH:MM:SS` in the server's local time. `time`
 * may be epoch milliseconds, so a fan-out allocates no `Date` per subscriber.
 *
 * @example
 * ```ts
 * import { tickMessage } from "./greetings.ts";
 * tickMessage("you", new Date(2024, 0, 2, 3, 4, 5)); // "hello you, it's 2024-01-02 03:04:05"
 * ```
 */
export function tickMessage(name: string, time: Date | number): string {
  return tickPrefix(name) + formatLocalTime(time);
}

/** What a tick says to `name` before the time: `hello NAME, it's `. */
export function tickPrefix(name: string): string {
  return `hello ${name}, it's `;
}

// One tick reaches every subscriber with the same second: format it once.
let cachedSecond = NaN;
let cachedText = "";

/**
 * Formats a date (or epoch milliseconds) as `YYYY-MM-DD HH:MM:SS` in local
 * time (Python's `%Y-%m-%d %H:%M:%S`).
 */
export function formatLocalTime(date: Date | number): string {
  const ms = typeof date === "number" ? date : date.getTime();
  const second = Math.floor(ms / 1000);
  if (second === cachedSecond) return cachedText;
  const time = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  cachedText = `${time.getFullYear()}-${p(time.getMonth() + 1)}-${
    p(time.getDate())
  } ${p(time.getHours())}:${p(time.getMinutes())}:${p(time.getSeconds())}`;
  cachedSecond = second;
  return cachedText;
}
