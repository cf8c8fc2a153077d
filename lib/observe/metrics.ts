/**
 * Folder `lib/observe/`: what the server tells about itself: the metric
 * registry (here), the server's families (`server_metrics.ts`), the calls'
 * families as every transport reports them (`rpc_metrics.ts`), the process's
 * runtime (`runtime_metrics.ts`), the Prometheus endpoint
 * (`metrics_endpoint.ts` over `metrics_server.ts`) and the budgets of log
 * lines per peer (`peer_lines.ts`); over workers, one page summed from all
 * (`summed_metrics.ts`). It knows no transport: the endpoint is
 * handed its access check, and transports report through interfaces. May
 * import `lib/bus/` (the types of what it counts), `lib/wire/address.ts` and
 * the shared modules of `lib/`.
 *
 * Metrics in the Prometheus text exposition format (version 0.0.4):
 * counters, gauges and histograms, with labels, rendered on demand. Values
 * read from elsewhere (the hub's counters, process memory) are collected at
 * scrape time. What a hot path feeds (a message sent, a delivery's latency)
 * goes through a series handle: its label set is found and rendered once,
 * and each update is an add (a histogram's: a bucket search and two adds),
 * with nothing allocated.
 *
 * @module
 */

/** Label values of one series, by label name. */
export type Labels = Readonly<Record<string, string>>;

type Kind = "counter" | "gauge" | "histogram";

interface Family {
  name: string;
  help: string;
  kind: Kind;
  /** Appends the family's sample lines. */
  write(lines: string[]): void;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll(
    '"',
    '\\"',
  );
}

/** `k1="v1",k2="v2"`: a label set without its braces. */
function labelPairs(labels: Labels): string {
  return Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(",");
}

function renderLabels(labels: Labels): string {
  const pairs = labelPairs(labels);
  return pairs === "" ? "" : `{${pairs}}`;
}

/** A sample value as the text format writes it (`NaN`, `+Inf`, `-Inf`). */
export function renderValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/**
 * Finds a label set's series, rendering each set once: rendering (entries,
 * escapes, joins) cost ~4 us per increment, once per RPC and per leave. A
 * set is found again by a plain concatenation of its keys and values. As
 * many entries as series.
 */
class SeriesIndex<S> {
  #byPlain = new Map<string, S>();
  /** Series by their rendered label set (braces included, "" for none). */
  readonly rendered = new Map<string, S>();
  #make: (labels: Labels) => S;

  constructor(make: (labels: Labels) => S) {
    this.#make = make;
  }

  get(labels: Labels): S {
    let plain = "";
    for (const k in labels) plain += `${k}\0${labels[k]}\0`;
    let series = this.#byPlain.get(plain);
    if (series === undefined) {
      for (const k in labels) {
        if (!LABEL.test(k) || k === "le") {
          throw new RangeError(`Invalid label name "${k}"`);
        }
      }
      series = this.#make(labels);
      this.#byPlain.set(plain, series);
      this.rendered.set(renderLabels(labels), series);
    }
    return series;
  }
}

/** One counter series: only goes up. */
export interface CounterSeries {
  /** Adds `by` (default 1). */
  inc(by?: number): void;
  /** The count so far. */
  readonly value: number;
}

class CounterCell implements CounterSeries {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

/** A counter family; each label set is one series that only goes up. */
export interface Counter {
  /** Adds `by` (default 1) to the series of `labels`. */
  inc(labels?: Labels, by?: number): void;
  /**
   * The series of `labels`, shown at 0 from now on if it is new: a handle
   * for a hot path (no lookup per increment), and the way to show a known
   * label value before its first event.
   */
  series(labels?: Labels): CounterSeries;
}

/** One histogram series: observations counted by bucket, summed. */
export interface HistogramSeries {
  /** Counts `value` in its bucket and adds it to the sum. */
  observe(value: number): void;
}

/** A histogram family; each label set is one series of buckets. */
export interface Histogram {
  /** The series of `labels`, shown with empty buckets from now on if it is new. */
  series(labels?: Labels): HistogramSeries;
}

class HistogramCell implements HistogramSeries {
  readonly #bounds: Float64Array;
  /** Per bucket, not cumulative; the last is `+Inf`'s own. */
  readonly counts: Float64Array;
  sum = 0;

  constructor(bounds: Float64Array) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.#bounds;
    // A dozen or so bounds: a linear search is as quick as a binary one.
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
  }
}

/**
 * Prometheus' default buckets (client_golang's `DefBuckets`), in seconds:
 * what go-grpc-middleware's `grpc_server_handling_seconds` uses.
 */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/**
 * Upper bounds for the bus's latencies (publish to delivery, the engine's
 * acknowledgement), in seconds: 0.5 ms to 10 s. The bench measures a
 * delivery at 1-4 ms on one machine, tens of ms under a fan-out's full load.
 */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/**
 * A set of metric families, rendered together.
 *
 * @example
 * ```ts
 * import { Metrics } from "./metrics.ts";
 * const metrics = new Metrics();
 * const rpcs = metrics.counter("demo_rpcs_total", "RPCs handled.");
 * rpcs.inc({ method: "SayHello", code: "OK" });
 * const latency = metrics.histogram("demo_seconds", "Latency.", [0.1, 1]);
 * latency.series().observe(0.25);
 * metrics.render().includes('demo_rpcs_total{method="SayHello",code="OK"} 1'); // true
 * metrics.render().includes('demo_seconds_bucket{le="1"} 1'); // true
 * ```
 */
export class Metrics {
  #families = new Map<string, Family>();

  #add(family: Family): void {
    if (!NAME.test(family.name)) {
      throw new RangeError(`Invalid metric name "${family.name}"`);
    }
    if (this.#families.has(family.name)) {
      throw new RangeError(`Metric "${family.name}" is registered already`);
    }
    this.#families.set(family.name, family);
  }

  /** Registers a counter family (`name` should end in `_total`). */
  counter(name: string, help: string): Counter {
    const index = new SeriesIndex<CounterCell>(() => new CounterCell());
    this.#add({
      name,
      help,
      kind: "counter",
      write(lines) {
        for (const [labels, cell] of index.rendered) {
          lines.push(`${name}${labels} ${renderValue(cell.value)}`);
        }
      },
    });
    return {
      inc: (labels: Labels = {}, by = 1) => index.get(labels).inc(by),
      series: (labels: Labels = {}) => index.get(labels),
    };
  }

  /**
   * Registers a histogram family with the upper bounds `buckets` (sorted
   * ascending; `+Inf` is added). Each series renders as `NAME_bucket{le}`
   * (cumulative), `NAME_sum` and `NAME_count`.
   */
  histogram(
    name: string,
    help: string,
    buckets: readonly number[] = DEFAULT_BUCKETS,
  ): Histogram {
    if (
      buckets.length === 0 ||
      buckets.some((b, i) =>
        !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1])
      )
    ) {
      throw new RangeError(
        `Invalid buckets for "${name}": ${
          buckets.join(", ")
        }; give finite bounds in ascending order`,
      );
    }
    const bounds = Float64Array.from(buckets);
    const les = [...buckets.map((b) => `le="${renderValue(b)}"`), 'le="+Inf"'];
    /** Label pairs (no braces) by series, for the bucket lines. */
    const pairs = new Map<HistogramCell, string>();
    const index = new SeriesIndex<HistogramCell>((labels) => {
      const cell = new HistogramCell(bounds);
      pairs.set(cell, labelPairs(labels));
      return cell;
    });
    this.#add({
      name,
      help,
      kind: "histogram",
      write(lines) {
        for (const [labels, cell] of index.rendered) {
          const own = pairs.get(cell)!;
          const prefix = own === "" ? "{" : `{${own},`;
          let cumulative = 0;
          for (let i = 0; i < les.length; i++) {
            cumulative += cell.counts[i];
            lines.push(`${name}_bucket${prefix}${les[i]}} ${cumulative}`);
          }
          lines.push(`${name}_sum${labels} ${renderValue(cell.sum)}`);
          lines.push(`${name}_count${labels} ${cumulative}`);
        }
      },
    });
    return { series: (labels: Labels = {}) => index.get(labels) };
  }

  /** Registers a family whose series are read from `collect` at each render. */
  collected(
    name: string,
    help: string,
    kind: "counter" | "gauge",
    collect: () => Iterable<[Labels, number]>,
  ): void {
    this.#add({
      name,
      help,
      kind,
      write(lines) {
        for (const [labels, value] of collect()) {
          lines.push(`${name}${renderLabels(labels)} ${renderValue(value)}`);
        }
      },
    });
  }

  /** Every family in the text exposition format. */
  render(): string {
    const lines: string[] = [];
    for (const family of this.#families.values()) {
      lines.push(`# HELP ${family.name} ${family.help.replaceAll("\n", " ")}`);
      lines.push(`# TYPE ${family.name} ${family.kind}`);
      family.write(lines);
    }
    return lines.join("\n") + "\n";
  }
}
