/**
 * The Prometheus endpoint: metrics served over plain HTTP at `/metrics`, by
 * the bounded server of `metrics_server.ts`; with tokens, only to a token
 * granting `metrics` (they count refused calls, among others): the caller
 * hands in the check (`AccessControl.authorizeMetrics`), so that this
 * folder knows nothing of access.
 *
 * @module
 */

import {
  type MetricsServerOptions,
  serveMetricsHttp,
} from "./metrics_server.ts";
import { formatAddress } from "../wire/address.ts";
import type { Metrics } from "./metrics.ts";

/** A running metrics endpoint. */
export interface MetricsEndpoint {
  /** The bound port. */
  port: number;
  /** Stops serving; resolves once every connection is closed. */
  stop(): Promise<void>;
}

/**
 * Serves `metrics` at `http://HOST:PORT/metrics` until `stop()`. Throws a
 * `GreeterError` naming the address when it cannot bind.
 *
 * @example
 * ```ts
 * import { serveMetrics } from "./metrics_endpoint.ts";
 * import { Metrics } from "./metrics.ts";
 * import { Logger } from "../log.ts";
 * const log = new Logger({ write: () => {} });
 * const endpoint = serveMetrics(new Metrics(), { host: "127.0.0.1", port: 0, log });
 * endpoint.port > 0; // true
 * await endpoint.stop();
 * ```
 */
export function serveMetrics(
  metrics: Pick<Metrics, "render"> | { render(): Promise<string> },
  options: Pick<
    MetricsServerOptions,
    "host" | "port" | "log" | "authorize" | "admit"
  >,
): MetricsEndpoint {
  const { host, log } = options;
  const server = serveMetricsHttp({
    ...options,
    render: () => metrics.render(),
  });
  log.info(`Metrics on http://${formatAddress(host, server.port)}/metrics`, {
    metricsPort: server.port,
  });
  return { port: server.port, stop: () => server.stop() };
}
