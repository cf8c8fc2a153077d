/**
 * Folder `lib/server/`: the server's core, which knows no transport: its
 * options resolved once (`options.ts`), the hub with its log lines and
 * presence (`server_hub.ts`), the tickers, and the drain (`shutdown.ts`);
 * `startServer` (here) assembles them with each transport. May import every
 * folder below it (`lib/grpc/`, `lib/access/`, `lib/observe/`, `lib/bus/`,
 * `lib/wire/`) and the shared modules of `lib/`; never `lib/cli/`.
 *
 * The greeter server: grpc-js, the hub, its ticker, the standard health
 * service (`grpc.health.v1.Health`) and server reflection (v1 and v1alpha,
 * describing the Greeter and health), bound and started; shut down
 * gracefully, forced after a grace period.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { type Clock, systemClock } from "../bus/clock.ts";
import {
  DEFAULT_GRACE_MS,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_KEEPALIVE_TIME_MS,
  DEFAULT_KEEPALIVE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
} from "../defaults.ts";
import type { Hub } from "../bus/hub.ts";
import { Logger } from "../log.ts";
import type { Metrics } from "../observe/metrics.ts";
import { loadGreeterProto } from "../wire/proto.ts";
import { toServiceError } from "../grpc/status.ts";
import { createGreeterService } from "../grpc/service.ts";
import { AccessControl } from "../access/access.ts";
import { accessInterceptor } from "../grpc/access_interceptor.ts";
import { serverCredentials, type ServerTls } from "../wire/tls.ts";
import { formatAddress } from "../wire/address.ts";
import {
  addHealthAndReflection,
  DEFAULT_MAX_HEALTH_WATCHES,
} from "../grpc/health.ts";
import {
  type MetricsEndpoint,
  serveMetrics,
} from "../observe/metrics_endpoint.ts";
import { serverMetrics } from "../observe/server_metrics.ts";
import {
  createServerHub,
  type ServerHubOptions,
  startTickers,
} from "./server_hub.ts";
import { stopServer } from "./shutdown.ts";
import {
  callInterceptor,
  type CallWriterOptions,
  limitHeaderList,
  listenForConnections,
  logHandshakeFailures,
  MAX_HEADER_LIST_BYTES,
  metadataLimitInterceptor,
  redactGrpcLogs,
} from "../grpc/workarounds/mod.ts";
import { PeerLineBudget } from "../observe/peer_lines.ts";

export { HEALTH_SERVICES } from "../grpc/health.ts";
export { presencePayload } from "./server_hub.ts";
export { formatAddress } from "../wire/address.ts";

/** Connection lifetime settings; each is off when undefined. */
export interface ConnectionOptions {
  /** Ping each peer this often (ms) to find dead ones. Default {@linkcode DEFAULT_KEEPALIVE_TIME_MS}. */
  keepaliveTimeMs?: number;
  /** Drop a peer that has not answered a ping within this (ms). Default {@linkcode DEFAULT_KEEPALIVE_TIMEOUT_MS}. */
  keepaliveTimeoutMs?: number;
  /** Close a connection with no call open for this long (ms). */
  maxConnectionIdleMs?: number;
  /** Ask a connection to go away after this long (ms): new calls go elsewhere. */
  maxConnectionAgeMs?: number;
  /** After that request, how long (ms) its calls may still run; set it too, or long streams never rebalance. */
  maxConnectionAgeGraceMs?: number;
  /** Most connections open at once (closed at once beyond). Default {@linkcode DEFAULT_MAX_CONNECTIONS}. */
  maxConnections?: number;
  /** Share the port with other processes (SO_REUSEPORT); only with a shared broker. */
  reusePort?: boolean;
  /** Most concurrent calls (HTTP/2 streams) per connection. */
  maxConcurrentStreams?: number;
  /** Largest message accepted or sent, in bytes (grpc-js default: 4 MiB in, unlimited out). */
  maxMessageBytes?: number;
}

/** Who may call, and how. */
export interface AccessOptions {
  /** Serve TLS (mTLS with `clientCa`); plaintext when unset. */
  tls?: ServerTls;
  /**
   * Accepted bearer tokens, as token file lines (a token, then what it
   * grants: see `permissions.ts`); when set, every call but health and
   * reflection needs one, and so does `/metrics`.
   */
  tokens?: readonly string[];
  /** The same as a replaceable list (the serve command reloads it); wins over `tokens`. */
  access?: AccessControl;
}

/** Options of {@linkcode startServer}. */
export interface ServerOptions
  extends ConnectionOptions, AccessOptions, ServerHubOptions {
  /** Interface to bind: `::` (all, the default), `127.0.0.1`, a host name… */
  host?: string;
  /** Port to bind; 0 picks a free one. Default 50051. */
  port?: number;
  /** Milliseconds between hub ticks (and `SayHelloStream2` timers). Default 1000. */
  intervalMs?: number;
  /** Milliseconds between heartbeats to idle subscribers. Default {@linkcode DEFAULT_HEARTBEAT_MS}. */
  heartbeatMs?: number;
  /** Largest payload `Publish` accepts, in bytes. */
  maxPublishBytes?: number;
  /** Goodbyes advise reconnecting after a random delay below this (ms). */
  reconnectJitterMs?: number;
  /** Serve Prometheus metrics at `http://HOST:PORT/metrics` (0 picks a port); off when undefined. */
  metricsPort?: number;
  /** Most hub subscriptions per connection (RESOURCE_EXHAUSTED beyond). */
  maxSubscribersPerConnection?: number;
  /** Most hub subscriptions per peer, its remote address (RESOURCE_EXHAUSTED beyond). Default: no limit. */
  maxSubscribersPerPeer?: number;
  /** Transport backpressure settings for every stream. */
  writer?: CallWriterOptions;
  /** Default {@linkcode systemClock}. */
  clock?: Clock;
  /** Default: text at `info` to stderr. */
  log?: Logger;
}

/** Options of {@linkcode GreeterServer.shutdown}. */
export interface ShutdownOptions {
  /** Milliseconds to wait for calls to finish before cancelling them. */
  graceMs?: number;
}

/** A running server, as returned by {@linkcode startServer}. */
export interface GreeterServer extends AsyncDisposable {
  /** The bound address, e.g. `[::]:50051` or `127.0.0.1:40123`. */
  readonly address: string;
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /** The metrics HTTP port, when metrics are served. */
  readonly metricsPort?: number;
  /** The server's metrics (served over HTTP when `metricsPort` is set). */
  readonly metrics: Metrics;
  /** The event bus behind `Subscribe`, `Publish` and `SayHelloStreamReply`. */
  readonly hub: Hub<Uint8Array>;
  /**
   * Drains: health turns NOT_SERVING, tickers stop, new subscriptions and
   * publishes are refused, every subscription stream ends with a Goodbye
   * then OK after what it holds, health watches end; calls get `graceMs` to
   * finish, then what is left is cancelled. Idempotent: later calls return
   * the same promise.
   */
  shutdown(options?: ShutdownOptions): Promise<void>;
}

/** The grpc-js server options for `options`: lifetimes set, channelz off. */
function channelOptions(options: ConnectionOptions): grpc.ServerOptions {
  const set: Record<string, number | undefined> = {
    "grpc.enable_channelz": 0, // costs on every call; nobody reads it here
    "grpc.keepalive_time_ms": options.keepaliveTimeMs ??
      DEFAULT_KEEPALIVE_TIME_MS,
    "grpc.keepalive_timeout_ms": options.keepaliveTimeoutMs ??
      DEFAULT_KEEPALIVE_TIMEOUT_MS,
    "grpc.max_connection_idle_ms": options.maxConnectionIdleMs,
    "grpc.max_connection_age_ms": options.maxConnectionAgeMs,
    "grpc.max_connection_age_grace_ms": options.maxConnectionAgeGraceMs,
    "grpc.max_concurrent_streams": options.maxConcurrentStreams,
    "grpc.max_receive_message_length": options.maxMessageBytes,
    "grpc.max_send_message_length": options.maxMessageBytes,
  };
  return Object.fromEntries(
    Object.entries(set).filter(([, value]) => value !== undefined),
  );
}

/**
 * Starts a greeter server and resolves once it is bound and serving.
 * Rejects with a `GreeterError` naming the address when it cannot
 * bind.
 *
 * @example
 * ```ts ignore
 * import { startServer } from "./server.ts";
 * await using server = await startServer({ host: "127.0.0.1", port: 0 });
 * console.log(server.port);
 * ```
 */
export async function startServer(
  options: ServerOptions = {},
): Promise<GreeterServer> {
  const {
    host = "::",
    port = 50051,
    intervalMs = 1000,
    clock = systemClock,
    log = new Logger(),
  } = options;
  if (!(intervalMs > 0)) {
    throw new RangeError(
      `Cannot start server: interval must be positive, got ${intervalMs}`,
    );
  }
  const credentials = serverCredentials(options.tls); // checked before anything starts
  redactGrpcLogs(); // GRPC_TRACE would log bearer tokens otherwise
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  /** Join, leave and disconnect lines per peer: churn must not flood the log. */
  const peerLines = new PeerLineBudget();
  const hub = createServerHub(options, {
    log,
    clock,
    peerLines,
    onLeave: (reason) => leaves.inc({ reason }),
  });
  const { metrics, leaves, rpcs } = serverMetrics(hub, options.broker);
  // A shared log's recent past is read back first, so that cursors from
  // before this instance started resume here.
  await options.broker?.ready;
  const access = options.access ??
    (options.tokens ? new AccessControl(options.tokens, { log }) : undefined);
  const draining = new AbortController();
  /** Aborts once calls are forcibly cancelled: writers stuck on a connection Deno keeps open give up. */
  const stopped = new AbortController();
  const debug = log.enabled("debug");
  const server = new grpc.Server({
    ...channelOptions(options),
    // Innermost first: these then see what authentication refuses.
    interceptors: [
      callInterceptor({
        onEnd: ({ method, code, ms, peer }) => {
          rpcs.inc({ method, code });
          // --log-level debug: one line per call once it ends.
          if (!debug) return;
          log.debug("Call ended", {
            method,
            peer,
            code,
            ms: Math.round(ms * 10) / 10,
          });
        },
        peers: debug,
      }),
      ...(access ? [accessInterceptor(access)] : []),
      // Outermost: an oversized header list is refused before anything else.
      metadataLimitInterceptor(MAX_HEADER_LIST_BYTES, toServiceError),
    ],
  });
  limitHeaderList(server);
  const health = await addHealthAndReflection(server, {
    maxWatches: Math.min(
      options.maxSubscribers ?? Infinity,
      DEFAULT_MAX_HEALTH_WATCHES,
    ),
  });
  // On a shared stream, presence lists every instance's subscribers.
  const directory = options.broker?.directory?.((query) => {
    const page = hub.page(query);
    // Peers' addresses stay on the instance that has them.
    const entries = page.entries.map((info) => ({ ...info, labels: {} }));
    return { ...page, entries };
  });
  // Health follows the event stream's engine, while there is one.
  const unwatchEngine = options.broker?.watch?.((change) => {
    if (change.kind === "engine") health.serving(change.up);
  });
  draining.signal.addEventListener("abort", () => {
    directory?.close();
    unwatchEngine?.();
  }, { once: true });
  if (options.broker?.engine?.up === false) health.serving(false);
  server.addService(
    loadGreeterProto().service,
    createGreeterService({
      hub,
      directory,
      log,
      intervalMs,
      clock,
      shutdown: draining.signal,
      forced: stopped.signal,
      writer: { maxMessageBytes: options.maxMessageBytes, ...options.writer },
      maxSubscribersPerConnection: options.maxSubscribersPerConnection,
      maxSubscribersPerPeer: options.maxSubscribersPerPeer,
      heartbeatIntervalMs: heartbeatMs,
      maxPublishBytes: options.maxPublishBytes,
      reconnectJitterMs: options.reconnectJitterMs,
      peerLines,
    }),
  );

  // Our own listener: it caps connections and survives running out of
  // descriptors, which grpc-js's bindAsync listener does not on Deno.
  const injector = server.createConnectionInjector(credentials);
  const listener = await listenForConnections({
    host,
    port,
    maxConnections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    reusePort: options.reusePort,
    log,
    onConnection: (socket) => injector.injectConnection(socket),
  });
  const boundPort = listener.port;
  if (options.tls) logHandshakeFailures(server, log);
  const address = formatAddress(host, boundPort);
  log.info(`Starting server on ${address}`, { port: boundPort });
  let exporter: MetricsEndpoint | undefined;
  if (options.metricsPort !== undefined) {
    try {
      exporter = serveMetrics(
        metrics,
        host,
        options.metricsPort,
        log,
        access && ((caller) => access.authorizeMetrics(caller)),
      );
    } catch (error) {
      void listener.close();
      server.forceShutdown();
      throw error;
    }
  }
  const tickers = startTickers(hub, {
    intervalMs,
    heartbeatMs,
    clock,
    log,
    signal: draining.signal,
    shared: options.broker?.shared,
  });

  let stopping: Promise<void> | undefined;
  const shutdown = (shutdownOptions: ShutdownOptions = {}) =>
    stopping ??= stopServer({
      server,
      listener,
      health,
      hub,
      tickers,
      draining,
      stopped,
      metrics: exporter,
      log,
    }, shutdownOptions.graceMs ?? DEFAULT_GRACE_MS);
  return {
    address,
    port: boundPort,
    metricsPort: exporter?.port,
    metrics,
    hub,
    shutdown,
    [Symbol.asyncDispose]: () => shutdown(),
  };
}
