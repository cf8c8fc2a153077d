/**
 * Items in ascending id order, for listings that page: reading a page after
 * an id costs a binary search and the page, not a scan of every item.
 *
 * @module
 */

/** Compact once this many removed slots are kept, and more than live ones. */
const COMPACT_AT = 64;

/**
 * Items with ascending ids, added in that order (the hub numbers its
 * subscriptions as they come). Removal leaves a hole that a later compaction
 * takes out, so adding and removing cost O(1) amortised and listing after an
 * id O(log n + what is read).
 *
 * @example
 * ```ts
 * import { IdIndex } from "./id_index.ts";
 * const index = new IdIndex<{ id: number }>();
 * const [a, b, c] = [{ id: 1 }, { id: 2 }, { id: 3 }];
 * index.add(a); index.add(b); index.add(c);
 * index.delete(b);
 * [...index.after(1)].map((item) => item.id); // [3]
 * ```
 */
export class IdIndex<T extends { readonly id: number }> {
  #items: (T | undefined)[] = [];
  #ids: number[] = [];
  #live = 0;
  /** A {@linkcode IdIndex.forEach} is under way: removals leave holes, compacted after it. */
  #visiting = 0;

  /** Items held. */
  get size(): number {
    return this.#live;
  }

  /** Adds `item`, whose id must be above every id added before. */
  add(item: T): void {
    const last = this.#ids.at(-1);
    if (last !== undefined && item.id <= last) {
      throw new RangeError(
        `Cannot index id ${item.id}: ids must ascend (last was ${last})`,
      );
    }
    if (this.#items.length === 0) {
      // Sized exactly: a first push reserves 17 slots, and most patterns
      // (and many topics) are one subscription's.
      this.#items = [item];
      this.#ids = [item.id];
    } else {
      this.#items.push(item);
      this.#ids.push(item.id);
    }
    this.#live++;
  }

  /** Removes `item`; a no-op when it is not held. */
  delete(item: T): void {
    const at = this.#find(item.id);
    if (this.#ids[at] !== item.id || this.#items[at] !== item) return;
    this.#items[at] = undefined;
    this.#live--;
    if (this.#visiting === 0) this.#compactIfHoly();
  }

  /**
   * Calls `visit` with each item in id order: the fan-out's loop, without
   * an iterator. An item removed meanwhile and not visited yet is skipped,
   * as a `Set`'s loop skips it; one added meanwhile is visited.
   */
  forEach(visit: (item: T) => void): void {
    const items = this.#items;
    this.#visiting++;
    try {
      for (let at = 0; at < items.length; at++) {
        const item = items[at];
        if (item !== undefined) visit(item);
      }
    } finally {
      if (--this.#visiting === 0) this.#compactIfHoly();
    }
  }

  /** The items with an id above `id`, in id order; add or remove none while reading. */
  *after(id = 0): Generator<T> {
    for (let at = this.#find(id + 1); at < this.#items.length; at++) {
      const item = this.#items[at];
      if (item !== undefined) yield item;
    }
  }

  /** The first slot whose id is at least `id`. */
  #find(id: number): number {
    let low = 0;
    let high = this.#ids.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#ids[middle] < id) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  #compactIfHoly(): void {
    const holes = this.#items.length - this.#live;
    if (holes >= COMPACT_AT && holes > this.#live) this.#compact();
  }

  #compact(): void {
    const items: T[] = [];
    for (const item of this.#items) if (item !== undefined) items.push(item);
    this.#items = items;
    this.#ids = items.map((item) => item.id);
  }
}

/**
 * Several id-ordered sequences as one, in id order, each id once (an item
 * in two of them, such as a subscription two of whose patterns match a
 * topic, comes once). Reads each lazily: a page of `n` costs about
 * `n log k` for `k` sequences.
 *
 * @example
 * ```ts
 * import { mergeById } from "./id_index.ts";
 * const ids = (...list: number[]) => list.map((id) => ({ id })).values();
 * [...mergeById([ids(1, 4, 6), ids(2, 4), ids(3)])].map((item) => item.id); // [1, 2, 3, 4, 6]
 * ```
 */
export function* mergeById<T extends { readonly id: number }>(
  sources: Iterable<Iterator<T>>,
): Generator<T> {
  // A binary heap of each sequence's next item, the smallest id on top.
  const heap: { item: T; rest: Iterator<T> }[] = [];
  const less = (a: number, b: number) => heap[a].item.id < heap[b].item.id;
  const swap = (a: number, b: number) => {
    [heap[a], heap[b]] = [heap[b], heap[a]];
  };
  const down = (at: number) => {
    for (;;) {
      const left = 2 * at + 1;
      const right = left + 1;
      let least = at;
      if (left < heap.length && less(left, least)) least = left;
      if (right < heap.length && less(right, least)) least = right;
      if (least === at) return;
      swap(at, least);
      at = least;
    }
  };
  for (const rest of sources) {
    const next = rest.next();
    if (next.done) continue;
    heap.push({ item: next.value, rest });
    for (let at = heap.length - 1; at > 0 && less(at, (at - 1) >> 1);) {
      swap(at, (at - 1) >> 1);
      at = (at - 1) >> 1;
    }
  }
  let last: number | undefined;
  while (heap.length > 0) {
    const top = heap[0];
    if (top.item.id !== last) {
      last = top.item.id;
      yield top.item;
    }
    const next = top.rest.next();
    if (next.done) {
      heap[0] = heap[heap.length - 1];
      heap.pop();
    } else top.item = next.value;
    down(0);
  }
}
