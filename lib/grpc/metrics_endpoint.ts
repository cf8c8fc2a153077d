/**
 * The Prometheus endpoint: metrics served over plain HTTP at `/metrics`.
 *
 * @module
 */

import { GreeterError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { formatAddress } from "./address.ts";
import type { Metrics } from "./metrics.ts";

/** A running metrics endpoint. */
export interface MetricsEndpoint {
  /** The bound port. */
  port: number;
  /** Stops serving; resolves once the HTTP server has finished. */
  stop(): Promise<void>;
}

/**
 * Serves `metrics` at `http://HOST:PORT/metrics` until `stop()`. Throws a
 * {@linkcode GreeterError} naming the address when it cannot bind.
 *
 * @example
 * ```ts ignore
 * const endpoint = serveMetrics(metrics, "127.0.0.1", 0, log);
 * await endpoint.stop();
 * ```
 */
export function serveMetrics(
  metrics: Metrics,
  host: string,
  port: number,
  log: Logger,
): MetricsEndpoint {
  const controller = new AbortController();
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: host,
      port,
      signal: controller.signal,
      onListen: () => {},
    }, (request) => {
      const { pathname } = new URL(request.url);
      if (pathname !== "/metrics") {
        return new Response("Not found: metrics are at /metrics\n", {
          status: 404,
        });
      }
      if (request.method !== "GET" && request.method !== "HEAD") {
        return new Response("Use GET\n", { status: 405 });
      }
      return new Response(metrics.render(), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      });
    });
  } catch (error) {
    throw new GreeterError(
      `Cannot serve metrics on "${formatAddress(host, port)}": ${
        (error as Error).message
      }`,
      { cause: error },
    );
  }
  const bound = server.addr.port;
  log.info(`Metrics on http://${formatAddress(host, bound)}/metrics`, {
    metricsPort: bound,
  });
  return {
    port: bound,
    async stop() {
      controller.abort();
      await server.finished;
    },
  };
}
