/**
 * Bounds on what refused peers cost: a peer (an IP address) whose failed
 * authentications come too fast is marked for a while (its failures are
 * answered in short, and said once), and refusals are logged at most once
 * per peer per interval, with a count of those left out. It counts
 * failures only: what a peer's valid tokens may do is never its business.
 * Memory is bounded: at most {@linkcode MAX_PEERS_TRACKED} peers are
 * remembered, the oldest forgotten first.
 *
 * @module
 */

import { PeerLineBudget } from "../observe/peer_lines.ts";

/** Failed authentications per peer per second before it is blocked. */
export const MAX_FAILURES_PER_SECOND = 10;

/** How long a peer's failures are answered in short once it failed too fast (ms). */
export const BLOCK_MS = 10_000;

/** Shortest time between two refusal lines for one peer (ms). */
export const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** Most peers remembered at once. */
export const MAX_PEERS_TRACKED = 10_000;

/** Options of {@linkcode PeerGuard}. */
export interface PeerGuardOptions {
  /** Time source. Default `Date.now`. */
  now?: () => number;
  /** Default {@linkcode MAX_FAILURES_PER_SECOND}. */
  maxFailuresPerSecond?: number;
  /** Default {@linkcode BLOCK_MS}. */
  blockMs?: number;
}

interface PeerState {
  /** Start of the current one-second window, and failures in it. */
  windowStart: number;
  failures: number;
  /** Its failures are answered in short until then. */
  blockedUntil: number;
}

/**
 * Counts failed authentications and refusal lines per peer host.
 *
 * @example
 * ```ts
 * import { PeerGuard } from "./peer_guard.ts";
 * const guard = new PeerGuard();
 * guard.blockedFor("10.0.0.1"); // 0: not blocked
 * guard.failed("10.0.0.1");
 * ```
 */
export class PeerGuard {
  #peers = new Map<string, PeerState>();
  #now: () => number;
  /** One refusal line per host per interval. */
  #refusalLines: PeerLineBudget;
  #max: number;
  #blockMs: number;

  /** Creates a guard that remembers no peer yet. */
  constructor(options: PeerGuardOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#max = options.maxFailuresPerSecond ?? MAX_FAILURES_PER_SECOND;
    this.#blockMs = options.blockMs ?? BLOCK_MS;
    this.#refusalLines = new PeerLineBudget({
      lines: 1,
      intervalMs: REFUSAL_LOG_INTERVAL_MS,
      now: this.#now,
      keyOf: (host) => host,
    });
  }

  /** Milliseconds `host`'s failures stay answered in short (0: not marked). */
  blockedFor(host: string): number {
    const state = this.#peers.get(host);
    return state ? Math.max(0, state.blockedUntil - this.#now()) : 0;
  }

  /**
   * Counts a failed authentication of `host`; returns true when this one
   * marked it (more than the limit within a second).
   */
  failed(host: string): boolean {
    const state = this.#state(host);
    const now = this.#now();
    if (now - state.windowStart >= 1000) {
      state.windowStart = now;
      state.failures = 0;
    }
    state.failures++;
    if (state.failures > this.#max && state.blockedUntil <= now) {
      state.blockedUntil = now + this.#blockMs;
      return true;
    }
    return false;
  }

  /**
   * Whether a refusal of `host` should be logged now: the first, and then
   * one per {@linkcode REFUSAL_LOG_INTERVAL_MS}. Returns the number of
   * refusals left out since the last line, or `undefined` when this one is
   * to be left out too.
   */
  shouldLog(host: string): number | undefined {
    return this.#refusalLines.take(host);
  }

  #state(host: string): PeerState {
    let state = this.#peers.get(host);
    if (state) {
      // Most recently seen last: the first entry is the one to forget.
      this.#peers.delete(host);
    } else {
      state = {
        windowStart: -Infinity,
        failures: 0,
        blockedUntil: 0,
      };
      if (this.#peers.size >= MAX_PEERS_TRACKED) {
        this.#peers.delete(this.#peers.keys().next().value!);
      }
    }
    this.#peers.set(host, state);
    return state;
  }
}
