/**
 * A {@linkcode Clock} driven by hand, so tests never sleep for real.
 *
 * @module
 */

import { setTimeout as macrotask } from "node:timers/promises";
import type { Clock } from "../lib/bus/clock.ts";

interface Sleeper {
  at: number;
  resolve: () => void;
}

/** Time stands still until {@linkcode ManualClock.advance} moves it. */
export class ManualClock implements Clock {
  #now: number;
  #sleepers = new Set<Sleeper>();

  /** Starts at `start` milliseconds since the epoch. */
  constructor(start = Date.UTC(2024, 0, 2, 3, 4, 5)) {
    this.#now = start;
  }

  /** The current manual time. */
  now(): number {
    return this.#now;
  }

  /** How many sleeps are pending (a leak check: 0 once all is stopped). */
  get pending(): number {
    return this.#sleepers.size;
  }

  /** Resolves once the clock is advanced past `ms` from now. */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const sleeper: Sleeper = {
        at: this.#now + Math.max(0, ms),
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#sleepers.delete(sleeper);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#sleepers.add(sleeper);
    });
  }

  /**
   * Moves time forward by `ms`, waking sleepers in time order and letting
   * each one's continuation run before the next wakes.
   */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      await macrotask(0);
      let next: Sleeper | undefined;
      for (const s of this.#sleepers) if (!next || s.at < next.at) next = s;
      if (!next || next.at > target) break;
      this.#sleepers.delete(next);
      this.#now = next.at;
      next.resolve();
    }
    this.#now = target;
    await macrotask(0);
  }
}
