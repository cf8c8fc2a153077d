/**
 * Counts by key against a limit: subscriptions per peer address, and the
 * server-wide totals (subscriptions, connections). One process's
 * {@linkcode LocalTally}; or, for a process whose servers run in several
 * workers, a {@linkcode SharedTally} over one `SharedArrayBuffer`, so that a
 * peer whose connections land on different workers is still one peer.
 *
 * @module
 */

import { CapacityError } from "../errors.ts";

/** Counts by key, each taken against a limit. */
export interface Tally {
  /** Counts one more of `key` unless it holds `limit` already; whether it did. */
  take(key: string, limit: number): boolean;
  /** Counts one fewer of `key` (one taken before). */
  give(key: string): void;
  /** How many of `key` are counted now. */
  count(key: string): number;
  /**
   * Runs `steps` with this tally as one step: no other thread's count of
   * it comes between them (several keys taken together, or none).
   */
  locked<T>(steps: (tally: Tally) => T): T;
}

/**
 * A tally of one thread.
 *
 * @example
 * ```ts
 * import { LocalTally } from "./tally.ts";
 * const tally = new LocalTally();
 * tally.take("10.0.0.1", 1); // true
 * tally.take("10.0.0.1", 1); // false: at its limit
 * tally.give("10.0.0.1");
 * tally.count("10.0.0.1"); // 0
 * ```
 */
export class LocalTally implements Tally {
  #counts = new Map<string, number>();

  /** Counts one more of `key` unless it holds `limit` already. */
  take(key: string, limit: number): boolean {
    const count = this.#counts.get(key) ?? 0;
    if (count >= limit) return false;
    this.#counts.set(key, count + 1);
    return true;
  }

  /** Counts one fewer of `key`, forgetting it at 0. */
  give(key: string): void {
    const count = (this.#counts.get(key) ?? 0) - 1;
    if (count <= 0) this.#counts.delete(key);
    else this.#counts.set(key, count);
  }

  /** How many of `key` are counted. */
  count(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  /** Runs `steps` (one thread: nothing comes between them anyway). */
  locked<T>(steps: (tally: Tally) => T): T {
    return steps(this);
  }
}

/** A shared tally's memory, as its workers are handed it. */
export interface SharedTallyMemory {
  /** The lock, the rows in use, then the rows. */
  readonly buffer: SharedArrayBuffer;
  /** Rows (a power of two). */
  readonly rows: number;
  /** Counts per row: one per worker. */
  readonly columns: number;
}

const LOCK = 0;
const USED = 1;
const HEADER = 2;
/** A row: two hashes of its key, then one count per column. */
const KEY_FIELDS = 2;

/** Most rows a shared tally is made with (each `4 × (2 + columns)` bytes). */
const MOST_ROWS = 1 << 20;

/** Two 32-bit FNV-1a hashes of `key` (different bases); the first never 0. */
function hashes(key: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  return [(a | 1) >>> 0 | 0, b | 0];
}

/**
 * A tally shared by a process's workers: one row per key, one count per
 * worker in it (so that a worker that dies can be taken out, its counts
 * with it), under a spin lock held for a few array reads and writes. Keys
 * are told apart by two 32-bit hashes (64 bits).
 *
 * @example
 * ```ts
 * import { SharedTally } from "./tally.ts";
 * const memory = SharedTally.allocate(100, 2);
 * const worker0 = new SharedTally(memory, 0);
 * const worker1 = new SharedTally(memory, 1); // in another worker
 * worker0.take("10.0.0.1", 2); // true
 * worker1.take("10.0.0.1", 2); // true
 * worker1.take("10.0.0.1", 2); // false: one peer, two workers
 * SharedTally.release(memory, 0); // worker 0 died
 * worker1.count("10.0.0.1"); // 1
 * ```
 */
export class SharedTally implements Tally {
  #table: Int32Array;
  #mask: number;
  #width: number;
  #column: number;
  #columns: number;
  /** How deep in `locked` this thread is (the lock is taken once). */
  #depth = 0;

  /** Memory for at least `keys` keys at once, counted by `columns` workers. */
  static allocate(keys: number, columns: number): SharedTallyMemory {
    let rows = 16;
    while (rows < 2 * keys && rows < MOST_ROWS) rows *= 2;
    const width = KEY_FIELDS + columns;
    return {
      buffer: new SharedArrayBuffer(4 * (HEADER + rows * width)),
      rows,
      columns,
    };
  }

  /**
   * Takes `column`'s counts out (its worker died): the main thread calls it,
   * and takes the lock from that worker if it died holding it.
   */
  static release(memory: SharedTallyMemory, column: number): void {
    new SharedTally(memory, column).#release();
  }

  /** Counts in `column` (one per worker) of the tally in `memory`. */
  constructor(memory: SharedTallyMemory, column: number) {
    this.#table = new Int32Array(memory.buffer);
    this.#mask = memory.rows - 1;
    this.#columns = memory.columns;
    this.#width = KEY_FIELDS + memory.columns;
    this.#column = column;
  }

  /**
   * Counts one more of `key` in this worker's column unless all columns
   * together hold `limit` already. Throws {@linkcode CapacityError} if the
   * table is full (it has room for twice the keys it was made for).
   */
  take(key: string, limit: number): boolean {
    const [a, b] = hashes(key);
    return this.#locked(() => {
      const table = this.#table;
      const row = this.#find(a, b);
      if (table[row] === 0) {
        if (limit <= 0) return false;
        if (table[USED] >= (this.#mask + 1) * 0.75) {
          throw new CapacityError(
            `The process tracks ${
              table[USED]
            } peers and counts, all it has room for; retry later`,
          );
        }
        table[row] = a;
        table[row + 1] = b;
        table[USED]++;
      } else if (this.#sum(row) >= limit) return false;
      table[row + KEY_FIELDS + this.#column]++;
      return true;
    });
  }

  /** Counts one fewer of `key` in this worker's column; the row goes at 0. */
  give(key: string): void {
    const [a, b] = hashes(key);
    this.#locked(() => {
      const table = this.#table;
      const row = this.#find(a, b);
      if (table[row] === 0) return;
      const at = row + KEY_FIELDS + this.#column;
      if (table[at] > 0) table[at]--;
      if (this.#sum(row) === 0) this.#delete(row);
    });
  }

  /** How many of `key` all columns hold. */
  count(key: string): number {
    const [a, b] = hashes(key);
    return this.#locked(() => {
      const row = this.#find(a, b);
      return this.#table[row] === 0 ? 0 : this.#sum(row);
    });
  }

  /** How many of `key` each column holds. */
  counts(key: string): number[] {
    const [a, b] = hashes(key);
    return this.#locked(() => {
      const row = this.#find(a, b);
      const counts: number[] = [];
      for (let c = 0; c < this.#columns; c++) {
        counts.push(
          this.#table[row] === 0 ? 0 : this.#table[row + KEY_FIELDS + c],
        );
      }
      return counts;
    });
  }

  #release(): void {
    const table = this.#table;
    // A worker that died holding the lock left it so: taken from it.
    Atomics.compareExchange(table, LOCK, this.#column + 1, 0);
    this.#locked(() => {
      const rows: Int32Array[] = [];
      for (let r = 0; r <= this.#mask; r++) {
        const row = HEADER + r * this.#width;
        if (table[row] === 0) continue;
        table[row + KEY_FIELDS + this.#column] = 0;
        if (this.#sum(row) > 0) {
          rows.push(table.slice(row, row + this.#width));
        }
        table.fill(0, row, row + this.#width);
      }
      table[USED] = 0;
      for (const kept of rows) {
        const row = this.#find(kept[0], kept[1]);
        table.set(kept, row);
        table[USED]++;
      }
    });
  }

  /** The row of hashes `a`, `b`: theirs, or the empty one where they would go. */
  #find(a: number, b: number): number {
    const table = this.#table;
    for (let r = a & this.#mask;; r = (r + 1) & this.#mask) {
      const row = HEADER + r * this.#width;
      if (table[row] === 0 || (table[row] === a && table[row + 1] === b)) {
        return row;
      }
    }
  }

  #sum(row: number): number {
    let sum = 0;
    for (let c = 0; c < this.#columns; c++) {
      sum += this.#table[row + KEY_FIELDS + c];
    }
    return sum;
  }

  /** Empties `row`, moving later rows of its run back (no tombstones). */
  #delete(row: number): void {
    const table = this.#table;
    const width = this.#width;
    const mask = this.#mask;
    let hole = (row - HEADER) / width;
    table.fill(0, row, row + width);
    table[USED]--;
    for (let r = (hole + 1) & mask;; r = (r + 1) & mask) {
      const at = HEADER + r * width;
      if (table[at] === 0) return;
      const home = table[at] & mask;
      // Move it back if its home is not in (hole, r] (cyclically).
      const between = hole <= r
        ? home > hole && home <= r
        : home > hole || home <= r;
      if (between) continue;
      const to = HEADER + hole * width;
      table.copyWithin(to, at, at + width);
      table.fill(0, at, at + width);
      hole = r;
    }
  }

  /** Runs `steps` holding the lock: no other worker counts meanwhile. */
  locked<T>(steps: (tally: Tally) => T): T {
    return this.#locked(() => steps(this));
  }

  #locked<T>(body: () => T): T {
    if (this.#depth > 0) return body(); // this thread holds it already
    const table = this.#table;
    const owner = this.#column + 1;
    while (Atomics.compareExchange(table, LOCK, 0, owner) !== 0) {
      // Held for a few reads and writes by another worker.
    }
    this.#depth++;
    try {
      return body();
    } finally {
      this.#depth--;
      Atomics.store(table, LOCK, 0);
    }
  }
}
