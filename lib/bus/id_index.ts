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
    this.#items.push(item);
    this.#ids.push(item.id);
    this.#live++;
  }

  /** Removes `item`; a no-op when it is not held. */
  delete(item: T): void {
    const at = this.#find(item.id);
    if (this.#ids[at] !== item.id || this.#items[at] !== item) return;
    this.#items[at] = undefined;
    this.#live--;
    const holes = this.#items.length - this.#live;
    if (holes >= COMPACT_AT && holes > this.#live) this.#compact();
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

  #compact(): void {
    const items: T[] = [];
    for (const item of this.#items) if (item !== undefined) items.push(item);
    this.#items = items;
    this.#ids = items.map((item) => item.id);
  }
}
