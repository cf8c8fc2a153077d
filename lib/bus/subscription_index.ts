/**
 * The hub's live subscriptions, indexed twice: as sets for the fan-out (by
 * named topic, those of every ordinary topic, and by wildcard pattern in a
 * tree of tokens, {@linkcode PatternIndex}), and in id order for listings
 * that page. An event's cost, and a listing's, grows with the
 * subscriptions that can receive its topic, not with every pattern in use.
 *
 * @module
 */

import { ALL_TOPICS } from "./hub_items.ts";
import { IdIndex, mergeById } from "./id_index.ts";
import { PatternIndex } from "./pattern_index.ts";
import { isPattern } from "./topic_pattern.ts";

/** What the index needs of a subscription. */
export interface Indexed {
  /** Unique, ascending in the order of {@linkcode SubscriptionIndex.add}. */
  readonly id: number;
  /** Its normalised topic filter. */
  readonly topics: readonly string[];
}

/**
 * Live subscriptions by id, by topic, by pattern, and in id order.
 *
 * @example
 * ```ts
 * import { SubscriptionIndex } from "./subscription_index.ts";
 * const index = new SubscriptionIndex();
 * index.add({ id: 1, topics: ["news"] });
 * index.add({ id: 2, topics: ["*"] });
 * index.add({ id: 3, topics: ["news.*", "news"] });
 * [...index.listed("news")].map((s) => s.id); // [1, 2, 3]
 * index.count("news.sport"); // 2
 * ```
 */
export class SubscriptionIndex<S extends Indexed> {
  #byId = new Map<number, S>();
  /** Subscribers of {@linkcode ALL_TOPICS}. */
  readonly everything: ReadonlySet<S> = new Set<S>();
  /** Subscribers by named topic. */
  #byTopic = new Map<string, Set<S>>();
  /** Subscribers by wildcard pattern (`news.*`), a set and an id order each. */
  #patterns = new PatternIndex<S>();
  /** The others in id order, for listings that page (fan-out uses the sets). */
  #listed = {
    all: new IdIndex<S>(),
    everything: new IdIndex<S>(),
    byTopic: new Map<string, IdIndex<S>>(),
  };

  /** Live subscriptions. */
  get size(): number {
    return this.#byId.size;
  }

  /** Distinct wildcard patterns in use. */
  get patterns(): number {
    return this.#patterns.size;
  }

  /** Every live subscription, oldest first. */
  values(): IterableIterator<S> {
    return this.#byId.values();
  }

  /** The subscribers of named `topic` (not those of `*` or a pattern). */
  named(topic: string): ReadonlySet<S> | undefined {
    return this.#byTopic.get(topic);
  }

  /**
   * Calls `visit` with the subscribers of each pattern that matches `topic`
   * split at `.` (`$` topics match none). A subscription two of whose
   * patterns match, or that names the topic too, is visited more than once:
   * the caller takes it once.
   */
  matching(
    tokens: readonly string[],
    visit: (subscribers: IdIndex<S>) => void,
  ): void {
    if (!tokens[0]?.startsWith("$")) this.#patterns.match(tokens, visit);
  }

  /** Adds `s` under each of its topics. */
  add(s: S): void {
    this.#byId.set(s.id, s);
    this.#listed.all.add(s);
    for (const topic of s.topics) {
      if (topic === ALL_TOPICS) {
        (this.everything as Set<S>).add(s);
        this.#listed.everything.add(s);
      } else if (isPattern(topic)) {
        this.#patterns.add(topic, s);
      } else {
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
    this.#listed.all.delete(s);
    this.#listed.everything.delete(s);
    for (const topic of s.topics) {
      if (topic !== ALL_TOPICS && isPattern(topic)) {
        this.#patterns.delete(topic, s);
        continue;
      }
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
   * ordinary topic), oldest first, each once, read lazily from id orders:
   * a page costs its own length (times the log of the id orders merged:
   * the topic's, every topic's, and each matching pattern's). Read it to
   * its end or leave it before the index changes.
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
      yield* mergeById(this.#receivers(topic, afterId));
    }
  }

  /**
   * How many subscriptions {@linkcode SubscriptionIndex.listed} would read:
   * O(1) when no pattern matches `topic`, else a read of those it matches.
   */
  count(topic?: string): number {
    const { all, everything, byTopic } = this.#listed;
    if (topic === undefined) return all.size;
    if (topic === ALL_TOPICS) return everything.size;
    const named = byTopic.get(topic)?.size ?? 0;
    if (topic.startsWith("$")) return named;
    const sources = this.#receivers(topic);
    if (sources.length <= 2) return named + everything.size;
    let count = 0;
    for (const _ of mergeById(sources)) count++;
    return count;
  }

  /**
   * The id orders of what receives ordinary `topic` after `afterId`: its
   * named subscribers, those of every topic, and each matching pattern's.
   */
  #receivers(topic: string, afterId = 0): Iterator<S>[] {
    const { everything, byTopic } = this.#listed;
    const sources: Iterator<S>[] = [
      byTopic.get(topic)?.after(afterId) ?? [].values(),
      everything.after(afterId),
    ];
    this.#patterns.match(
      topic.split("."),
      (subscribers) => sources.push(subscribers.after(afterId)),
    );
    return sources;
  }
}
