/**
 * Wildcard patterns (`news.*`, `*.sport`, `news.>`) indexed by their
 * tokens, as nats-server's sublist indexes subjects: a tree whose edges are
 * literal tokens, `*` or `>`, so that finding the patterns a topic matches
 * follows only the branches its tokens name. An event's cost grows with the
 * patterns that can match it, not with every pattern in use: before, each
 * event was tried against every patterned subscriber, and 2,000
 * subscriptions of 64 unique patterns each raised every publish's latency
 * from 2.5 ms to 16.6 ms (`BENCH_ONLY=patterns deno task bench`).
 *
 * @module
 */

import { IdIndex } from "./id_index.ts";

/** One level of the tree: what follows a prefix of tokens. */
interface Node<S extends { readonly id: number }> {
  /** Patterns going on with a literal token. */
  literal?: Map<string, Node<S>>;
  /** Patterns going on with `*`. */
  star?: Node<S>;
  /**
   * The subscriptions of the pattern ending here with `>` (one or more
   * tokens), in id order: the fan-out visits them
   * ({@linkcode IdIndex.forEach}), listings page through them.
   */
  rest?: IdIndex<S>;
  /** The same for the pattern ending here. */
  end?: IdIndex<S>;
}

/**
 * Subscriptions by wildcard pattern. Patterns are taken as valid (the hub
 * checks them): `.`-separated tokens, `*` a whole token, `>` a whole last
 * token. Topics starting with `$` are the caller's to keep out (a wildcard
 * never matches them).
 *
 * @example
 * ```ts
 * import { PatternIndex } from "./pattern_index.ts";
 * const index = new PatternIndex<{ id: number }>();
 * const ann = { id: 1 };
 * index.add("news.*", ann);
 * index.add("sport.>", { id: 2 });
 * const found: number[] = [];
 * index.match(["news", "today"], (subscribers) => {
 *   subscribers.forEach((s) => found.push(s.id));
 * });
 * found; // [1]
 * index.delete("news.*", ann);
 * index.size; // 1
 * ```
 */
export class PatternIndex<S extends { readonly id: number }> {
  #root: Node<S> = {};
  #size = 0;

  /** Distinct patterns held. */
  get size(): number {
    return this.#size;
  }

  /** Adds `s` under `pattern` (ids must ascend: the hub numbers subscriptions as they come). */
  add(pattern: string, s: S): void {
    let node = this.#root;
    const tokens = pattern.split(".");
    const last = tokens.length - 1;
    for (let i = 0; i < last; i++) node = child(node, tokens[i]);
    const key = tokens[last] === ">" ? "rest" : "end";
    if (key === "end") node = child(node, tokens[last]);
    let subscribers = node[key];
    if (!subscribers) {
      subscribers = node[key] = new IdIndex();
      this.#size++;
    }
    subscribers.add(s);
  }

  /** Removes `s` from `pattern`; a pattern left with none goes, and its empty branch with it. */
  delete(pattern: string, s: S): void {
    const tokens = pattern.split(".");
    const last = tokens.length - 1;
    const path: [Node<S>, string][] = [];
    let node: Node<S> | undefined = this.#root;
    const steps = tokens[last] === ">" ? last : tokens.length;
    for (let i = 0; i < steps && node; i++) {
      path.push([node, tokens[i]]);
      node = tokens[i] === "*" ? node.star : node.literal?.get(tokens[i]);
    }
    if (!node) return;
    const key = tokens[last] === ">" ? "rest" : "end";
    const subscribers = node[key];
    if (!subscribers) return;
    subscribers.delete(s);
    if (subscribers.size > 0) return;
    node[key] = undefined;
    this.#size--;
    // Prunes the branches left empty, deepest first.
    for (let i = path.length - 1; i >= 0 && isEmpty(node!); i--) {
      const [parent, token] = path[i];
      if (token === "*") parent.star = undefined;
      else {
        parent.literal!.delete(token);
        if (parent.literal!.size === 0) parent.literal = undefined;
      }
      node = parent;
    }
  }

  /**
   * Calls `visit` with the subscribers of each pattern matching `tokens` (a
   * topic split at `.`), once per pattern: a subscription with two matching
   * patterns is visited twice, and it is the caller's to take it once.
   */
  match(
    tokens: readonly string[],
    visit: (subscribers: IdIndex<S>) => void,
  ): void {
    if (this.#size > 0) walk(this.#root, tokens, 0, visit);
  }
}

/** The node after `node` on `token`, made if missing. */
function child<S extends { readonly id: number }>(
  node: Node<S>,
  token: string,
): Node<S> {
  if (token === "*") return node.star ??= {};
  const literal = node.literal ??= new Map();
  let next = literal.get(token);
  if (!next) literal.set(token, next = {});
  return next;
}

function isEmpty<S extends { readonly id: number }>(node: Node<S>): boolean {
  return !node.literal && !node.star && !node.rest && !node.end;
}

/** Visits the patterns under `node` that match `tokens` from `i` on. */
function walk<S extends { readonly id: number }>(
  node: Node<S>,
  tokens: readonly string[],
  i: number,
  visit: (subscribers: IdIndex<S>) => void,
): void {
  if (i === tokens.length) {
    if (node.end) visit(node.end);
    return;
  }
  if (node.rest) visit(node.rest); // ">" takes the one or more tokens left
  const literal = node.literal?.get(tokens[i]);
  if (literal) walk(literal, tokens, i + 1, visit);
  if (node.star) walk(node.star, tokens, i + 1, visit);
}
