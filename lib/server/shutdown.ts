/**
 * A server's shutdown, step by step, whatever its transports: they say
 * NOT_SERVING first, then the tickers stop and the hub drains, the
 * transports get a graceful wait for their calls, and what is left is
 * cancelled when the grace runs out.
 *
 * @module
 */

import { type Clock, systemClock } from "../bus/clock.ts";
import type { Hub } from "../bus/hub.ts";
import { UnavailableError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { MetricsEndpoint } from "../observe/metrics_endpoint.ts";
import type { Transport } from "../transport.ts";

/**
 * Most milliseconds of the grace kept for the forced end (cancelling what is
 * left and waiting for its connections to close); at most half the grace.
 */
const FORCE_WAIT_MS = 1_000;

/** What a shutdown stops, as `startServer` assembled it. */
export interface RunningParts {
  /** The transports, drained and closed together. */
  transports: readonly Transport[];
  /** The hub, closed by the drain. */
  hub: Hub<Uint8Array>;
  /** The hub's tickers, stopped by `draining`. */
  tickers: Promise<void>;
  /** Aborted when the drain starts (tickers stop, `SayHelloStream2` says goodbye). */
  draining: AbortController;
  /** Aborted when the grace runs out: every call's signal aborts. */
  stopped: AbortController;
  /** The metrics endpoint, stopped last. */
  metrics?: MetricsEndpoint;
  /** Where the forced end is logged. */
  log: Logger;
}

/**
 * The real clock, read monotonically: a step of the wall clock must neither
 * cut the grace short nor stretch it.
 */
const realTime: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  sleep: systemClock.sleep,
};

/** Resolves true when `promise` settles within `ms` on `clock`, false otherwise. */
async function within(promise: Promise<unknown>, ms: number, clock: Clock) {
  const timer = new AbortController();
  const expired = clock.sleep(ms, timer.signal).then(
    () => false,
    () => true,
  );
  try {
    return await Promise.race([promise.then(() => true), expired]);
  } finally {
    timer.abort();
    await expired;
  }
}

/** Options of {@linkcode stopServer}. */
export interface StopOptions {
  /**
   * Whose time the grace is counted in. Default: the real clock, whatever
   * clock drives the hub (a shutdown must end); tests hand a manual one.
   */
  clock?: Clock;
}

/**
 * Drains `parts` and stops them, all within `graceMs`: health turns
 * NOT_SERVING, tickers stop, the hub closes (its subscriptions end after
 * what they hold), health watches end; calls get the grace less its last
 * second (less its second half, when shorter) to finish, then what is left
 * is cancelled and its connections get the rest of the grace to close.
 *
 * @example
 * ```ts ignore
 * await stopServer(parts, 5000);
 * ```
 */
export async function stopServer(
  parts: RunningParts,
  graceMs: number,
  { clock = realTime }: StopOptions = {},
): Promise<void> {
  const { transports, log } = parts;
  const deadline = clock.now() + graceMs;
  const left = () => Math.max(0, deadline - clock.now());
  // Probes and load balancers learn first, before anything is refused.
  for (const transport of transports) transport.drain();
  parts.draining.abort();
  await parts.tickers;
  parts.hub.close();
  const graceful = Promise.all(transports.map((t) => t.close()));
  const forceWaitMs = Math.min(FORCE_WAIT_MS, graceMs / 2);
  if (await within(graceful, left() - forceWaitMs, clock)) {
    return await parts.metrics?.stop();
  }
  log.warn(`Grace period of ${graceMs} ms over: cancelling open calls`);
  for (const transport of transports) transport.force();
  parts.stopped.abort(new UnavailableError("The server shut down"));
  // Deno 2.9.3 may keep a connection whose peer stays silent open even
  // after forceShutdown(): give up waiting rather than overrun the grace.
  if (!await within(graceful, left(), clock)) {
    log.warn(
      "Some connections did not close; leaving them to the process exit",
    );
  }
  await parts.metrics?.stop();
}
