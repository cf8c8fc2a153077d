/**
 * `greeter serve`: runs the server until the signal aborts, then shuts it
 * down gracefully.
 *
 * @module
 */

import type { ServeConfig } from "./config.ts";
import { Logger } from "../log.ts";
import { startServer } from "../grpc/server.ts";
import { readOptionalFile, readTokenFile } from "./files.ts";
import { openBroker } from "./broker.ts";

/**
 * Serves until `signal` aborts; resolves once the server has stopped.
 *
 * @example
 * ```ts ignore
 * const controller = new AbortController();
 * await serve(config, controller.signal); // returns after controller.abort()
 * ```
 */
export async function serve(
  config: ServeConfig,
  signal: AbortSignal,
): Promise<void> {
  const log = new Logger({ level: config.logLevel, format: config.logFormat });
  const tokens = config.tokenFile
    ? await readTokenFile(config.tokenFile)
    : undefined;
  const [cert, key, clientCa] = await Promise.all([
    readOptionalFile(config.tlsCert, "TLS certificate"),
    readOptionalFile(config.tlsKey, "TLS key"),
    readOptionalFile(config.tlsClientCa, "TLS client CA"),
  ]);
  const tls = cert && key ? { cert, key, clientCa } : undefined;
  const opened = await openBroker(config, log);
  let server;
  try {
    server = await startServer({
      ...config,
      broker: opened.broker,
      tokens,
      tls,
      log,
    });
  } catch (error) {
    await opened.close();
    throw error;
  }
  if (tls) {
    log.info(clientCa ? "TLS on, client certificates required" : "TLS on");
  }
  if (tokens) {
    log.info(`Bearer tokens required (${tokens.length} accepted)`);
  }
  if (!signal.aborted) {
    await new Promise((resolve) =>
      signal.addEventListener("abort", resolve, { once: true })
    );
  }
  log.info("Shutting down", { graceMs: config.graceMs });
  await server.shutdown({ graceMs: config.graceMs });
  await opened.close();
  log.info("Server stopped", { ...server.hub.stats });
}
