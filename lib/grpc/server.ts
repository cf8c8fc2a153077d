/**
 * The greeter server: grpc-js, the hub, its ticker, the standard health
 * service (`grpc.health.v1.Health`) and server reflection (v1 and v1alpha,
 * describing the Greeter and health), bound and started; shut down
 * gracefully, forced after a grace period.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { type CallWriterOptions, chargingInterceptor } from "./call_writer.ts";
import { type Clock, systemClock } from "../bus/clock.ts";
import {
  DEFAULT_GRACE_MS,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_KEEPALIVE_TIME_MS,
  DEFAULT_KEEPALIVE_TIMEOUT_MS,
  DEFAULT_REPLAY_BYTES,
  type SlowConsumerPolicy,
} from "../defaults.ts";
import { GreeterError, UnavailableError } from "../errors.ts";
import type { Broker } from "../bus/broker.ts";
import { Hub, type PresenceChange } from "../bus/hub.ts";
import { Logger } from "../log.ts";
import { Metrics } from "./metrics.ts";
import { loadGreeterProto, loadServedDefinition } from "./proto.ts";
import {
  createAuthInterceptor,
  createGreeterService,
  TICK_TOPIC,
} from "./service.ts";
import { BearerTokens } from "./auth.ts";
import { runTicker } from "../bus/ticker.ts";
import { serverCredentials, type ServerTls } from "./tls.ts";

/** The services health reports on: the server as a whole ("") and the Greeter. */
export const HEALTH_SERVICES: readonly string[] = ["", "helloworld.Greeter"];

/** What an event weighs besides its payload (object, topic), roughly. */
const EVENT_OVERHEAD_BYTES = 128;

/** Milliseconds a forced shutdown waits for connections to close. */
const FORCE_WAIT_MS = 1_000;

/** Shortest time between two "missed events" lines for one subscription. */
const GAP_LOG_INTERVAL_MS = 10_000;

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
  /** Most concurrent calls (HTTP/2 streams) per connection. */
  maxConcurrentStreams?: number;
  /** Largest message accepted or sent, in bytes (grpc-js default: 4 MiB in, unlimited out). */
  maxMessageBytes?: number;
}

/** Who may call, and how. */
export interface AccessOptions {
  /** Serve TLS (mTLS with `clientCa`); plaintext when unset. */
  tls?: ServerTls;
  /** Accepted bearer tokens; when set, every call but health needs one. */
  tokens?: readonly string[];
}

/** Options of {@linkcode startServer}. */
export interface ServerOptions extends ConnectionOptions, AccessOptions {
  /** Interface to bind: `::` (all, the default), `127.0.0.1`, a host name… */
  host?: string;
  /** Port to bind; 0 picks a free one. Default 50051. */
  port?: number;
  /** Milliseconds between hub ticks (and `SayHelloStream2` timers). Default 1000. */
  intervalMs?: number;
  /** Events each subscription may hold unread. */
  bufferSize?: number;
  /** What the hub does when that buffer is full. */
  policy?: SlowConsumerPolicy;
  /** Events kept for resume. */
  replaySize?: number;
  /** Age beyond which events are not replayed (ms). */
  replayAgeMs?: number;
  /** Most bytes of events kept for resume. Default {@linkcode DEFAULT_REPLAY_BYTES}. */
  replayBytes?: number;
  /** Milliseconds between heartbeats to idle subscribers. Default {@linkcode DEFAULT_HEARTBEAT_MS}. */
  heartbeatMs?: number;
  /** Largest payload `Publish` accepts, in bytes. */
  maxPublishBytes?: number;
  /** Goodbyes advise reconnecting after a random delay below this (ms). */
  reconnectJitterMs?: number;
  /** Where events are sequenced. Default: in memory, a new epoch per start. */
  broker?: Broker<Uint8Array>;
  /** Serve Prometheus metrics at `http://HOST:PORT/metrics` (0 picks a port); off when undefined. */
  metricsPort?: number;
  /** Most hub subscriptions at once (RESOURCE_EXHAUSTED beyond). */
  maxSubscribers?: number;
  /** Most hub subscriptions per connection (RESOURCE_EXHAUSTED beyond). */
  maxSubscribersPerConnection?: number;
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

const encoder = new TextEncoder();

/** A join or leave as the `$presence` payload: JSON, e.g. `{"action":"join","subscription_id":3,"name":"ann","topics":["*"]}`. */
export function presencePayload(change: PresenceChange): Uint8Array {
  const { action, subscription, reason } = change;
  return encoder.encode(JSON.stringify({
    action,
    subscription_id: subscription.id,
    name: subscription.name,
    topics: subscription.topics,
    reason,
  }));
}

/**
 * A grpc-js server interceptor counting every call once by method and final
 * status (`CANCELLED` when the client went away first, `DEADLINE_EXCEEDED`
 * when its deadline passed). A call grpc-js refuses before its handler sees
 * it (a message over the size limit) is counted under the status the
 * handler then gives.
 */
function countingInterceptor(
  count: (method: string, code: string) => void,
): grpc.ServerInterceptor {
  return (method, call) => {
    let counted = false;
    const once = (code: string) => {
      if (counted) return;
      counted = true;
      count(method.path, code);
    };
    return new grpc.ServerInterceptingCall(call, {
      start(next) {
        // grpc-js ends a call past its deadline itself, then cancels it.
        next({
          onCancel: () => {
            const deadline = call.getDeadline();
            const ms = deadline instanceof Date ? deadline.getTime() : deadline;
            once(ms <= Date.now() ? "DEADLINE_EXCEEDED" : "CANCELLED");
          },
        });
      },
      sendStatus(status, next) {
        once(grpc.status[status.code] ?? String(status.code));
        next(status);
      },
    });
  };
}

/** The server's metric families, fed by the hub and the calls. */
function serverMetrics(hub: Hub<Uint8Array>) {
  const metrics = new Metrics();
  const stat = (
    name: string,
    help: string,
    read: (stats: Hub<Uint8Array>["stats"]) => number,
  ) => metrics.collected(name, help, "counter", () => [[{}, read(hub.stats)]]);
  metrics.collected(
    "greeter_subscribers",
    "Live hub subscriptions.",
    "gauge",
    () => [[{}, hub.size]],
  );
  stat(
    "greeter_events_published_total",
    "Events published on the bus (all topics, ticks and presence included).",
    (s) => s.published,
  );
  stat(
    "greeter_events_delivered_total",
    "Events handed to subscribers (each subscriber counts).",
    (s) => s.delivered,
  );
  stat(
    "greeter_events_dropped_total",
    "Events dropped for slow subscribers under the drop-oldest policy.",
    (s) => s.dropped,
  );
  metrics.collected(
    "greeter_resumes_total",
    "Subscriptions that asked to resume, by outcome.",
    "counter",
    () => [
      [{ outcome: "recovered" }, hub.stats.resumesRecovered],
      [{ outcome: "missed" }, hub.stats.resumesMissed],
    ],
  );
  const leaves = metrics.counter(
    "greeter_subscriptions_ended_total",
    "Subscriptions ended, by reason (slow-consumer is a disconnect by policy).",
  );
  const rpcs = metrics.counter(
    "greeter_rpcs_total",
    "Calls handled, by method and final status.",
  );
  metrics.collected(
    "process_resident_memory_bytes",
    "Resident memory size in bytes.",
    "gauge",
    () => [[{}, Deno.memoryUsage().rss]],
  );
  metrics.collected(
    "deno_heap_used_bytes",
    "V8 heap in use, in bytes (the rest of the resident memory is native: buffers, the runtime).",
    "gauge",
    () => [[{}, Deno.memoryUsage().heapUsed]],
  );
  const started = performance.timeOrigin / 1000;
  metrics.collected(
    "process_start_time_seconds",
    "Start time of the process since the Unix epoch, in seconds.",
    "gauge",
    () => [[{}, started]],
  );
  return { metrics, leaves, rpcs };
}

/**
 * Serves `metrics` at `http://HOST:PORT/metrics` until `stop()`. Throws a
 * {@linkcode GreeterError} naming the address when it cannot bind.
 */
function serveMetrics(
  metrics: Metrics,
  host: string,
  port: number,
  log: Logger,
): { port: number; stop(): Promise<void> } {
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

/** Formats `host:port`, bracketing IPv6 literals: `[::]:50051`. */
export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Starts a greeter server and resolves once it is bound and serving.
 * Rejects with a {@linkcode GreeterError} naming the address when it cannot
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
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  /** Per subscription: when its last gap was logged, and what came since. */
  const gapLogs = new Map<
    number,
    { at: number; gaps: number; missed: number }
  >();
  const hub = new Hub<Uint8Array>({
    broker: options.broker,
    bufferSize: options.bufferSize,
    policy: options.policy,
    maxSubscribers: options.maxSubscribers,
    replaySize: options.replaySize,
    replayAgeMs: options.replayAgeMs,
    replayBytes: options.replayBytes ?? DEFAULT_REPLAY_BYTES,
    sizeOf: (payload) => payload.length + EVENT_OVERHEAD_BYTES,
    presence: presencePayload,
    now: () => clock.now(),
    onJoin: (info) => {
      log.info(`client ${info.name} subscribed.`, {
        subscription: info.id,
        peer: info.labels.peer,
        topics: info.topics.join(","),
      });
    },
    onGap: (info, gap) => {
      // Once per subscriber per GAP_LOG_INTERVAL_MS: a subscriber that stays
      // behind reports a gap after every few events, and a line each made
      // the log the costliest part of an overloaded server.
      const now = clock.now();
      const last = gapLogs.get(info.id);
      if (last && now - last.at < GAP_LOG_INTERVAL_MS) {
        last.gaps++;
        last.missed += gap.missed;
        return;
      }
      gapLogs.set(info.id, { at: now, gaps: 0, missed: 0 });
      log.warn(`client ${info.name} missed events.`, {
        subscription: info.id,
        peer: info.labels.peer,
        reason: gap.reason,
        from: gap.from,
        to: gap.to,
        missed: gap.missed || undefined,
        gapsSinceLastLine: last?.gaps || undefined,
        missedSinceLastLine: last?.missed || undefined,
      });
    },
    onLeave: (info, reason) => {
      gapLogs.delete(info.id);
      leaves.inc({ reason });
      log.info(`client ${info.name} is leaving.`, {
        subscription: info.id,
        peer: info.labels.peer,
        reason,
        dropped: info.dropped || undefined,
      });
    },
  });
  const { metrics, leaves, rpcs } = serverMetrics(hub);
  const stopping = new AbortController();
  /** Aborts once calls are forcibly cancelled: writers stuck on a connection Deno keeps open give up. */
  const forced = new AbortController();
  const server = new grpc.Server({
    ...channelOptions(options),
    // Innermost first: these then see what authentication refuses.
    interceptors: [
      chargingInterceptor(),
      countingInterceptor((method, code) => rpcs.inc({ method, code })),
      ...(options.tokens
        ? [createAuthInterceptor(new BearerTokens(options.tokens))]
        : []),
    ],
  });
  // Loaded here, not at import: grpc-health-check reads its proto file when
  // imported, which a process that only imports this module (the client,
  // via config defaults) must not need permission for.
  const [{ HealthImplementation }, { ReflectionService }] = await Promise.all([
    import("grpc-health-check"),
    import("@grpc/reflection"),
  ]);
  const health = new HealthImplementation(
    Object.fromEntries(HEALTH_SERVICES.map((name) => [name, "SERVING"])),
  );
  /** Open Health.Watch calls: a drain ends them, or they would hold the shutdown. */
  const watches = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  health.addToServer({
    addService(definition, implementation) {
      const { watch } = implementation as {
        watch: (call: grpc.ServerWritableStream<unknown, unknown>) => void;
      };
      server.addService(definition, {
        ...implementation,
        watch(call: grpc.ServerWritableStream<unknown, unknown>) {
          watches.add(call);
          call.once("close", () => watches.delete(call));
          call.once("cancelled", () => watches.delete(call));
          watch(call);
        },
      });
    },
  } as grpc.Server);
  new ReflectionService(loadServedDefinition()).addToServer(server);
  server.addService(
    loadGreeterProto().service,
    createGreeterService({
      hub,
      log,
      intervalMs,
      clock,
      shutdown: stopping.signal,
      forced: forced.signal,
      writer: options.writer,
      maxSubscribersPerConnection: options.maxSubscribersPerConnection,
      heartbeatIntervalMs: heartbeatMs,
      maxPublishBytes: options.maxPublishBytes,
      reconnectJitterMs: options.reconnectJitterMs,
    }),
  );

  const requested = formatAddress(host, port);
  const boundPort = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      requested,
      credentials,
      (error, bound) => {
        if (error) {
          reject(
            new GreeterError(`Cannot bind "${requested}": ${error.message}`, {
              cause: error,
            }),
          );
        } else resolve(bound);
      },
    );
  });
  const address = formatAddress(host, boundPort);
  log.info(`Starting server on ${address}`, { port: boundPort });
  let exporter: ReturnType<typeof serveMetrics> | undefined;
  if (options.metricsPort !== undefined) {
    try {
      exporter = serveMetrics(metrics, host, options.metricsPort, log);
    } catch (error) {
      server.forceShutdown();
      throw error;
    }
  }

  const tick = new Uint8Array(0);
  const tickers = Promise.all([
    runTicker(() => {
      hub.publish(TICK_TOPIC, tick).catch((error) => {
        log.warn("Could not publish a tick", { error: String(error) });
      });
    }, {
      intervalMs,
      clock,
      signal: stopping.signal,
    }),
    runTicker(() => hub.heartbeat(), {
      intervalMs: heartbeatMs,
      clock,
      signal: stopping.signal,
    }),
  ]).catch((error) => {
    log.error("A hub ticker stopped", { error: String(error) });
  });

  let stopped: Promise<void> | undefined;
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

  async function stop(graceMs: number): Promise<void> {
    // Probes and load balancers learn first, before anything is refused.
    for (const name of HEALTH_SERVICES) health.setStatus(name, "NOT_SERVING");
    stopping.abort();
    await tickers;
    hub.close();
    for (const call of watches) call.end(); // after NOT_SERVING was sent
    watches.clear();
    const graceful = new Promise<void>((resolve) =>
      server.tryShutdown(() => resolve())
    );
    if (await within(graceful, graceMs)) return await exporter?.stop();
    log.warn(`Grace period of ${graceMs} ms over: cancelling open calls`);
    server.forceShutdown();
    forced.abort(new UnavailableError("The server shut down"));
    // Deno 2.9.3 may keep a connection whose peer stays silent open even
    // after forceShutdown(): give up waiting rather than hang the shutdown.
    if (!await within(graceful, FORCE_WAIT_MS)) {
      log.warn(
        "Some connections did not close; leaving them to the process exit",
      );
    }
    await exporter?.stop();
  }

  const shutdown = (shutdownOptions: ShutdownOptions = {}) =>
    stopped ??= stop(shutdownOptions.graceMs ?? DEFAULT_GRACE_MS);
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
