/**
 * The replay window: the most recent events, bounded in count and age, by
 * sequence number. Resuming subscribers read their missed events from it.
 *
 * @module
 */

import type { BusEvent } from "./broker.ts";

/**
 * A replay window as the hub and its subscribers read it: the most recent
 * events, in ascending seq, and up to where events were let go.
 * {@linkcode ReplayLog} holds one in this thread; a `SharedWindowReader`
 * (`shared_window.ts`) reads one held once for several workers.
 */
export interface EventWindow<T> {
  /** Sequence number of the oldest event held; `last + 1` when none is. */
  readonly first: number;
  /** Sequence number of the newest event let go: events after it are all held. */
  readonly lost: number;
  /** Events held now. */
  readonly length: number;
  /** Takes `event` in (seq above the last), evicting what no longer fits at `now`. */
  append(event: BusEvent<T>, now: number): void;
  /** Lets go of the events older than the window's maximum age at `now`. */
  expire(now: number): void;
  /** The oldest event held with a seq above `seq`. */
  next(seq: number): BusEvent<T> | undefined;
}

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
 * weighing at most `maxBytes`. Events are appended in ascending sequence
 * order; numbers may be skipped (events held elsewhere: the hub keeps
 * presence in a ring of its own), and `lost` says up to where events were
 * let go.
 *
 * @example
 * ```ts
 * import { ReplayLog } from "./replay_log.ts";
 * const log = new ReplayLog<string>({ size: 2, maxAgeMs: 60_000 });
 * for (const seq of [1, 2, 3]) {
 *   log.append({ kind: "event", seq, time: 0, topic: "t", data: "x" }, 0);
 * }
 * log.first; // 2
 * log.lost; // 1
 * log.get(1); // undefined: evicted
 * ```
 */
export class ReplayLog<T> implements EventWindow<T> {
  #ring: (BusEvent<T> | undefined)[];
  #maxAgeMs: number;
  #maxBytes: number;
  #sizeOf: (data: T) => number;
  #bytes = 0;
  /** Ring slot of the oldest event held. */
  #head = 0;
  #count = 0;
  /** Sequence number of the newest event appended (`after` before any). */
  #last: number;
  /** Sequence number of the newest event evicted (`after` before any). */
  #lost: number;

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
    this.#last = after;
    this.#lost = after;
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
    return this.#count === 0 ? this.#last + 1 : this.#at(0).seq;
  }

  /** Sequence number of the newest event appended (0 before any). */
  get last(): number {
    return this.#last;
  }

  /** Sequence number of the newest event let go: events after it are all held. */
  get lost(): number {
    return this.#lost;
  }

  /** Events held now. */
  get length(): number {
    return this.#count;
  }

  /**
   * Appends `event`, whose seq must be above the last one, evicting the
   * oldest event when full and whatever is older than the maximum age at
   * `now`.
   */
  append(event: BusEvent<T>, now: number): void {
    if (event.seq <= this.#last) {
      throw new RangeError(
        `Replay log out of order: got seq ${event.seq} after ${this.#last}`,
      );
    }
    if (this.#count === this.#ring.length) this.#evict();
    this.#ring[(this.#head + this.#count) % this.#ring.length] = event;
    this.#count++;
    this.#last = event.seq;
    this.#bytes += this.#sizeOf(event.data);
    // Over the byte bound: the oldest go (the newest stays, whatever it weighs).
    while (this.#bytes > this.#maxBytes && this.#count > 1) this.#evict();
    this.expire(now);
  }

  /** Evicts the events older than the maximum age at `now`. */
  expire(now: number): void {
    const cutoff = now - this.#maxAgeMs;
    while (this.#count > 0 && this.#at(0).time < cutoff) this.#evict();
  }

  /** The event numbered `seq`, if held here. */
  get(seq: number): BusEvent<T> | undefined {
    const event = this.next(seq - 1);
    return event?.seq === seq ? event : undefined;
  }

  /** The oldest event held with a seq above `seq`. */
  next(seq: number): BusEvent<T> | undefined {
    let low = 0;
    let high = this.#count;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#at(middle).seq <= seq) low = middle + 1;
      else high = middle;
    }
    return low < this.#count ? this.#at(low) : undefined;
  }

  /** The `i`th oldest event held. */
  #at(i: number): BusEvent<T> {
    return this.#ring[(this.#head + i) % this.#ring.length]!;
  }

  #evict(): void {
    const event = this.#ring[this.#head]!;
    this.#bytes -= this.#sizeOf(event.data);
    this.#lost = event.seq;
    this.#ring[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#ring.length;
    this.#count--;
  }
}
