/**
 * The metrics endpoint as a server starts it: on `--metrics-port`, only to
 * a token granting `metrics` when tokens are required, a share of its
 * connections per peer. Its own module: a process over workers serves its
 * metrics from the main thread, which loads no transport.
 *
 * @module
 */

import { PeerShares } from "../access/peer_shares.ts";
import {
  type MetricsEndpoint,
  serveMetrics,
} from "../observe/metrics_endpoint.ts";
import { DEFAULT_MAX_METRICS_CONNECTIONS } from "../observe/metrics_server.ts";
import type { Transport } from "../transport.ts";
import type { ResolvedServerOptions } from "./options.ts";

/**
 * Serves metrics when `metricsPort` is set (only to a token granting
 * `metrics` when tokens are); stops `transports` when it cannot bind.
 *
 * @example
 * ```ts ignore
 * const exporter = startMetrics(settings, metrics, [grpc]);
 * await exporter?.stop();
 * ```
 */
export function startMetrics(
  settings: ResolvedServerOptions,
  metrics: Parameters<typeof serveMetrics>[0],
  transports: readonly Transport[],
): MetricsEndpoint | undefined {
  const { metricsPort, access } = settings;
  if (metricsPort === undefined) return undefined;
  try {
    // A peer's share of the connections: a stranger's idle ones cannot
    // hold every slot.
    const shares = new PeerShares({
      total: DEFAULT_MAX_METRICS_CONNECTIONS,
      what: "metrics connections",
    });
    return serveMetrics(metrics, {
      host: settings.host,
      port: metricsPort,
      log: settings.log,
      authorize: access && ((caller) => access.authorizeMetrics(caller)),
      admit: (peer) => shares.take(peer),
    });
  } catch (error) {
    for (const transport of transports) {
      void transport.close();
      transport.force();
    }
    throw error;
  }
}
