/**
 * `greeter serve`: runs the server until the signal aborts (or the event
 * stream's engine, not reached at start, is given up on: `--broker-wait`),
 * then shuts it down gracefully; reloads the token file when asked (SIGHUP,
 * which `main.ts` turns into a callback).
 *
 * @module
 */

import type { ServeConfig } from "./config.ts";
import { Logger } from "../log.ts";
import type { RunningServer } from "../server/server.ts";
import type { Workers } from "./settings.ts";
import type { ServerOptions } from "../server/options.ts";
import type { ServerTls } from "../wire/tls.ts";
import type { Broker } from "../bus/broker.ts";
import { AccessControl } from "../access/access.ts";
import { MIN_TOKEN_BYTES } from "../access/permissions.ts";
import { ConfigError } from "../errors.ts";
import { readOptionalFile, readTokenFile } from "./files.ts";
import { openBroker } from "./broker.ts";
import { natsAuth } from "./nats_auth.ts";
import { startupWarnings, tokenFileWarnings } from "./startup_warnings.ts";

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /**
   * Registers a listener called on each reload request (SIGHUP); returns
   * the function that unregisters it.
   */
  onReload?: (listener: () => void) => () => void;
}

/** How many workers `--workers` asks for: `auto` is one per core this process may run on. */
export function workerCount(workers: Workers): number {
  return workers === "auto" ? navigator.hardwareConcurrency : workers;
}

/** The token file's lines as an access list; the file's path prefixes a bad line's error. */
async function readAccess(path: string, log: Logger, current?: AccessControl) {
  const lines = await readTokenFile(path);
  try {
    if (current) current.replace(lines);
    return current ?? new AccessControl(lines, { log });
  } catch (error) {
    throw new ConfigError(`Token file "${path}": ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** What the token file looks like: its mode, and its short tokens. */
async function tokenFileFacts(path: string, access: AccessControl) {
  const { mode } = await Deno.stat(path).catch(() => ({ mode: null }));
  return { path, mode, short: access.list.short, minBytes: MIN_TOKEN_BYTES };
}

/**
 * The server's options from the settings, every option named (the type
 * check fails when one is added, renamed or removed without this).
 */
function serverOptions(
  config: ServeConfig,
  opened: {
    broker: Broker<Uint8Array>;
    access: AccessControl | undefined;
    tls: ServerTls | undefined;
    log: Logger;
  },
): ServerOptions {
  return {
    host: config.host,
    port: config.port,
    intervalMs: config.intervalMs,
    heartbeatMs: config.heartbeatMs,
    broker: opened.broker,
    bufferSize: config.bufferSize,
    policy: config.policy,
    maxSubscribers: config.maxSubscribers,
    maxSubscribersPerConnection: config.maxSubscribersPerConnection,
    maxSubscribersPerPeer: config.maxSubscribersPerPeer,
    maxPatternsPerPeer: config.maxPatternsPerPeer,
    replaySize: config.replaySize,
    replayAgeMs: config.replayAgeMs,
    replayBytes: config.replayBytes,
    maxPublishBytes: config.maxPublishBytes,
    reconnectJitterMs: config.reconnectJitterMs,
    keepaliveTimeMs: config.keepaliveTimeMs,
    keepaliveTimeoutMs: config.keepaliveTimeoutMs,
    maxConnectionIdleMs: config.maxConnectionIdleMs,
    maxConnectionAgeMs: config.maxConnectionAgeMs,
    maxConnectionAgeGraceMs: config.maxConnectionAgeGraceMs,
    maxConnections: config.maxConnections,
    maxConnectionsPerPeer: config.maxConnectionsPerPeer,
    maxConcurrentStreams: config.maxConcurrentStreams,
    maxMessageBytes: config.maxMessageBytes,
    reusePort: config.reusePort,
    tls: opened.tls,
    tokens: undefined, // the token file, read into `access`
    access: opened.access,
    metricsPort: config.metricsPort,
    httpPort: config.httpPort,
    httpCorsOrigins: config.httpCorsOrigins,
    writer: undefined, // the transport's own
    clock: undefined, // the system's
    log: opened.log,
  } satisfies Record<keyof ServerOptions, unknown>;
}

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
  options: ServeOptions = {},
): Promise<void> {
  const log = new Logger({ level: config.logLevel, format: config.logFormat });
  const tokenFile = config.tokenFile;
  const access = tokenFile ? await readAccess(tokenFile, log) : undefined;
  const [cert, key, clientCa] = await Promise.all([
    readOptionalFile(config.tlsCert, "TLS certificate"),
    readOptionalFile(config.tlsKey, "TLS key"),
    readOptionalFile(config.tlsClientCa, "TLS client CA"),
  ]);
  const tls = cert && key ? { cert, key, clientCa } : undefined;
  // Before the start line: once it is out, so is every warning.
  for (
    const warning of startupWarnings({
      host: config.host,
      tls: tls !== undefined,
      tokenFile: access && await tokenFileFacts(tokenFile!, access),
      denoVersion: Deno.version.deno,
      nats: config.brokerUrl.kind === "nats"
        ? {
          servers: config.brokerUrl.servers.join(","),
          credentials: natsAuth(config).kind !== "none",
        }
        : undefined,
    })
  ) log.warn(warning);
  const opened = await openBroker(config, log);
  let server: RunningServer;
  // Asked only when there is a token file (main.ts stops on SIGHUP else).
  const reload = async () => {
    if (!access) return;
    try {
      await readAccess(tokenFile!, log, access);
      log.info(`Token file reloaded (${access.list.size} accepted)`);
      const facts = await tokenFileFacts(tokenFile!, access);
      for (const warning of tokenFileWarnings(facts)) log.warn(warning);
    } catch (error) {
      log.warn(
        `Token file not reloaded: the ${access.list.size} tokens read before stay in force`,
        { error: (error as Error).message },
      );
    }
  };
  // Listening before the start line: a SIGHUP once it is out must reload,
  // never end the process (the signal's default).
  const stopReloads = options.onReload?.(() => void reload());
  /** Why serving must end without a signal: the event stream given up on, a worker stuck. */
  let failure: unknown;
  try {
    const options = serverOptions(config, {
      broker: opened.broker,
      access,
      tls,
      log,
    });
    const workers = workerCount(config.workers);
    // Each loads its own code: over workers, the main thread loads no
    // transport (the workers do).
    server = workers === 1
      ? await (await import("../server/server.ts")).startServer(options)
      : await (await import("../server/workers/workers.ts")).startWorkers(
        options,
        { workers },
      );
  } catch (error) {
    stopReloads?.();
    await opened.close();
    throw error;
  }
  if (tls) {
    log.info(clientCa ? "TLS on, client certificates required" : "TLS on");
  }
  if (access) {
    log.info(`Bearer tokens required (${access.list.size} accepted)`);
  }
  try {
    if (!signal.aborted) {
      await new Promise<void>((resolve) => {
        signal.addEventListener("abort", () => resolve(), { once: true });
        opened.failed.catch((error) => {
          failure = error;
          resolve();
        });
        server.failed?.then((error) => {
          failure ??= error;
          resolve();
        });
      });
    }
  } finally {
    stopReloads?.();
  }
  log.info("Shutting down", { graceMs: config.graceMs });
  await server.shutdown({ graceMs: config.graceMs });
  await opened.close();
  const { epoch: _epoch, seq: _seq, size: _size, ...stats } = await server
    .stats();
  log.info("Server stopped", stats);
  if (failure !== undefined) throw failure;
}
