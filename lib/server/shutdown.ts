/**
 * A server's shutdown, step by step: health first, then the tickers, the
 * hub's drain and health watches, a graceful wait for calls, and what is
 * left cancelled when the grace runs out.
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import { systemClock } from "../bus/clock.ts";
import type { Hub } from "../bus/hub.ts";
import { UnavailableError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { ServedHealth } from "../grpc/health.ts";
import type { MetricsEndpoint } from "../observe/metrics_endpoint.ts";
import type { ConnectionListener } from "../grpc/workarounds/mod.ts";

/**
 * Most milliseconds of the grace kept for the forced end (cancelling what is
 * left and waiting for its connections to close); at most half the grace.
 */
const FORCE_WAIT_MS = 1_000;

/** What a shutdown stops, as `startServer` assembled it. */
export interface RunningParts {
  /** The grpc-js server. */
  server: grpc.Server;
  /** The listener that hands it connections. */
  listener: ConnectionListener;
  /** Its health service. */
  health: ServedHealth;
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

/** Resolves true when `promise` settles within `ms`, false otherwise. */
async function within(promise: Promise<unknown>, ms: number) {
  // Real time, whatever clock drives the hub: a shutdown must end.
  const timer = new AbortController();
  const expired = systemClock.sleep(ms, timer.signal).then(
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
): Promise<void> {
  const { server, health, log } = parts;
  // Real time, whatever clock drives the hub: a shutdown must end.
  const deadline = performance.now() + graceMs;
  const left = () => Math.max(0, deadline - performance.now());
  // Probes and load balancers learn first, before anything is refused.
  health.notServing();
  parts.draining.abort();
  await parts.tickers;
  parts.hub.close();
  health.endWatches(); // after NOT_SERVING was sent
  // Done when grpc-js says so and every socket has closed: on Deno a
  // session may report itself closed before its last frames are out.
  const graceful = Promise.all([
    parts.listener.close(),
    new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  ]);
  const forceWaitMs = Math.min(FORCE_WAIT_MS, graceMs / 2);
  if (await within(graceful, left() - forceWaitMs)) {
    return await parts.metrics?.stop();
  }
  log.warn(`Grace period of ${graceMs} ms over: cancelling open calls`);
  server.forceShutdown();
  parts.stopped.abort(new UnavailableError("The server shut down"));
  // Deno 2.9.3 may keep a connection whose peer stays silent open even
  // after forceShutdown(): give up waiting rather than overrun the grace.
  if (!await within(graceful, left())) {
    log.warn(
      "Some connections did not close; leaving them to the process exit",
    );
  }
  await parts.metrics?.stop();
}
