/**
 * What a bearer token may do. A token file line is a token alone (it may do
 * everything) or a token followed by what it grants:
 *
 * ```text
 * 6f1c…  publish:news.> subscribe:news.* subscribe:$presence metrics
 * ```
 *
 * - `publish:PATTERN`: `Publish` on topics the pattern matches;
 * - `subscribe:PATTERN`: `Subscribe` to topics (or patterns) it covers;
 *   `SayHelloStreamReply` needs `subscribe:tick`; `ListSubscribers` needs
 *   `subscribe:$presence` (presence is what `$presence` publishes anyway);
 * - `metrics`: read `/metrics` and call `StreamInfo` (the stream's state,
 *   as counts: no event).
 *
 * Each kind may be given as often as needed. Patterns are the bus's own
 * ({@linkcode TopicPattern}), read as NATS reads them: `*` is exactly one
 * token, `>` one or more, so `subscribe:*` grants `news` but not
 * `news.sport`, and a subscription to every ordinary topic (no topic) needs
 * `subscribe:>`. `SayHello`, `SayHelloBidiStream` and
 * `SayHelloStream2` touch no topic: any accepted token may call them.
 *
 * @module
 */

import { BearerTokens, tokenOf } from "./tokens.ts";
import { ConfigError } from "../errors.ts";
import { quote } from "../escape.ts";
import { TopicPattern } from "../bus/topic_pattern.ts";
import { ALL_TOPICS, PRESENCE_TOPIC, TICK_TOPIC } from "../bus/hub_items.ts";

/** What a subscription to every ordinary topic (`ALL_TOPICS`) asks for. */
const EVERY_TOPIC = new TopicPattern(">");

/**
 * What one token may do; see the module doc for the grammar.
 *
 * @example
 * ```ts
 * import { Permissions } from "./permissions.ts";
 * const p = Permissions.parse(["publish:news.>"]);
 * p.mayPublish("news.sport"); // true
 * p.maySubscribe("news.sport"); // false
 * ```
 */
export class Permissions {
  /** Everything: a token listed alone. */
  static readonly ALL: Permissions = new Permissions(undefined);

  #publish?: readonly TopicPattern[];
  #subscribe?: readonly TopicPattern[];
  #metrics: boolean;

  private constructor(
    grants?: {
      publish: TopicPattern[];
      subscribe: TopicPattern[];
      metrics: boolean;
    },
  ) {
    this.#publish = grants?.publish;
    this.#subscribe = grants?.subscribe;
    this.#metrics = grants?.metrics ?? true;
  }

  /**
   * Reads the grants of a token line (the words after the token); none is
   * {@linkcode Permissions.ALL}. Throws {@linkcode ConfigError} naming the
   * grant that is wrong; a word that is no grant at all (a second token
   * during a rotation, say) is named by its place, never written out.
   */
  static parse(words: readonly string[]): Permissions {
    if (words.length === 0) return Permissions.ALL;
    const grants = {
      publish: [] as TopicPattern[],
      subscribe: [] as TopicPattern[],
      metrics: false,
    };
    for (const [i, word] of words.entries()) {
      const [, kind, pattern] = word.match(/^(publish|subscribe):(.+)$/) ??
        [];
      if (word === "metrics") grants.metrics = true;
      else if (kind === "publish" || kind === "subscribe") {
        try {
          grants[kind].push(new TopicPattern(pattern));
        } catch (error) {
          throw new ConfigError(
            `Invalid permission ${quote(word)}: ${(error as Error).message}`,
          );
        }
      } else if (isGrant(word)) {
        throw new ConfigError(
          `Invalid permission ${
            quote(word)
          }: expected publish:PATTERN, subscribe:PATTERN or metrics`,
        );
      } else {
        throw new ConfigError(
          `word ${
            i + 1
          } after the token is not a grant (expected publish:PATTERN, subscribe:PATTERN or metrics); a line holds one token: put a second one on a line of its own`,
        );
      }
    }
    return new Permissions(grants);
  }

  /** Whether this is everything (a token listed alone). */
  get all(): boolean {
    return this.#publish === undefined;
  }

  /** Whether `/metrics` may be read. */
  get metrics(): boolean {
    return this.#metrics;
  }

  /** Whether `Publish` on `topic` is allowed. */
  mayPublish(topic: string): boolean {
    return this.#publish?.some((p) => p.matches(topic)) ?? true;
  }

  /**
   * Whether a subscription to `filter` (a topic, a pattern,
   * {@linkcode ALL_TOPICS} for every ordinary topic, or `$presence`) is
   * allowed: one `subscribe` grant must cover all it can receive.
   */
  maySubscribe(filter: string): boolean {
    if (!this.#subscribe) return true;
    let wanted: TopicPattern;
    try {
      wanted = filter === ALL_TOPICS ? EVERY_TOPIC : new TopicPattern(filter);
    } catch {
      return true; // invalid: the service refuses it with INVALID_ARGUMENT
    }
    return this.#subscribe.some((p) => p.covers(wanted));
  }
}

/**
 * Whether `word` is written as a grant (`publish…`, `subscribe…`,
 * `metrics`), right or wrong: a word that is not may be a secret, and is
 * never written out.
 *
 * @example
 * ```ts
 * import { isGrant } from "./permissions.ts";
 * isGrant("publish:news.>"); // true
 * isGrant("6f1c0a9e2b"); // false
 * ```
 */
export function isGrant(word: string): boolean {
  return word === "metrics" || /^(publish|subscribe)(:|$)/.test(word);
}

/**
 * Why a call to `method` with `request` is refused under `permissions`:
 * `{ topic, needs }` naming the topic and the missing grant, or `undefined`
 * when it is allowed.
 *
 * @example
 * ```ts
 * import { Permissions, refusal } from "./permissions.ts";
 * refusal(
 *   "/helloworld.Greeter/Publish",
 *   { topic: "news" },
 *   Permissions.parse(["subscribe:news"]),
 * ); // { topic: "news", needs: "publish:news" }
 * ```
 */
export function refusal(
  method: string,
  request: unknown,
  permissions: Permissions,
): { topic: string; needs: string } | undefined {
  if (permissions.all) return undefined;
  const body = (request ?? {}) as { topic?: unknown; topics?: unknown };
  const subscribe = (topics: readonly string[]) => {
    for (const topic of topics) {
      if (!permissions.maySubscribe(topic)) {
        // Every ordinary topic is the pattern ">" in a grant.
        const wanted = topic === ALL_TOPICS ? EVERY_TOPIC.text : topic;
        return { topic: wanted, needs: `subscribe:${wanted}` };
      }
    }
  };
  switch (method) {
    case "/helloworld.Greeter/Publish": {
      const topic = String(body.topic ?? "");
      return permissions.mayPublish(topic)
        ? undefined
        : { topic, needs: `publish:${topic}` };
    }
    case "/helloworld.Greeter/Subscribe": {
      const topics = Array.isArray(body.topics) ? body.topics.map(String) : [];
      return subscribe(topics.length === 0 ? [ALL_TOPICS] : topics);
    }
    case "/helloworld.Greeter/SayHelloStreamReply":
      return subscribe([TICK_TOPIC]);
    case "/helloworld.Greeter/ListSubscribers":
      return subscribe([PRESENCE_TOPIC]);
    case "/helloworld.Greeter/StreamInfo":
      return permissions.metrics ? undefined : { topic: "", needs: "metrics" };
    default:
      return undefined;
  }
}

/**
 * Whether a method's request must be seen before the call may go on (its
 * topics decide).
 */
export function checksRequest(method: string): boolean {
  return method === "/helloworld.Greeter/Publish" ||
    method === "/helloworld.Greeter/Subscribe" ||
    method === "/helloworld.Greeter/SayHelloStreamReply" ||
    method === "/helloworld.Greeter/ListSubscribers" ||
    method === "/helloworld.Greeter/StreamInfo";
}

/**
 * One token line: its token and what it grants. Throws
 * {@linkcode ConfigError} naming the line by `number` (never its token, nor
 * any word that is not a grant) when a grant is wrong or the line starts
 * with one. A token file numbers its lines as an editor does, comments and
 * blank lines counted; a list of lines, from 1.
 *
 * @example
 * ```ts
 * import { parseTokenLine } from "./permissions.ts";
 * parseTokenLine("s3cret publish:news.>", 9).permissions.mayPublish("news.a"); // true
 * ```
 */
export function parseTokenLine(
  line: string,
  number: number,
): { token: string; permissions: Permissions } {
  const [token, ...words] = line.trim().split(/\s+/);
  if (isGrant(token)) {
    // Grants before the token, or a wrapped line of grants alone: never
    // a token with every permission, and the line's words unprinted.
    throw new ConfigError(
      `Token line ${number} starts with a grant (${
        token.split(":", 1)[0]
      }…) where its token should be: write the token first, then what it grants, all on one line`,
    );
  }
  try {
    return { token: tokenOf(token), permissions: Permissions.parse(words) };
  } catch (error) {
    throw new ConfigError(`Token line ${number}: ${(error as Error).message}`);
  }
}

/**
 * The accepted tokens and what each may do, read from token lines (see the
 * module doc). Immutable: a reload makes a new one.
 *
 * @example
 * ```ts
 * import { AccessList } from "./permissions.ts";
 * const list = new AccessList(["s3cret", "reader subscribe:news.>"]);
 * list.find("Bearer reader")?.mayPublish("news"); // false
 * ```
 */
export class AccessList {
  #tokens: BearerTokens;
  #permissions: Permissions[];
  /** Tokens shorter than {@linkcode MIN_TOKEN_BYTES}, for a warning. */
  readonly short: number;

  /**
   * Reads `lines`; throws {@linkcode ConfigError} naming the line number
   * (never its token, nor any word that is not a grant) when a grant is
   * wrong, a line starts with a grant, or there is no line.
   */
  constructor(lines: readonly string[]) {
    if (lines.length === 0) {
      throw new ConfigError("The token list holds no token");
    }
    const tokens: string[] = [];
    this.#permissions = lines.map((line, i) => {
      const parsed = parseTokenLine(line, i + 1);
      tokens.push(parsed.token);
      return parsed.permissions;
    });
    this.#tokens = new BearerTokens(tokens);
    this.short =
      tokens.filter((t) => new TextEncoder().encode(t).length < MIN_TOKEN_BYTES)
        .length;
  }

  /** How many tokens are accepted. */
  get size(): number {
    return this.#permissions.length;
  }

  /**
   * What the token in an `authorization` header value may do, or
   * `undefined` when it carries no accepted token (constant time).
   */
  find(authorization: string | undefined): Permissions | undefined {
    const index = this.#tokens.find(authorization);
    return index < 0 ? undefined : this.#permissions[index];
  }
}

/** Shortest token (in bytes) that start-up does not warn about. */
export const MIN_TOKEN_BYTES = 16;
