/**
 * The hub's live subscriptions, indexed twice: as sets for the fan-out (by
 * named topic, those of every ordinary topic, those with patterns), and in
 * id order for listings that page. Patterns are not indexed: they are tried
 * per event, and read through for listings.
 *
 * @module
 */

import { ALL_TOPICS } from "./hub_items.ts";
import { IdIndex } from "./id_index.ts";
import { isPattern } from "./topic_pattern.ts";

/** What the index needs of a subscription. */
export interface Indexed {
  /** Unique, ascending in the order of {@linkcode SubscriptionIndex.add}. */
  readonly id: number;
  /** Its normalised topic filter. */
  readonly topics: readonly string[];
  /** Whether its filter holds a pattern. */
  readonly patterned: boolean;
  /** Whether one of its patterns matches a topic split at `.`. */
  matchesPattern(tokens: readonly string[]): boolean;
}

/**
 * Live subscriptions by id, by topic, and in id order.
 *
 * @example
 * ```ts
 * import { SubscriptionIndex } from "./subscription_index.ts";
 * const index = new SubscriptionIndex();
 * const sub = (id: number, topics: string[]) => ({
 *   id,
 *   topics,
 *   patterned: false,
 *   matchesPattern: () => false,
 * });
 * index.add(sub(1, ["news"]));
 * index.add(sub(2, ["*"]));
 * [...index.listed("news")].map((s) => s.id); // [1, 2]
 * index.count("sport"); // 1
 * ```
 */
export class SubscriptionIndex<S extends Indexed> {
  #byId = new Map<number, S>();
  /** Subscribers of {@linkcode ALL_TOPICS}. */
  readonly everything: ReadonlySet<S> = new Set<S>();
  /** Subscribers with patterns (`news.*`), matched against each event. */
  readonly patterned: ReadonlySet<S> = new Set<S>();
  /** Subscribers by named topic. */
  #byTopic = new Map<string, Set<S>>();
  /** The same, in id order, for listings that page (fan-out uses the sets). */
  #listed = {
    all: new IdIndex<S>(),
    everything: new IdIndex<S>(),
    byTopic: new Map<string, IdIndex<S>>(),
    patterned: new IdIndex<S>(),
  };

  /** Live subscriptions. */
  get size(): number {
    return this.#byId.size;
  }

  /** Every live subscription, oldest first. */
  values(): IterableIterator<S> {
    return this.#byId.values();
  }

  /** The subscribers of named `topic` (not those of `*` or a pattern). */
  named(topic: string): ReadonlySet<S> | undefined {
    return this.#byTopic.get(topic);
  }

  /** Adds `s` under each of its topics. */
  add(s: S): void {
    this.#byId.set(s.id, s);
    this.#listed.all.add(s);
    if (s.patterned) {
      (this.patterned as Set<S>).add(s);
      this.#listed.patterned.add(s);
    }
    for (const topic of s.topics) {
      if (topic === ALL_TOPICS) {
        (this.everything as Set<S>).add(s);
        this.#listed.everything.add(s);
      } else if (!isPattern(topic)) {
        let set = this.#byTopic.get(topic);
        if (!set) this.#byTopic.set(topic, set = new Set());
        set.add(s);
        let index = this.#listed.byTopic.get(topic);
        if (!index) this.#listed.byTopic.set(topic, index = new IdIndex());
        index.add(s);
      }
    }
  }

  /** Removes `s` from every index. */
  delete(s: S): void {
    this.#byId.delete(s.id);
    (this.everything as Set<S>).delete(s);
    (this.patterned as Set<S>).delete(s);
    this.#listed.all.delete(s);
    this.#listed.everything.delete(s);
    this.#listed.patterned.delete(s);
    for (const topic of s.topics) {
      const set = this.#byTopic.get(topic);
      set?.delete(s);
      if (set?.size === 0) this.#byTopic.delete(topic);
      const index = this.#listed.byTopic.get(topic);
      index?.delete(s);
      if (index?.size === 0) this.#listed.byTopic.delete(topic);
    }
  }

  /**
   * The subscriptions with an id above `afterId` that receive `topic`
   * (every one when undefined; {@linkcode ALL_TOPICS}: those of every
   * ordinary topic), oldest first, read lazily: a page costs its own
   * length, but for an ordinary `topic` while patterns are in use, when
   * the patterned subscribers after `afterId` are read until the page is
   * full. Read it to its end or leave it before the index changes.
   */
  *listed(topic?: string, afterId = 0): Generator<S> {
    const { all, everything, byTopic } = this.#listed;
    if (topic === undefined) {
      yield* all.after(afterId);
    } else if (topic === ALL_TOPICS) {
      yield* everything.after(afterId);
    } else if (topic.startsWith("$")) {
      yield* byTopic.get(topic)?.after(afterId) ?? [];
    } else {
      // Named subscribers, those of every ordinary topic and those of a
      // pattern that matches it: three id orders.
      const named = byTopic.get(topic)?.after(afterId);
      yield* merged(
        merged(named, everything.after(afterId)),
        this.#byPattern(topic, afterId),
      );
    }
  }

  /**
   * How many subscriptions {@linkcode SubscriptionIndex.listed} would read:
   * O(1), plus the patterned subscribers for an ordinary topic.
   */
  count(topic?: string): number {
    const { all, everything, byTopic } = this.#listed;
    if (topic === undefined) return all.size;
    if (topic === ALL_TOPICS) return everything.size;
    const named = byTopic.get(topic)?.size ?? 0;
    if (topic.startsWith("$")) return named;
    let patterned = 0;
    for (const _ of this.#byPattern(topic)) patterned++;
    return named + everything.size + patterned;
  }

  /**
   * Subscribers (id above `afterId`, in id order) that receive `topic`
   * through a pattern only. Patterns are not indexed: this reads every
   * patterned subscriber.
   */
  *#byPattern(topic: string, afterId = 0): Generator<S> {
    if (this.patterned.size === 0) return;
    const named = this.#byTopic.get(topic);
    const tokens = topic.split(".");
    for (const s of this.#listed.patterned.after(afterId)) {
      if (!named?.has(s) && s.matchesPattern(tokens)) yield s;
    }
  }
}

/** Two id-ordered sequences as one, in id order. */
function* merged<T extends { readonly id: number }>(
  a: Iterator<T> | undefined,
  b: Iterator<T>,
): Generator<T> {
  let x = a?.next();
  let y = b.next();
  while (x && !x.done && !y.done) {
    if (x.value.id < y.value.id) {
      yield x.value;
      x = a!.next();
    } else {
      yield y.value;
      y = b.next();
    }
  }
  for (; x && !x.done; x = a!.next()) yield x.value;
  for (; !y.done; y = b.next()) yield y.value;
}
