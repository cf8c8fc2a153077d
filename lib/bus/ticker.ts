/**
 * The hub's clock tick: a drift-free interval that publishes one event per
 * period until its signal aborts.
 *
 * @module
 */

import { type Clock, systemClock } from "./clock.ts";

/** The event the ticker publishes; subscribers render it with their name. */
export interface Tick {
  readonly kind: "tick";
}

/** Options of {@linkcode runTicker}. */
export interface TickerOptions {
  /** Milliseconds between ticks; must be positive. */
  intervalMs: number;
  /** Stops the ticker; the returned promise then resolves. */
  signal: AbortSignal;
  /** Default {@linkcode systemClock}. */
  clock?: Clock;
  /**
   * Tick on the wall clock's multiples of `intervalMs`, so that every
   * process with this interval ticks at the same instants (and can name its
   * tick by them). Default: one interval after the start.
   */
  aligned?: boolean;
}

const TICK: Tick = Object.freeze({ kind: "tick" });

/**
 * Calls `onTick` every `intervalMs` (with the time it was scheduled for),
 * scheduled from a fixed origin so that
 * timer lateness does not accumulate. A tick that is already late by a whole
 * period is skipped rather than fired in a burst. Resolves when `signal`
 * aborts; its one timer is cleared then.
 *
 * @example
 * ```ts
 * import { runTicker } from "./ticker.ts";
 * const controller = new AbortController();
 * const done = runTicker(() => controller.abort(), { intervalMs: 10, signal: controller.signal });
 * await done;
 * ```
 */
export async function runTicker(
  onTick: (tick: Tick, scheduledAt: number) => void,
  options: TickerOptions,
): Promise<void> {
  const { intervalMs, signal, clock = systemClock } = options;
  if (!(intervalMs > 0)) {
    throw new RangeError(
      `Cannot start ticker: interval must be positive, got ${intervalMs}`,
    );
  }
  let next = options.aligned
    ? (Math.floor(clock.now() / intervalMs) + 1) * intervalMs
    : clock.now() + intervalMs;
  while (!signal.aborted) {
    try {
      await clock.sleep(next - clock.now(), signal);
    } catch (error) {
      if (signal.aborted) return;
      throw error;
    }
    onTick(TICK, next);
    next += intervalMs;
    const now = clock.now();
    if (now >= next) next = now + intervalMs - ((now - next) % intervalMs);
  }
}
