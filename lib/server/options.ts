/**
 * The server's options, each declared once, and resolved in one place
 * ({@linkcode resolveServerOptions}): every default applied and every value
 * checked before anything starts. What lies below (`server_hub.ts`, the
 * transports) receives resolved values and applies no default of its own.
 *
 * @module
 */

import type { AccessControl } from "../access/access.ts";
import { type Broker, MemoryBroker } from "../bus/broker.ts";
import { type Clock, systemClock } from "../bus/clock.ts";
import {
  DEFAULT_BUFFER_SIZE,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_KEEPALIVE_TIME_MS,
  DEFAULT_KEEPALIVE_TIMEOUT_MS,
  DEFAULT_MAX_CONCURRENT_STREAMS,
  DEFAULT_MAX_CONNECTION_IDLE_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_PATTERNS_PER_PEER,
  DEFAULT_MAX_PUBLISH_BYTES,
  DEFAULT_MAX_SUBSCRIBERS,
  DEFAULT_MAX_SUBSCRIBERS_PER_PEER,
  DEFAULT_RECONNECT_JITTER_MS,
  DEFAULT_REPLAY_AGE_MS,
  DEFAULT_REPLAY_BYTES,
  DEFAULT_REPLAY_SIZE,
  type SlowConsumerPolicy,
} from "../defaults.ts";
import { AccessControl as Access } from "../access/access.ts";
import { shareOf } from "../access/peer_shares.ts";
import type { WriterSettings } from "../grpc/transport.ts";
import { Logger } from "../log.ts";
import { checkServerTls, type ServerTls } from "../wire/tls.ts";
import { checkOrigin } from "../wire/address.ts";
import { ConfigError } from "../errors.ts";

/**
 * Default interface bound: loopback only. A server reachable from elsewhere
 * is a choice made with `--host`, together with TLS and tokens.
 */
export const DEFAULT_HOST = "127.0.0.1";

/** Default port bound. */
export const DEFAULT_PORT = 50051;

/** Default milliseconds between the clock's ticks. */
export const DEFAULT_INTERVAL_MS = 1000;

/** Options of `startServer`; each has its default here, applied by {@linkcode resolveServerOptions}. */
export interface ServerOptions {
  /** Interface to bind: `::` (all), `127.0.0.1`, a host name… Default {@linkcode DEFAULT_HOST}. */
  host?: string;
  /** Port to bind; 0 picks a free one. Default {@linkcode DEFAULT_PORT}. */
  port?: number;
  /** Milliseconds between hub ticks (and `SayHelloStream2` timers). Default {@linkcode DEFAULT_INTERVAL_MS}. */
  intervalMs?: number;
  /** Milliseconds between heartbeats to idle subscribers. Default {@linkcode DEFAULT_HEARTBEAT_MS}. */
  heartbeatMs?: number;
  /** Where events are sequenced. Default: a new {@linkcode MemoryBroker} (a new epoch per start). */
  broker?: Broker<Uint8Array>;
  /** Events each subscription may hold unread. Default {@linkcode DEFAULT_BUFFER_SIZE}. */
  bufferSize?: number;
  /** What the hub does when that buffer is full. Default `"drop-oldest"`. */
  policy?: SlowConsumerPolicy;
  /** Most hub subscriptions at once. Default {@linkcode DEFAULT_MAX_SUBSCRIBERS}. */
  maxSubscribers?: number;
  /** Most hub subscriptions per connection (RESOURCE_EXHAUSTED beyond). Default: no limit. */
  maxSubscribersPerConnection?: number;
  /** Most hub subscriptions per peer, its remote address. Default {@linkcode DEFAULT_MAX_SUBSCRIBERS_PER_PEER}. */
  maxSubscribersPerPeer?: number;
  /** Most distinct wildcard topic patterns per peer, over its subscriptions. Default {@linkcode DEFAULT_MAX_PATTERNS_PER_PEER}. */
  maxPatternsPerPeer?: number;
  /** Events kept for resume. Default {@linkcode DEFAULT_REPLAY_SIZE}. */
  replaySize?: number;
  /** Age beyond which events are not replayed (ms). Default {@linkcode DEFAULT_REPLAY_AGE_MS}. */
  replayAgeMs?: number;
  /** Most bytes of events kept for resume. Default {@linkcode DEFAULT_REPLAY_BYTES}. */
  replayBytes?: number;
  /** Largest payload `Publish` accepts, in bytes. Default {@linkcode DEFAULT_MAX_PUBLISH_BYTES}. */
  maxPublishBytes?: number;
  /** Goodbyes advise reconnecting after a random delay below this (ms). Default {@linkcode DEFAULT_RECONNECT_JITTER_MS}. */
  reconnectJitterMs?: number;
  /** Ping each peer this often (ms) to find dead ones. Default {@linkcode DEFAULT_KEEPALIVE_TIME_MS}. */
  keepaliveTimeMs?: number;
  /** Drop a peer that has not answered a ping within this (ms). Default {@linkcode DEFAULT_KEEPALIVE_TIMEOUT_MS}. */
  keepaliveTimeoutMs?: number;
  /** Close a connection with no call open for this long (ms). Default {@linkcode DEFAULT_MAX_CONNECTION_IDLE_MS}. */
  maxConnectionIdleMs?: number;
  /** Ask a connection to go away after this long (ms): new calls go elsewhere. Default: never. */
  maxConnectionAgeMs?: number;
  /** After that request, how long (ms) its calls may still run; set it too, or long streams never rebalance. Default: unlimited. */
  maxConnectionAgeGraceMs?: number;
  /** Most connections open at once (closed at once beyond). Default {@linkcode DEFAULT_MAX_CONNECTIONS}. */
  maxConnections?: number;
  /**
   * Most connections one peer (remote address) holds at once (its new ones
   * closed at once beyond), over every transport. Default: a quarter of
   * `maxConnections` ({@linkcode shareOf}).
   */
  maxConnectionsPerPeer?: number;
  /** Most concurrent calls (HTTP/2 streams) per connection. Default {@linkcode DEFAULT_MAX_CONCURRENT_STREAMS}. */
  maxConcurrentStreams?: number;
  /** Largest message accepted or sent, in bytes. Default {@linkcode DEFAULT_MAX_MESSAGE_BYTES}. */
  maxMessageBytes?: number;
  /** Share the port with other processes (SO_REUSEPORT); only with a shared broker. Default false. */
  reusePort?: boolean;
  /** Serve TLS (mTLS with `clientCa`); plaintext when unset. */
  tls?: ServerTls;
  /**
   * Accepted bearer tokens, as token file lines (a token, then what it
   * grants: see `lib/access/permissions.ts`); when set, every call but
   * health and reflection needs one, and so does `/metrics`.
   */
  tokens?: readonly string[];
  /** The same as a replaceable list (the serve command reloads it); wins over `tokens`. */
  access?: AccessControl;
  /** Serve Prometheus metrics at `http://HOST:PORT/metrics` (0 picks a port). Default: off. */
  metricsPort?: number;
  /**
   * Serve browsers and HTTP tools on this port (0 picks one): server-sent
   * events, Connect, gRPC-Web, the console; over TLS when `tls` is set.
   * Default: off.
   */
  httpPort?: number;
  /** Origins (`scheme://host[:port]`) whose pages may call the HTTP port. Default: none (same origin only). */
  httpCorsOrigins?: readonly string[];
  /** Transport backpressure settings for every stream (`maxMessageBytes` comes from above). */
  writer?: WriterSettings;
  /** Default {@linkcode systemClock}. */
  clock?: Clock;
  /** Default: text at `info` to stderr. */
  log?: Logger;
}

/** The settings that stay off when not given. */
type OffByDefault =
  | "maxSubscribersPerConnection"
  | "maxConnectionAgeMs"
  | "maxConnectionAgeGraceMs"
  | "metricsPort"
  | "httpPort"
  | "tls";

/**
 * {@linkcode ServerOptions} resolved: every default applied (`tokens`
 * turned into `access`); what is off by default stays optional.
 */
export type ResolvedServerOptions =
  & Required<Omit<ServerOptions, OffByDefault | "tokens" | "access">>
  & { [K in OffByDefault | "access"]: ServerOptions[K] };

/**
 * Applies every default of {@linkcode ServerOptions}, builds the access list
 * from `tokens`, and checks what can be checked before anything starts
 * (the interval, the TLS material). Throws `RangeError` or `ConfigError`
 * naming the value.
 *
 * @example
 * ```ts
 * import { resolveServerOptions } from "./options.ts";
 * const settings = resolveServerOptions({ port: 0 });
 * settings.maxSubscribersPerPeer; // 5000
 * ```
 */
export function resolveServerOptions(
  options: ServerOptions,
): ResolvedServerOptions {
  const {
    host = DEFAULT_HOST,
    port = DEFAULT_PORT,
    intervalMs = DEFAULT_INTERVAL_MS,
    heartbeatMs = DEFAULT_HEARTBEAT_MS,
    clock = systemClock,
    log = new Logger(),
    broker = new MemoryBroker<Uint8Array>({ now: () => clock.now() }),
    bufferSize = DEFAULT_BUFFER_SIZE,
    policy = "drop-oldest",
    maxSubscribers = DEFAULT_MAX_SUBSCRIBERS,
    maxSubscribersPerConnection,
    maxSubscribersPerPeer = DEFAULT_MAX_SUBSCRIBERS_PER_PEER,
    maxPatternsPerPeer = DEFAULT_MAX_PATTERNS_PER_PEER,
    replaySize = DEFAULT_REPLAY_SIZE,
    replayAgeMs = DEFAULT_REPLAY_AGE_MS,
    replayBytes = DEFAULT_REPLAY_BYTES,
    maxPublishBytes = DEFAULT_MAX_PUBLISH_BYTES,
    reconnectJitterMs = DEFAULT_RECONNECT_JITTER_MS,
    keepaliveTimeMs = DEFAULT_KEEPALIVE_TIME_MS,
    keepaliveTimeoutMs = DEFAULT_KEEPALIVE_TIMEOUT_MS,
    maxConnectionIdleMs = DEFAULT_MAX_CONNECTION_IDLE_MS,
    maxConnectionAgeMs,
    maxConnectionAgeGraceMs,
    maxConnections = DEFAULT_MAX_CONNECTIONS,
    maxConnectionsPerPeer = shareOf(maxConnections),
    maxConcurrentStreams = DEFAULT_MAX_CONCURRENT_STREAMS,
    maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES,
    reusePort = false,
    tls,
    tokens,
    metricsPort,
    httpPort,
    httpCorsOrigins = [],
    writer = {},
  } = options;
  if (!(intervalMs > 0)) {
    throw new RangeError(
      `Cannot start server: interval must be positive, got ${intervalMs}`,
    );
  }
  if (tls) checkServerTls(tls);
  if (httpPort !== undefined && tls?.clientCa) {
    throw new ConfigError(
      "Cannot serve HTTP with client certificates required: Deno.serve cannot verify them; drop the HTTP port, or the client CA",
    );
  }
  for (const origin of httpCorsOrigins) checkOrigin(origin);
  const access = options.access ??
    (tokens ? new Access(tokens, { log }) : undefined);
  return {
    host,
    port,
    intervalMs,
    heartbeatMs,
    clock,
    log,
    broker,
    bufferSize,
    policy,
    maxSubscribers,
    maxSubscribersPerConnection,
    maxSubscribersPerPeer,
    maxPatternsPerPeer,
    replaySize,
    replayAgeMs,
    replayBytes,
    maxPublishBytes,
    reconnectJitterMs,
    keepaliveTimeMs,
    keepaliveTimeoutMs,
    maxConnectionIdleMs,
    maxConnectionAgeMs,
    maxConnectionAgeGraceMs,
    maxConnections,
    maxConnectionsPerPeer,
    maxConcurrentStreams,
    maxMessageBytes,
    reusePort,
    tls,
    access,
    metricsPort,
    httpPort,
    httpCorsOrigins,
    writer,
  };
}
