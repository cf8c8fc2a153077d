/**
 * Time as a dependency: everything that waits or reads the time takes a
 * {@linkcode Clock}, so tests can drive time by hand instead of sleeping.
 *
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";

/** A source of the current time and of abortable waits. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds; rejects with the signal's reason when
   * `signal` aborts first. The underlying timer is cleared on every path.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * The real clock: `Date.now()` and `node:timers/promises`.
 *
 * @example
 * ```ts
 * import { systemClock } from "./clock.ts";
 * await systemClock.sleep(10);
 * ```
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => {
    await delay(Math.max(0, ms), undefined, { signal });
  },
};
