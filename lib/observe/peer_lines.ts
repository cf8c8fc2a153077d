/**
 * What joins and leaves may cost the log: lines of a bounded size (a join
 * logged all 64 topics of 128 characters, 8 KB a line) and a budget of
 * lines per peer address (5 s of one client's churn wrote 85 MB; issue 13).
 *
 * @module
 */

import { peerHost } from "../wire/address.ts";

/** Topics a join line names; the rest are counted. */
export const LOGGED_TOPICS = 8;

/** Join and leave lines per peer address per interval. */
export const DEFAULT_PEER_LINES = 20;

/** The interval of that budget (ms). */
export const DEFAULT_PEER_INTERVAL_MS = 10_000;

/** Peers tracked before the stale ones (then the oldest) are swept. */
const SWEEP_AT = 1_024;

/**
 * A subscription's topics as log fields: `topics`, the first
 * {@linkcode LOGGED_TOPICS} of them, and `topicCount` when there are more.
 *
 * @example
 * ```ts
 * import { topicsForLog } from "./peer_lines.ts";
 * topicsForLog(["a", "b"]); // { topics: ["a", "b"] }
 * ```
 */
export function topicsForLog(
  topics: readonly string[],
): { topics: readonly string[]; topicCount?: number } {
  return topics.length > LOGGED_TOPICS
    ? { topics: topics.slice(0, LOGGED_TOPICS), topicCount: topics.length }
    : { topics };
}

/** Options of {@linkcode PeerLineBudget}. */
export interface PeerLineBudgetOptions {
  /** Lines per peer address per interval. Default {@linkcode DEFAULT_PEER_LINES}. */
  lines?: number;
  /** Default {@linkcode DEFAULT_PEER_INTERVAL_MS}. */
  intervalMs?: number;
  /** Default `Date.now`. */
  now?: () => number;
  /**
   * What a budget is kept per: by default the peer's host without its port
   * (one budget however many connections); identity for callers that
   * already hold a host.
   */
  keyOf?: (peer: string) => string;
}

/**
 * A budget of log lines per peer address and interval. `take(peer)` says
 * whether a line may be written, and how many were held back since the
 * last one written (so that line can say so).
 *
 * @example
 * ```ts
 * import { PeerLineBudget } from "./peer_lines.ts";
 * const budget = new PeerLineBudget({ lines: 1 });
 * budget.take("10.0.0.1:5000"); // 0: write it
 * budget.take("10.0.0.1:5001"); // undefined: hold it back
 * ```
 */
export class PeerLineBudget {
  #lines: number;
  #intervalMs: number;
  #now: () => number;
  #keyOf: (peer: string) => string;
  #peers = new Map<
    string,
    { since: number; written: number; held: number }
  >();

  /** An empty budget. */
  constructor(options: PeerLineBudgetOptions = {}) {
    this.#lines = options.lines ?? DEFAULT_PEER_LINES;
    this.#intervalMs = options.intervalMs ?? DEFAULT_PEER_INTERVAL_MS;
    this.#now = options.now ?? Date.now;
    this.#keyOf = options.keyOf ?? peerHost;
  }

  /** Lines held back since the last one written, if a line may be written now; undefined if not. */
  take(peer: string): number | undefined {
    const key = this.#keyOf(peer);
    const now = this.#now();
    let entry = this.#peers.get(key);
    if (!entry || now - entry.since >= this.#intervalMs) {
      if (!entry && this.#peers.size >= SWEEP_AT) this.#sweep(now);
      entry = { since: now, written: 0, held: entry?.held ?? 0 };
      this.#peers.set(key, entry);
    }
    if (entry.written >= this.#lines) {
      entry.held++;
      return undefined;
    }
    entry.written++;
    const held = entry.held;
    entry.held = 0;
    return held;
  }

  /**
   * Forgets peers whose interval is over (what they held back goes unsaid),
   * and, if as many are still within theirs, the oldest: bounded however
   * many addresses a client speaks from.
   */
  #sweep(now: number): void {
    for (const [key, entry] of this.#peers) {
      if (now - entry.since >= this.#intervalMs) this.#peers.delete(key);
    }
    for (const key of this.#peers.keys()) {
      if (this.#peers.size < SWEEP_AT) break;
      this.#peers.delete(key);
    }
  }
}
