/**
 * The server's metric families: what the hub counts, calls by method and
 * status, the process's memory; fed by the hub and by the call interceptor.
 *
 * @module
 */

import type { Broker } from "../bus/broker.ts";
import type { Hub } from "../bus/hub.ts";
import { type Counter, Metrics } from "./metrics.ts";

/** The server's metric families, and the counters the server feeds itself. */
export interface ServerMetrics {
  /** Every family, for rendering. */
  metrics: Metrics;
  /** `greeter_subscriptions_ended_total{reason}`. */
  leaves: Counter;
  /** `greeter_rpcs_total{method,code}`. */
  rpcs: Counter;
}

/**
 * The server's metric families over `hub`.
 *
 * @example
 * ```ts
 * import { serverMetrics } from "./server_metrics.ts";
 * import { Hub } from "../bus/hub.ts";
 * import { MemoryBroker } from "../bus/broker.ts";
 * const { metrics, rpcs } = serverMetrics(new Hub(new MemoryBroker<Uint8Array>()));
 * rpcs.inc({ method: "/helloworld.Greeter/SayHello", code: "OK" });
 * metrics.render().includes("greeter_subscribers 0"); // true
 * ```
 */
export function serverMetrics(
  hub: Hub<Uint8Array>,
  broker?: Broker<Uint8Array>,
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
  if (broker?.engine) engineMetrics(metrics, broker);
  processMetrics(metrics);
  return { metrics, leaves, rpcs };
}

/** A shared log's families: reachable, lag, reconnects, publish latency. */
function engineMetrics(metrics: Metrics, broker: Broker<Uint8Array>): void {
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
  read(
    "greeter_broker_publish_seconds_total",
    "Summed acknowledgement times (divided by publishes: mean publish latency).",
    "counter",
    (e) => e.publishSeconds,
  );
}

/** The process's own families: memory and start time. */
function processMetrics(metrics: Metrics): void {
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
}
