/**
 * Folder `lib/server/`: the server's core, which knows no transport: its
 * options resolved once (`options.ts`), the hub with its log lines and
 * presence (`server_hub.ts`), the tickers, and the drain (`shutdown.ts`);
 * `startServer` (here) assembles them with each transport, and `workers/`
 * runs several such servers in one process (`--workers`). May import every
 * folder below it (`lib/grpc/`, `lib/access/`, `lib/observe/`, `lib/bus/`,
 * `lib/wire/`) and the shared modules of `lib/`; never `lib/cli/`.
 *
 * The greeter server: its options resolved, the hub, each transport (gRPC,
 * with health and reflection), the metrics endpoint and the tickers,
 * started in that order; shut down gracefully, forced after a grace period.
 * A second transport starts beside gRPC over the same
 * {@linkcode TransportCore} and joins the drain as a {@linkcode Transport}.
 *
 * @module
 */

import { Admission } from "../access/admission.ts";
import type { Tally } from "../access/tally.ts";
import type { Slots } from "../bus/slots.ts";
import type { Directory } from "../bus/broker.ts";
import type { Hub, HubOptions, HubStats } from "../bus/hub.ts";
import type { SubscriptionInfo } from "../bus/hub_items.ts";
import { DEFAULT_GRACE_MS } from "../defaults.ts";
import { startGrpcTransport } from "../grpc/transport.ts";
import { startHttpTransport } from "../http/transport.ts";
import type { Transport, TransportCore } from "../transport.ts";
import type { Metrics } from "../observe/metrics.ts";
import { PeerLineBudget } from "../observe/peer_lines.ts";
import { EventLoopLag } from "../observe/runtime_metrics.ts";
import { PeerShares } from "../access/peer_shares.ts";
import { serverMetrics } from "../observe/server_metrics.ts";
import {
  type ResolvedServerOptions,
  resolveServerOptions,
  type ServerOptions,
} from "./options.ts";
import { createServerHub, startTickers } from "./server_hub.ts";
import { listedSubscription, refusalLog } from "./engine_input.ts";
import { stopServer } from "./shutdown.ts";
import { startMetrics } from "./exporter.ts";

/** Options of {@linkcode GreeterServer.shutdown}. */
export interface ShutdownOptions {
  /** Milliseconds to wait for calls to finish before cancelling them. Default {@linkcode DEFAULT_GRACE_MS}. */
  graceMs?: number;
}

/** What a server's event bus says of itself: summed over its workers, if it has some. */
export interface BusSnapshot extends HubStats {
  /** The sequence's name. */
  readonly epoch: string;
  /** The last seq fanned out (by every worker). */
  readonly seq: number;
  /** Live subscriptions. */
  readonly size: number;
}

/**
 * A running server as the command line runs it: alone
 * ({@linkcode GreeterServer}) or over workers (`startWorkers`).
 */
export interface RunningServer extends AsyncDisposable {
  /** The bound address, e.g. `[::]:50051` or `127.0.0.1:40123`. */
  readonly address: string;
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /** The metrics HTTP port, when metrics are served. */
  readonly metricsPort?: number;
  /** The HTTP port (events, Connect, gRPC-Web, the console), when served. */
  readonly httpPort?: number;
  /** The event bus's counters, now. */
  stats(): Promise<BusSnapshot>;
  /**
   * Drains: health turns NOT_SERVING, tickers stop, new subscriptions and
   * publishes are refused, every subscription stream ends with a Goodbye
   * then OK after what it holds, health watches end; calls get `graceMs` to
   * finish, then what is left is cancelled. Idempotent: later calls return
   * the same promise.
   */
  shutdown(options?: ShutdownOptions): Promise<void>;
  /**
   * Resolves, when the server can no longer serve as it should (over
   * workers: one is stuck), to why: it should then be shut down and the
   * process stopped. Absent where nothing can fail so.
   */
  readonly failed?: Promise<Error>;
}

/** A running server, as returned by {@linkcode startServer}. */
export interface GreeterServer extends RunningServer {
  /** The server's metrics (served over HTTP when `metricsPort` is set). */
  readonly metrics: Metrics;
  /** The event bus behind `Subscribe`, `Publish` and `SayHelloStreamReply`. */
  readonly hub: Hub<Uint8Array>;
}

/**
 * What differs where a server runs: alone (its own hub windows, ticks and
 * metrics), or as one of a process's workers (the process's windows and
 * ids; ticks and metrics served by the main thread, which also says where
 * it listens).
 */
export interface ServerRole {
  /** The hub's windows and ids, when not its own. */
  hub?: Pick<HubOptions<Uint8Array>, "windows" | "nextId">;
  /** Where the limits are counted, when not by this server alone. */
  limits?: SharedLimits;
  /** Which worker of the process this server is, if it is one (its metrics say so). */
  worker?: number;
  /** Whether this server publishes the clock's ticks. */
  ticks: boolean;
  /** Whether it serves metrics and says where it listens. */
  alone: boolean;
}

/**
 * The limits of a server that is one of a process's workers, counted for
 * the whole process (every worker takes from the same counts): a peer
 * whose connections land on different workers is still one peer.
 */
export interface SharedLimits {
  /** Subscriptions and patterns per peer address (`--max-subscribers-per-peer`, `--max-patterns-per-peer`). */
  peers: Tally;
  /** Subscriptions in all (`--max-subscribers`): `take` says whether there was room. */
  subscribers: { take(): boolean; give(): void };
  /** Connections in all (`--max-connections`). */
  connections: { take(): boolean; give(): void };
  /** Connections per peer (`--max-connections-per-peer`). */
  connectionShares: Slots;
  /** Reads of the event stream below the window, with a share per peer. */
  brokerReplays: Slots;
  /** Health watches, with a share per peer. */
  healthWatches: Slots;
}

/**
 * The subscriptions a listing shows: on a shared stream every instance's
 * (peers' addresses stay on the instance that has them), else undefined
 * (the hub's own).
 */
function sharedDirectory(
  settings: ResolvedServerOptions,
  hub: Hub<Uint8Array>,
): Directory<SubscriptionInfo> | undefined {
  return settings.broker.directory?.((query) => {
    const page = hub.page(query);
    const entries = page.entries.map((info) => ({ ...info, labels: {} }));
    return { ...page, entries };
  }, {
    // Other instances' answers are untrusted: held to this one's rules.
    entry: listedSubscription,
    onRefused: refusalLog(
      settings.log,
      "A listing answer from another instance left out",
    ),
  });
}

/**
 * Starts the HTTP transport when `httpPort` is set, and adds it to
 * `transports`; stops them when it cannot bind.
 */
async function startHttp(
  settings: ResolvedServerOptions,
  core: TransportCore,
  transports: Transport[],
): Promise<Transport | undefined> {
  const { httpPort } = settings;
  if (httpPort === undefined) return undefined;
  try {
    const http = await startHttpTransport({ ...settings, httpPort }, core);
    transports.push(http);
    return http;
  } catch (error) {
    for (const transport of transports) {
      void transport.close();
      transport.force();
    }
    throw error;
  }
}

/**
 * Starts a greeter server and resolves once it is bound and serving:
 * options resolved, hub, gRPC transport, metrics, tickers. Rejects with a
 * `GreeterError` naming the address when it cannot bind.
 *
 * @example
 * ```ts
 * import { startServer } from "./server.ts";
 * import { Logger } from "../log.ts";
 * await using server = await startServer({
 *   host: "127.0.0.1",
 *   port: 0,
 *   log: new Logger({ write: () => {} }),
 * });
 * server.port > 0; // true
 * ```
 */
export async function startServer(
  options: ServerOptions = {},
): Promise<GreeterServer> {
  return await serveHub(resolveServerOptions(options), {
    ticks: true,
    alone: true,
  });
}

/**
 * Starts a server over resolved `settings`, in `role` (alone, or as a
 * worker of the process, which `lib/server/workers/` assembles).
 *
 * @example
 * ```ts ignore
 * const server = await serveHub(settings, { hub: { windows, nextId }, ticks: false, alone: false });
 * ```
 */
export async function serveHub(
  settings: ResolvedServerOptions,
  role: ServerRole,
): Promise<GreeterServer> {
  const { log, clock, broker } = settings;
  const limits = role.limits;
  /** Join, leave and disconnect lines per peer: churn must not flood the log. */
  const peerLines = new PeerLineBudget();
  const hub = createServerHub(settings, {
    peerLines,
    onLeave: (reason) => leaves.inc({ reason }),
    ...role.hub,
    capacity: limits?.subscribers,
    brokerReplaySlots: limits?.brokerReplays,
  });
  const { metrics, leaves, rpc, connections, eventLoopLag } = serverMetrics(
    hub,
    broker,
    { worker: role.worker },
  );
  // A shared log's recent past is read back first, so that cursors from
  // before this instance started resume here; one whose engine is not
  // reached yet is not waited for (the hub refuses subscriptions meanwhile).
  if (broker.pending === undefined) await broker.ready;
  const draining = new AbortController();
  /** Aborts once calls are forcibly cancelled: writers stuck on a connection Deno keeps open give up. */
  const stopped = new AbortController();
  const core: TransportCore = {
    hub,
    directory: sharedDirectory(settings, hub),
    peerLines,
    admission: new Admission({
      perConnection: settings.maxSubscribersPerConnection,
      perPeer: settings.maxSubscribersPerPeer,
      patternsPerPeer: settings.maxPatternsPerPeer,
      peers: limits?.peers,
    }),
    connectionShares: limits?.connectionShares ?? new PeerShares({
      perPeer: settings.maxConnectionsPerPeer,
      what: "connections",
    }),
    connectionSlots: limits?.connections,
    healthWatches: limits?.healthWatches,
    draining: draining.signal,
    stopped: stopped.signal,
    rpc,
    connections,
  };
  const grpc = await startGrpcTransport(settings, core);
  const transports: Transport[] = [grpc];
  const http = await startHttp(settings, core, transports);
  // Health follows the event stream's engine, while there is one.
  const unwatchEngine = broker.watch?.((change) => {
    if (change.kind === "engine") grpc.serving(change.up);
  });
  draining.signal.addEventListener("abort", () => {
    core.directory?.close();
    unwatchEngine?.();
  }, { once: true });
  if (broker.engine?.up === false) grpc.serving(false);
  if (role.alone) {
    log.info(`Starting server on ${grpc.address}`, { port: grpc.port });
    if (http) {
      log.info(`HTTP on ${settings.tls ? "https" : "http"}://${http.address}`, {
        httpPort: http.port,
      });
    }
  }
  const exporter = role.alone
    ? startMetrics(settings, metrics, transports)
    : undefined;
  const tickers = startTickers(hub, {
    intervalMs: settings.intervalMs,
    heartbeatMs: settings.heartbeatMs,
    clock,
    log,
    signal: draining.signal,
    shared: broker.shared ?? false,
    ticks: role.ticks,
  });
  const lag = new EventLoopLag(eventLoopLag);
  let stopping: Promise<void> | undefined;
  const shutdown = ({ graceMs = DEFAULT_GRACE_MS }: ShutdownOptions = {}) =>
    stopping ??= stopServer({
      transports,
      hub,
      tickers,
      draining,
      stopped,
      metrics: exporter,
      log,
    }, graceMs).finally(() => lag.stop());
  return {
    address: grpc.address,
    port: grpc.port,
    metricsPort: exporter?.port,
    httpPort: http?.port,
    metrics,
    hub,
    stats: () => Promise.resolve(snapshot(hub)),
    shutdown,
    [Symbol.asyncDispose]: () => shutdown(),
  };
}

/** What `hub` says of itself now. */
export function snapshot(hub: Hub<Uint8Array>): BusSnapshot {
  return { ...hub.stats, epoch: hub.epoch, seq: hub.seq, size: hub.size };
}
