/**
 * Topic patterns, NATS-style: topics are `.`-separated tokens, none of them
 * empty (`news.`, `.news` and `a..b` are no topics, as in NATS); in a pattern
 * `*` stands for exactly one token and `>` (last only) for one or more.
 * `news.*` matches `news.sport` but not `news` nor `news.sport.today`;
 * `news.>` matches both of the latter. One matcher serves the hub's topic
 * filters and the server's permissions.
 *
 * A pattern with a wildcard never matches a topic starting with `$` (name
 * `$presence` to get it), so that the server's own topics stay its own. A
 * lone `*` is one token (`news`, not `news.sport`) and a lone `>` every
 * ordinary topic, as in NATS. (A subscription's filter `*` is the hub's
 * "every ordinary topic", `ALL_TOPICS`, which the hub handles before any
 * pattern.)
 *
 * @module
 */

import { InvalidArgumentError } from "../errors.ts";
import { quote } from "../escape.ts";

/** Longest topic or pattern accepted, in characters. */
export const MAX_TOPIC_LENGTH = 128;

/**
 * The characters a topic may hold, as a regular expression character class's
 * inside: letters, digits and `. _ - / :`.
 */
export const TOPIC_CHARACTERS = "A-Za-z0-9._\\-/:";

/** One or more of the characters a topic or pattern may hold. */
const CHARACTERS = new RegExp(`^[${TOPIC_CHARACTERS}*>]+$`);

/**
 * Whether `text` has an empty token: it starts or ends with `.`, or holds
 * `..` (NATS forbids empty tokens; `news.*` must not match `news.`).
 *
 * @example
 * ```ts
 * import { hasEmptyToken } from "./topic_pattern.ts";
 * hasEmptyToken("news."); // true
 * hasEmptyToken("news.sport"); // false
 * ```
 */
export function hasEmptyToken(text: string): boolean {
  return text.startsWith(".") || text.endsWith(".") || text.includes("..");
}

/**
 * Whether `filter` holds a wildcard token (`*` or `>`), as opposed to
 * naming one topic.
 *
 * @example
 * ```ts
 * import { isPattern } from "./topic_pattern.ts";
 * isPattern("news.*"); // true
 * isPattern("news"); // false
 * ```
 */
export function isPattern(filter: string): boolean {
  return filter.split(".").some((token) => token === "*" || token === ">");
}

/**
 * A compiled pattern (or plain topic). {@linkcode TopicPattern.matches}
 * tells whether a topic is one it stands for;
 * {@linkcode TopicPattern.covers} whether every topic another pattern
 * stands for is one of its own.
 *
 * @example
 * ```ts
 * import { TopicPattern } from "./topic_pattern.ts";
 * const news = new TopicPattern("news.>");
 * news.matches("news.sport.today"); // true
 * news.matches("news"); // false
 * news.covers(new TopicPattern("news.*")); // true
 * ```
 */
export class TopicPattern {
  /** The pattern as written. */
  readonly text: string;
  /** Whether it holds a wildcard. */
  readonly wild: boolean;
  #tokens: readonly string[];

  /**
   * Compiles `text`; throws {@linkcode InvalidArgumentError} naming what is
   * wrong when it is not a valid pattern: 1 to 128 letters, digits or
   * `. _ - / : * >` in non-empty `.`-separated tokens, where `*` and `>`
   * are whole tokens and `>` comes last (or `$presence`-style server
   * topics, taken literally). The message quotes `text` escaped: it is
   * what a client sent.
   */
  constructor(text: string) {
    this.text = text;
    this.#tokens = text.split(".");
    this.wild = isPattern(text);
    if (text.startsWith("$") && !this.wild) return; // the server's topics
    const bad = text.length > MAX_TOPIC_LENGTH || !CHARACTERS.test(text) ||
      hasEmptyToken(text) ||
      this.#tokens.some((token, i) =>
        (token.includes("*") && token !== "*") ||
        (token.includes(">") && (token !== ">" || i < this.#tokens.length - 1))
      );
    if (bad) {
      throw new InvalidArgumentError(
        `Invalid topic pattern ${
          quote(text.slice(0, MAX_TOPIC_LENGTH + 12))
        }: use 1 to ${MAX_TOPIC_LENGTH} letters, digits or . _ - / : in "."-separated tokens, none empty, with "*" for one token and a final ">" for one or more`,
      );
    }
  }

  /**
   * Whether `topic` is one this pattern stands for (a wildcard never
   * stands for an empty token: `news.*` does not match `news.`).
   */
  matches(topic: string): boolean {
    if (!this.wild) return topic === this.text;
    return !hasEmptyToken(topic) && this.matchesTokens(topic.split("."));
  }

  /**
   * {@linkcode TopicPattern.matches} on a topic already split at `.` (the
   * hub splits each event's topic once for all its patterns).
   */
  matchesTokens(topic: readonly string[]): boolean {
    if (!this.wild) return topic.join(".") === this.text;
    if (topic[0]?.startsWith("$")) return false;
    const tokens = this.#tokens;
    for (let i = 0; i < tokens.length; i++) {
      if (tokens[i] === ">") return topic.length > i;
      if (i >= topic.length) return false;
      if (tokens[i] !== "*" && tokens[i] !== topic[i]) return false;
    }
    return topic.length === tokens.length;
  }

  /**
   * Whether every topic `other` matches is one this pattern matches too
   * (a permission `news.>` covers a subscription to `news.*`).
   */
  covers(other: TopicPattern): boolean {
    if (!other.wild) return this.matches(other.text);
    if (!this.wild) return false; // one topic cannot cover many
    const mine = this.#tokens;
    const theirs = other.#tokens;
    for (let i = 0; i < mine.length; i++) {
      if (mine[i] === ">") return theirs.length > i;
      if (i >= theirs.length || theirs[i] === ">") return false;
      if (mine[i] !== "*" && mine[i] !== theirs[i]) return false;
    }
    return theirs.length === mine.length;
  }
}
