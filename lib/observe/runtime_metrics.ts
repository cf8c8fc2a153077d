/**
 * The process's own families: CPU, memory, start time, the event loop's
 * lag, and what this build is.
 *
 * - `process_cpu_seconds_total`, `process_resident_memory_bytes`,
 *   `process_start_time_seconds`: Prometheus' standard process metrics.
 * - `deno_heap_used_bytes`, `deno_heap_total_bytes`: the V8 heap (of each
 *   isolate: a process over workers labels each `worker`).
 * - `deno_event_loop_lag_seconds`: a histogram of how late a timer fires
 *   (sampled every 200 ms by one timer, not by a busy probe): the saturation
 *   signal of a JavaScript server, whose one thread serves every call.
 * - `greeter_build_info{version,deno,grpc_js}`: 1.
 *
 * Not here: `process_open_fds` and `process_max_fds`. Deno 2.9.3 refuses
 * every path under `/proc/self` (and `/proc/PID`) to any permission short of
 * `--allow-all`, so no least-privileged process can read its descriptors or
 * its limit; the gRPC listener's own connection counts and cap stand for
 * them (`server_metrics.ts`).
 *
 * @module
 */

import process from "node:process";
import type { Build } from "../build.ts";
import {
  type HistogramSeries,
  type Labels,
  LATENCY_BUCKETS,
  type Metrics,
} from "./metrics.ts";

/** Milliseconds between two looks at the event loop's lag. */
export const LAG_SAMPLE_MS = 200;

/**
 * Upper bounds of `deno_event_loop_lag_seconds`: the bus's latency bounds
 * from 1 ms (a lag is sampled every {@linkcode LAG_SAMPLE_MS}) to 10 s.
 */
export const LAG_BUCKETS: readonly number[] = LATENCY_BUCKETS.filter((bound) =>
  bound >= 0.001
);

/**
 * Samples the event loop's lag: a timer set every `intervalMs` observes how
 * late it fired, in seconds, into `series`. Its timer does not keep the
 * process alive; `stop()` clears it.
 *
 * @example
 * ```ts ignore
 * const lag = new EventLoopLag(histogram.series());
 * lag.stop();
 * ```
 */
export class EventLoopLag {
  #series: HistogramSeries;
  #intervalMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #due = 0;

  /** Starts sampling into `series`. */
  constructor(series: HistogramSeries, intervalMs = LAG_SAMPLE_MS) {
    this.#series = series;
    this.#intervalMs = intervalMs;
    this.#schedule();
  }

  #schedule(): void {
    this.#due = performance.now() + this.#intervalMs;
    const timer = setTimeout(this.#fire, this.#intervalMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #fire = (): void => {
    const late = performance.now() - this.#due;
    this.#series.observe(late > 0 ? late / 1000 : 0);
    this.#schedule();
  };

  /** Stops sampling. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * Registers the process's families in `metrics`, `build` as
 * `greeter_build_info`; returns the event loop's lag series, for an
 * {@linkcode EventLoopLag} to sample while the server runs.
 *
 * @example
 * ```ts ignore
 * const lag = new EventLoopLag(runtimeMetrics(metrics, BUILD));
 * lag.stop(); // at shutdown
 * ```
 */
export function runtimeMetrics(
  metrics: Metrics,
  build: Build,
): HistogramSeries {
  processMetrics(metrics, build);
  return isolateMetrics(metrics);
}

/**
 * The families of the whole process (CPU, resident memory, start time,
 * the build): one set per process, however many workers it has.
 *
 * @example
 * ```ts
 * import { processMetrics } from "./runtime_metrics.ts";
 * import { Metrics } from "./metrics.ts";
 * import { BUILD } from "../build.ts";
 * const metrics = new Metrics();
 * processMetrics(metrics, BUILD);
 * metrics.render().includes("process_resident_memory_bytes"); // true
 * ```
 */
export function processMetrics(metrics: Metrics, build: Build): void {
  metrics.collected(
    "process_cpu_seconds_total",
    "Total user and system CPU time spent in seconds.",
    "counter",
    () => {
      const { user, system } = process.cpuUsage();
      return [[{}, (user + system) / 1e6]];
    },
  );
  metrics.collected(
    "process_resident_memory_bytes",
    "Resident memory size in bytes.",
    "gauge",
    () => [[{}, Deno.memoryUsage().rss]],
  );
  const started = performance.timeOrigin / 1000;
  metrics.collected(
    "process_start_time_seconds",
    "Start time of the process since the Unix epoch, in seconds.",
    "gauge",
    () => [[{}, started]],
  );
  metrics.collected(
    "greeter_build_info",
    "The greeter's version, and the Deno and grpc-js it runs on: always 1.",
    "gauge",
    () => [[{
      version: build.version,
      deno: build.deno,
      grpc_js: build.grpcJs,
    }, 1]],
  );
}

/**
 * The families of this isolate (its V8 heap, its event loop's lag), with
 * `labels` (a process's workers and its main thread each have theirs:
 * `{ worker }`); returns the lag series, for an {@linkcode EventLoopLag}.
 *
 * @example
 * ```ts
 * import { isolateMetrics } from "./runtime_metrics.ts";
 * import { Metrics } from "./metrics.ts";
 * const metrics = new Metrics();
 * isolateMetrics(metrics, { worker: "0" });
 * metrics.render().includes('deno_heap_used_bytes{worker="0"}'); // true
 * ```
 */
export function isolateMetrics(
  metrics: Metrics,
  labels: Labels = {},
): HistogramSeries {
  metrics.collected(
    "deno_heap_used_bytes",
    "V8 heap in use, in bytes (the rest of the resident memory is native: buffers, the runtime).",
    "gauge",
    () => [[labels, Deno.memoryUsage().heapUsed]],
  );
  metrics.collected(
    "deno_heap_total_bytes",
    "V8 heap reserved, in bytes.",
    "gauge",
    () => [[labels, Deno.memoryUsage().heapTotal]],
  );
  const lag = metrics.histogram(
    "deno_event_loop_lag_seconds",
    `How late a timer fired, sampled every ${LAG_SAMPLE_MS} ms, in seconds: the event loop was busy that long.`,
    LAG_BUCKETS,
  );
  return lag.series(labels);
}
