/**
 * The replay window: the most recent events, bounded in count and age, by
 * sequence number. Resuming subscribers read their missed events from it.
 *
 * @module
 */

import type { BusEvent } from "./broker.ts";

/** Options of {@linkcode ReplayLog}. */
export interface ReplayLogOptions<T> {
  /** Most events held. */
  size: number;
  /** Events older than this (ms) are evicted. */
  maxAgeMs: number;
  /** Most bytes held, as `sizeOf` counts them. Default: no bound. */
  maxBytes?: number;
  /** What one event's data weighs, in bytes. Default: 0. */
  sizeOf?: (data: T) => number;
  /** The first event appended will be numbered `after + 1`. Default 0. */
  after?: number;
}

/**
 * A ring of the last `size` events, none older than `maxAgeMs`, together
 * weighing at most `maxBytes`. Events must be appended with consecutive
 * sequence numbers.
 *
 * @example
 * ```ts
 * import { ReplayLog } from "./replay_log.ts";
 * const log = new ReplayLog<string>({ size: 2, maxAgeMs: 60_000 });
 * for (const seq of [1, 2, 3]) {
 *   log.append({ kind: "event", seq, time: 0, topic: "t", data: "x" }, 0);
 * }
 * log.first; // 2
 * log.get(1); // undefined: evicted
 * ```
 */
export class ReplayLog<T> {
  #ring: (BusEvent<T> | undefined)[];
  #maxAgeMs: number;
  #maxBytes: number;
  #sizeOf: (data: T) => number;
  #bytes = 0;
  /** Sequence number of the oldest event held (`last + 1` when empty). */
  #first: number;
  #last: number;

  /** Creates an empty log. */
  constructor(options: ReplayLogOptions<T>) {
    const { size, maxAgeMs, after = 0 } = options;
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new RangeError(
        `Cannot create replay log: size must be a positive integer, got ${size}`,
      );
    }
    if (!(maxAgeMs > 0)) {
      throw new RangeError(
        `Cannot create replay log: max age must be positive, got ${maxAgeMs}`,
      );
    }
    this.#first = after + 1;
    this.#last = after;
    this.#ring = new Array(size);
    this.#maxAgeMs = maxAgeMs;
    this.#maxBytes = options.maxBytes ?? Infinity;
    this.#sizeOf = options.sizeOf ?? (() => 0);
  }

  /** Bytes held now, as `sizeOf` counts them. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Sequence number of the oldest event held; `last + 1` when none is. */
  get first(): number {
    return this.#first;
  }

  /** Sequence number of the newest event appended (0 before any). */
  get last(): number {
    return this.#last;
  }

  /** Events held now. */
  get length(): number {
    return this.#last - this.#first + 1;
  }

  /**
   * Appends `event`, whose seq must follow the last one, evicting the oldest
   * event when full and whatever is older than the maximum age at `now`.
   */
  append(event: BusEvent<T>, now: number): void {
    if (event.seq !== this.#last + 1) {
      throw new RangeError(
        `Replay log out of order: got seq ${event.seq} after ${this.#last}`,
      );
    }
    const size = this.#ring.length;
    if (this.length === size) this.#evict(); // its slot is the one reused
    this.#ring[event.seq % size] = event;
    this.#last = event.seq;
    this.#bytes += this.#sizeOf(event.data);
    // Over the byte bound: the oldest go (the newest stays, whatever it weighs).
    while (this.#bytes > this.#maxBytes && this.#first < this.#last) {
      this.#evict();
    }
    this.expire(now);
  }

  /** Evicts the events older than the maximum age at `now`. */
  expire(now: number): void {
    const cutoff = now - this.#maxAgeMs;
    while (this.#first <= this.#last) {
      const oldest = this.#ring[this.#first % this.#ring.length]!;
      if (oldest.time >= cutoff) break;
      this.#evict();
    }
  }

  /** The event numbered `seq`, if still held. */
  get(seq: number): BusEvent<T> | undefined {
    if (seq < this.#first || seq > this.#last) return undefined;
    return this.#ring[seq % this.#ring.length];
  }

  #evict(): void {
    const slot = this.#first % this.#ring.length;
    this.#bytes -= this.#sizeOf(this.#ring[slot]!.data);
    this.#ring[slot] = undefined;
    this.#first++;
  }
}
