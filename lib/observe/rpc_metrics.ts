/**
 * The calls' families, as every transport reports them: the gRPC
 * ecosystem's server metrics, named and labelled exactly as
 * go-grpc-middleware's Prometheus provider names them (so that the common
 * gRPC dashboards work unchanged), and the greeter's own per transport.
 *
 * - `grpc_server_started_total{grpc_type,grpc_service,grpc_method}`
 * - `grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}`
 * - `grpc_server_msg_received_total{grpc_type,grpc_service,grpc_method}`
 * - `grpc_server_msg_sent_total{grpc_type,grpc_service,grpc_method}`
 * - `grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method}`, a
 *   histogram with Prometheus' default buckets
 * - `greeter_rpcs_total{transport,method,code}`
 * - `greeter_event_delivery_seconds{transport}`: from an event's publish
 *   time to its write to a subscriber
 *
 * `grpc_type` is `unary`, `client_stream`, `server_stream` or
 * `bidi_stream`; `grpc_code` is spelled as grpc-go's `codes.Code.String()`
 * (`OK`, `Canceled`, `DeadlineExceeded`…), `greeter_rpcs_total`'s `code` as
 * the gRPC specification and grpc-js do (`CANCELLED`, `DEADLINE_EXCEEDED`…).
 * No label takes a value a client chose: a method is counted only once
 * registered ({@linkcode RpcMetrics.register}), and then every series it
 * can have is shown at zero (as the Go provider's `InitializeMetrics` does),
 * so that `rate()` and error-ratio panels have data before the first error.
 *
 * A transport reports through a {@linkcode TransportRecorder}: the gRPC
 * adapter's call interceptor and writers today, an HTTP transport's
 * handlers beside it, each under its own `transport` label on the greeter's
 * families (the grpc-ecosystem families have none: their calls are one
 * service's, whatever carried them).
 *
 * @module
 */

import {
  type Counter,
  type CounterSeries,
  type Histogram,
  type HistogramSeries,
  LATENCY_BUCKETS,
  type Metrics,
} from "./metrics.ts";

/**
 * gRPC status codes by number, as grpc-go's `codes.Code.String()` spells
 * them: the `grpc_code` label of `grpc_server_handled_total`.
 */
export const GRPC_CODE_LABELS: readonly string[] = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

/** gRPC status codes by number, as the gRPC specification and grpc-js name them. */
export const STATUS_NAMES: readonly string[] = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

/** The `Unknown` code: where a code outside the known ones is counted. */
const UNKNOWN = 2;

/** What a method is, as a service definition says. */
export interface RpcMethodInfo {
  /** `/package.Service/Method`. */
  path: string;
  /** Whether the client sends a stream. */
  requestStream: boolean;
  /** Whether the server sends a stream. */
  responseStream: boolean;
}

/** One method's calls, as one transport reports them. */
export interface MethodRecorder {
  /** A call started (before its request was read, or refused). */
  started(): void;
  /** A request message was read. */
  received(): void;
  /** A reply message went to the transport: one add, for the fan-out's writers. */
  sent(): void;
  /**
   * The call ended with the gRPC status `code` (a number; one outside the
   * known codes counts as `Unknown`), `seconds` after it started.
   */
  handled(code: number, seconds: number): void;
}

/** What one transport reports into the calls' families. */
export interface TransportRecorder {
  /**
   * The recorder of the method at `path` (`/package.Service/Method`), or
   * `undefined` for a path no service registered: it is counted nowhere.
   * Looked up once per call.
   */
  method(path: string): MethodRecorder | undefined;
  /**
   * An event published at `time` (milliseconds since the Unix epoch) was
   * written to a subscriber now.
   */
  delivered(time: number): void;
}

/** `unary`, `client_stream`, `server_stream` or `bidi_stream`. */
function rpcType(method: RpcMethodInfo): string {
  if (method.requestStream) {
    return method.responseStream ? "bidi_stream" : "client_stream";
  }
  return method.responseStream ? "server_stream" : "unary";
}

/** `/a.B/C` as its service `a.B` and method `C`; undefined when it is not one. */
function splitPath(path: string): [string, string] | undefined {
  const slash = path.indexOf("/", 1);
  if (!path.startsWith("/") || slash < 2 || slash === path.length - 1) {
    return undefined;
  }
  return [path.slice(1, slash), path.slice(slash + 1)];
}

/** A registered method's series that every transport shares. */
interface MethodSeries {
  path: string;
  started: CounterSeries;
  received: CounterSeries;
  sent: CounterSeries;
  /** By status code number. */
  handled: CounterSeries[];
  seconds: HistogramSeries;
}

class MethodCalls implements MethodRecorder {
  readonly #shared: MethodSeries;
  /** `greeter_rpcs_total`, by status code number. */
  readonly #rpcs: CounterSeries[];

  constructor(shared: MethodSeries, rpcs: CounterSeries[]) {
    this.#shared = shared;
    this.#rpcs = rpcs;
  }

  started(): void {
    this.#shared.started.inc();
  }

  received(): void {
    this.#shared.received.inc();
  }

  sent(): void {
    this.#shared.sent.inc();
  }

  handled(code: number, seconds: number): void {
    const known = Number.isInteger(code) && code >= 0 &&
      code < STATUS_NAMES.length;
    const index = known ? code : UNKNOWN;
    this.#shared.handled[index].inc();
    this.#rpcs[index].inc();
    this.#shared.seconds.observe(seconds);
  }
}

/**
 * The calls' families over `metrics`: register the methods served, then
 * hand each transport its recorder.
 *
 * @example
 * ```ts
 * import { Metrics } from "./metrics.ts";
 * import { RpcMetrics } from "./rpc_metrics.ts";
 * const metrics = new Metrics();
 * const rpc = new RpcMetrics(metrics);
 * rpc.register([{ path: "/demo.Echo/Say", requestStream: false, responseStream: false }]);
 * const call = rpc.recorder("grpc").method("/demo.Echo/Say")!;
 * call.started();
 * call.handled(0, 0.002);
 * metrics.render().includes(
 *   'grpc_server_handled_total{grpc_type="unary",grpc_service="demo.Echo",grpc_method="Say",grpc_code="OK"} 1',
 * ); // true
 * ```
 */
export class RpcMetrics {
  #started: Counter;
  #handled: Counter;
  #received: Counter;
  #sent: Counter;
  #seconds: Histogram;
  #rpcs: Counter;
  #delivery: Histogram;
  /** Registered methods by path. */
  #methods = new Map<string, MethodSeries>();
  /** Each transport's recorders by path. */
  #transports = new Map<string, Map<string, MethodCalls>>();

  /** Registers the calls' families in `metrics`. */
  constructor(metrics: Metrics) {
    this.#started = metrics.counter(
      "grpc_server_started_total",
      "Total number of RPCs started on the server.",
    );
    this.#handled = metrics.counter(
      "grpc_server_handled_total",
      "Total number of RPCs completed on the server, regardless of success or failure.",
    );
    this.#received = metrics.counter(
      "grpc_server_msg_received_total",
      "Total number of RPC stream messages received on the server.",
    );
    this.#sent = metrics.counter(
      "grpc_server_msg_sent_total",
      "Total number of gRPC stream messages sent by the server.",
    );
    this.#seconds = metrics.histogram(
      "grpc_server_handling_seconds",
      "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
    );
    this.#rpcs = metrics.counter(
      "greeter_rpcs_total",
      "Calls handled, by transport, method and the status the client got.",
    );
    this.#delivery = metrics.histogram(
      "greeter_event_delivery_seconds",
      "Time from an event's publish to its write to a subscriber, in seconds (the event's time has whole milliseconds).",
      LATENCY_BUCKETS,
    );
  }

  /**
   * Counts calls of `methods` from now on, every one of their series shown
   * at zero (already registered paths are left as they are). A path that is
   * not `/package.Service/Method` is refused with a `RangeError`.
   */
  register(methods: Iterable<RpcMethodInfo>): void {
    for (const method of methods) {
      if (this.#methods.has(method.path)) continue;
      const split = splitPath(method.path);
      if (!split) {
        throw new RangeError(
          `Cannot count calls of "${method.path}": a method's path is /package.Service/Method`,
        );
      }
      const labels = {
        grpc_type: rpcType(method),
        grpc_service: split[0],
        grpc_method: split[1],
      };
      const series: MethodSeries = {
        path: method.path,
        started: this.#started.series(labels),
        received: this.#received.series(labels),
        sent: this.#sent.series(labels),
        seconds: this.#seconds.series(labels),
        handled: GRPC_CODE_LABELS.map((grpc_code) =>
          this.#handled.series({ ...labels, grpc_code })
        ),
      };
      this.#methods.set(method.path, series);
      for (const [transport, calls] of this.#transports) {
        calls.set(method.path, this.#calls(series, transport));
      }
    }
  }

  /** The recorder `transport` (`grpc`, …) reports its calls and deliveries through. */
  recorder(transport: string): TransportRecorder {
    let calls = this.#transports.get(transport);
    if (!calls) {
      calls = new Map();
      for (const series of this.#methods.values()) {
        calls.set(series.path, this.#calls(series, transport));
      }
      this.#transports.set(transport, calls);
    }
    const known = calls;
    const delivery = this.#delivery.series({ transport });
    return {
      method: (path) => known.get(path),
      delivered: (time) => {
        const ms = Date.now() - time;
        delivery.observe(ms > 0 ? ms / 1000 : 0);
      },
    };
  }

  #calls(series: MethodSeries, transport: string): MethodCalls {
    const rpcs = STATUS_NAMES.map((code) =>
      this.#rpcs.series({ transport, method: series.path, code })
    );
    return new MethodCalls(series, rpcs);
  }
}
