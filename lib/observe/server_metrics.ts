/**
 * The server's metric families: what the hub counts, the calls of every
 * transport (`rpc_metrics.ts`), each transport's connections, the event
 * stream's engine, and the process (`runtime_metrics.ts`); fed by the hub,
 * the transports and the broker, or read at scrape time.
 *
 * @module
 */

import type { Broker } from "../bus/broker.ts";
import type { Hub } from "../bus/hub.ts";
import { LEAVE_REASONS } from "../bus/hub_items.ts";
import { BUILD } from "../build.ts";
import {
  type Counter,
  type HistogramSeries,
  LATENCY_BUCKETS,
  Metrics,
} from "./metrics.ts";
import { RpcMetrics } from "./rpc_metrics.ts";
import { isolateMetrics, runtimeMetrics } from "./runtime_metrics.ts";

/** What `greeter_events_published_total` counts. */
export const PUBLISHED_HELP =
  "Events this instance published (Publish calls, its ticks and presence).";

/** What `greeter_events_received_total` counts. */
export const RECEIVED_HELP =
  "Events read from the event stream and fanned out (every instance's, with a shared stream).";

/** What a transport's listener tells of its connections. */
export interface ConnectionStats {
  /** Connections open now. */
  readonly connections: number;
  /** The most it admits now (lowered when descriptors run out). */
  readonly maxConnections: number;
  /** Connections closed at once because that cap was reached. */
  readonly refused: number;
}

/** The server's metric families, and what the server feeds itself. */
export interface ServerMetrics {
  /** Every family, for rendering. */
  metrics: Metrics;
  /** `greeter_subscriptions_ended_total{reason}`. */
  leaves: Counter;
  /** The calls' families: register the methods served, a recorder per transport. */
  rpc: RpcMetrics;
  /**
   * Shows `transport`'s connections (`greeter_connections`,
   * `greeter_connections_max`, `greeter_connections_refused_total`),
   * read from `stats` at each scrape.
   */
  connections(transport: string, stats: ConnectionStats): void;
  /** `deno_event_loop_lag_seconds`, for an `EventLoopLag` to sample while the server runs. */
  eventLoopLag: HistogramSeries;
}

/**
 * The server's metric families over `hub` (and `broker`'s engine, if it has
 * one).
 *
 * @example
 * ```ts
 * import { serverMetrics } from "./server_metrics.ts";
 * import { Hub } from "../bus/hub.ts";
 * import { MemoryBroker } from "../bus/broker.ts";
 * const { metrics, rpc } = serverMetrics(new Hub(new MemoryBroker<Uint8Array>()));
 * rpc.register([{ path: "/demo.Echo/Say", requestStream: false, responseStream: false }]);
 * rpc.recorder("grpc").method("/demo.Echo/Say")?.handled(0, 0.001);
 * metrics.render().includes("greeter_subscribers 0"); // true
 * ```
 */
export function serverMetrics(
  hub: Hub<Uint8Array>,
  broker?: Broker<Uint8Array>,
  { worker }: {
    /**
     * This server is worker `worker` of a process whose main thread renders
     * the process's families and the events received (each worker's hub
     * takes every event in): this one's are left out, and its isolate's
     * are labelled with it. What it published is its own, summed there.
     */
    worker?: number;
  } = {},
): ServerMetrics {
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
    PUBLISHED_HELP,
    (s) => s.published,
  );
  if (worker !== undefined) {
    metrics.collected(
      "greeter_worker_subscribers",
      "Live hub subscriptions of each worker: how the kernel spread the connections over them.",
      "gauge",
      () => [[{ worker: String(worker) }, hub.size]],
    );
  } else {
    stat("greeter_events_received_total", RECEIVED_HELP, (s) => s.received);
  }
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
  for (const reason of LEAVE_REASONS) leaves.series({ reason });
  const rpc = new RpcMetrics(metrics);
  const connections = connectionMetrics(metrics);
  if (broker?.engine) engineMetrics(metrics, broker);
  const eventLoopLag = worker === undefined
    ? runtimeMetrics(metrics, BUILD)
    : isolateMetrics(metrics, { worker: String(worker) });
  return { metrics, leaves, rpc, connections, eventLoopLag };
}

/** The connection families, over the transports' stats as they register. */
function connectionMetrics(
  metrics: Metrics,
): ServerMetrics["connections"] {
  const transports = new Map<string, ConnectionStats>();
  const read = (
    name: string,
    help: string,
    type: "gauge" | "counter",
    value: (stats: ConnectionStats) => number,
  ) =>
    metrics.collected(
      name,
      help,
      type,
      () =>
        [...transports].map(([transport, stats]) => [
          { transport },
          value(stats),
        ]),
    );
  read(
    "greeter_connections",
    "Connections open, by transport.",
    "gauge",
    (s) => s.connections,
  );
  read(
    "greeter_connections_max",
    "Most connections admitted now, by transport: --max-connections, lowered while file descriptors ran out.",
    "gauge",
    (s) => s.maxConnections,
  );
  read(
    "greeter_connections_refused_total",
    "Connections closed at once because the most admitted were open, by transport.",
    "counter",
    (s) => s.refused,
  );
  return (transport, stats) => void transports.set(transport, stats);
}

/**
 * A shared log's families: reachable, lag, reconnects, publish latency.
 *
 * @example
 * ```ts ignore
 * engineMetrics(metrics, broker); // a JetStream broker's
 * ```
 */
export function engineMetrics(
  metrics: Metrics,
  broker: Broker<Uint8Array>,
): void {
  const read = (
    name: string,
    help: string,
    type: "gauge" | "counter",
    value: (e: NonNullable<Broker<Uint8Array>["engine"]>) => number,
  ) => metrics.collected(name, help, type, () => [[{}, value(broker.engine!)]]);
  read(
    "greeter_broker_up",
    "1 while the event stream's engine is reachable.",
    "gauge",
    (e) => e.up ? 1 : 0,
  );
  read(
    "greeter_broker_lag_events",
    "Events in the stream this instance has not read yet.",
    "gauge",
    (e) => e.lag,
  );
  read(
    "greeter_broker_reconnects_total",
    "Times the connection to the engine was regained.",
    "counter",
    (e) => e.reconnects,
  );
  read(
    "greeter_broker_publishes_total",
    "Publishes the engine acknowledged.",
    "counter",
    (e) => e.published,
  );
  // What came through the engine from elsewhere and was refused.
  const byReason = (
    name: string,
    help: string,
    counts: (
      e: NonNullable<Broker<Uint8Array>["engine"]>,
    ) => Readonly<Record<string, number>>,
  ) =>
    metrics.collected(
      name,
      help,
      "counter",
      () =>
        Object.entries(counts(broker.engine!)).map(([reason, n]) => [
          { reason },
          n,
        ]),
    );
  byReason(
    "greeter_broker_events_rejected_total",
    "Events read from the stream and refused (over this instance's limits, a topic Publish refuses, a malformed $presence...), by reason: their subscribers got a gap.",
    (e) => e.rejectedEvents,
  );
  byReason(
    "greeter_broker_directory_answers_refused_total",
    "Other instances' listing answers left out as unusable, by reason (anyone who may publish on the directory subject can answer).",
    (e) => e.refusedAnswers,
  );
  const acknowledged = metrics.histogram(
    "greeter_broker_publish_seconds",
    "Time from a publish to the engine's acknowledgement, in seconds.",
    LATENCY_BUCKETS,
  ).series();
  broker.onAcknowledged?.((seconds) => acknowledged.observe(seconds));
}
