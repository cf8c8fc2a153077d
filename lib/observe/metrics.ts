/**
 * Folder `lib/observe/`: what the server tells about itself: the metric
 * registry (here), the server's families (`server_metrics.ts`), the
 * Prometheus endpoint (`metrics_endpoint.ts` over `metrics_server.ts`) and
 * the budgets of log lines per peer (`peer_lines.ts`). It knows no transport:
 * the endpoint is handed its access check. May import `lib/bus/` (the types
 * of what it counts), `lib/wire/address.ts` and the shared modules of
 * `lib/`.
 *
 * Metrics in the Prometheus text exposition format (version 0.0.4): counters
 * and gauges, with labels, rendered on demand. Values read from elsewhere
 * (the hub's counters, process memory) are collected at scrape time.
 *
 * @module
 */

/** Label values of one series, by label name. */
export type Labels = Readonly<Record<string, string>>;

type Kind = "counter" | "gauge";

interface Family {
  name: string;
  help: string;
  kind: Kind;
  /** Series by their rendered label set. */
  series: Map<string, number>;
  /** When set, the series are read from here at each render. */
  collect?: () => Iterable<[Labels, number]>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function renderLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  return `{${
    entries.map(([k, v]) =>
      `${k}="${
        v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll(
          '"',
          '\\"',
        )
      }"`
    ).join(",")
  }}`;
}

function renderValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** A counter family; each label set is one series that only goes up. */
export interface Counter {
  /** Adds `by` (default 1) to the series of `labels`. */
  inc(labels?: Labels, by?: number): void;
}

/**
 * A set of metric families, rendered together.
 *
 * @example
 * ```ts
 * import { Metrics } from "./metrics.ts";
 * const metrics = new Metrics();
 * const rpcs = metrics.counter("demo_rpcs_total", "RPCs handled.");
 * rpcs.inc({ method: "SayHello", code: "OK" });
 * metrics.render().includes('demo_rpcs_total{method="SayHello",code="OK"} 1'); // true
 * ```
 */
export class Metrics {
  #families = new Map<string, Family>();

  #add(family: Family): Family {
    if (!NAME.test(family.name)) {
      throw new RangeError(`Invalid metric name "${family.name}"`);
    }
    if (this.#families.has(family.name)) {
      throw new RangeError(`Metric "${family.name}" is registered already`);
    }
    this.#families.set(family.name, family);
    return family;
  }

  /** Registers a counter family (`name` should end in `_total`). */
  counter(name: string, help: string): Counter {
    const family = this.#add({
      name,
      help,
      kind: "counter",
      series: new Map(),
    });
    // Rendering a label set (entries, escapes, joins) cost ~4 us per
    // increment, once per RPC and per leave: each set is rendered once, and
    // found again by a plain concatenation of its keys and values. As many
    // entries as series.
    const rendered = new Map<string, string>();
    return {
      inc(labels: Labels = {}, by = 1) {
        let plain = "";
        for (const k in labels) plain += `${k}\0${labels[k]}\0`;
        let key = rendered.get(plain);
        if (key === undefined) {
          key = renderLabels(labels);
          rendered.set(plain, key);
        }
        family.series.set(key, (family.series.get(key) ?? 0) + by);
      },
    };
  }

  /** Registers a family whose series are read from `collect` at each render. */
  collected(
    name: string,
    help: string,
    kind: Kind,
    collect: () => Iterable<[Labels, number]>,
  ): void {
    this.#add({ name, help, kind, series: new Map(), collect });
  }

  /** Every family in the text exposition format. */
  render(): string {
    const lines: string[] = [];
    for (const family of this.#families.values()) {
      lines.push(`# HELP ${family.name} ${family.help.replaceAll("\n", " ")}`);
      lines.push(`# TYPE ${family.name} ${family.kind}`);
      const series = family.collect
        ? [...family.collect()].map(([labels, value]) =>
          [renderLabels(labels), value] as const
        )
        : family.series.entries();
      for (const [labels, value] of series) {
        lines.push(`${family.name}${labels} ${renderValue(value)}`);
      }
    }
    return lines.join("\n") + "\n";
  }
}
