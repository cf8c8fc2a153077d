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
}

const TICK: Tick = Object.freeze({ kind: "tick" });

/**
 * Calls `onTick` every `intervalMs`, scheduled from a fixed origin so that
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
  onTick: (tick: Tick) => void,
  options: TickerOptions,
): Promise<void> {
  const { intervalMs, signal, clock = systemClock } = options;
  if (!(intervalMs > 0)) {
    throw new RangeError(
      `Cannot start ticker: interval must be positive, got ${intervalMs}`,
    );
  }
  let next = clock.now() + intervalMs;
  while (!signal.aborted) {
    try {
      await clock.sleep(next - clock.now(), signal);
    } catch (error) {
      if (signal.aborted) return;
      throw error;
    }
    onTick(TICK);
    next += intervalMs;
    const now = clock.now();
    if (now >= next) next = now + intervalMs - ((now - next) % intervalMs);
  }
}
