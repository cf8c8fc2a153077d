/**
 * What a bench run found: figures as they come (to stderr, so that a run
 * that fails later still leaves them), then one table and one JSON line of
 * them all (to stdout).
 *
 * @module
 */

import type { WindowCosts } from "./resources.ts";

/** Delivery latencies, as a subscriber pool keeps them (ms). */
export interface Latencies {
  /** The latency below which the fraction `p` of events arrived. */
  percentile(p: number): number;
  /** The largest latency. */
  max(): number;
}

/** One row of the table. */
interface Row {
  name: string;
  value: string;
  note?: string;
}

/**
 * A figure as the table shows it: whole numbers with thousands separators
 * from 100 up, two decimals below.
 *
 * @example
 * ```ts
 * import { format } from "./report.ts";
 * console.log(format(12345.6), format(3.14159)); // 12,346 3.14
 * ```
 */
export const format = (n: number): string =>
  n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(2);

/**
 * The figures of one run, in the order they were found.
 *
 * @example
 * ```ts
 * import { Report } from "./report.ts";
 * const report = new Report();
 * report.figure("unary greeter req/s", 14_522, "req/s");
 * report.row("grpc-go", "skipped", "apt-get install golang-go");
 * report.print();
 * ```
 */
export class Report {
  #rows: Row[] = [];
  #json: Record<string, unknown> = {};

  /** Records `value` (in `unit`) as `name`, and prints it to stderr at once. */
  figure(name: string, value: number, unit: string, note?: string): void {
    this.#json[name] = value;
    this.#rows.push({ name, value: `${format(value)} ${unit}`, note });
    console.error(`${name}: ${format(value)} ${unit}`);
  }

  /** A row of the table that is not one figure: `skipped`, `failed`, a series. */
  row(name: string, value: string, note?: string): void {
    this.#rows.push({ name, value, note });
  }

  /** Records `value` in the JSON line alone (versions, series). */
  set(key: string, value: unknown): void {
    this.#json[key] = value;
  }

  /** Reports the latency's p50, p99 and max in `latencies`, as rows named after `label`. */
  latency(label: string, latencies: Latencies): void {
    this.figure(`${label} latency p50`, latencies.percentile(0.5), "ms");
    this.figure(`${label} latency p99`, latencies.percentile(0.99), "ms");
    this.figure(`${label} latency max`, latencies.max(), "ms");
  }

  /** Reports the server's, the generator's and the machine's CPU over a window, as rows named after `label`. */
  costs(label: string, costs: WindowCosts): void {
    this.figure(`${label} server CPU`, costs.serverCpu, "% of a core");
    this.figure(
      `${label} generator CPU`,
      costs.generatorCpu,
      "% of a core",
      "near 100%: the generator was the limit",
    );
    this.machine(label, costs);
  }

  /** Reports the machine's busy CPU over a window: near all its cores, the figures are CPU-bound. */
  machine(label: string, costs: WindowCosts): void {
    this.figure(
      `${label} machine CPU busy`,
      costs.machineCpu,
      "% of a core",
      `every process, ours and others', of ${navigator.hardwareConcurrency} cores`,
    );
  }

  /** Prints the table, then the JSON line, to stdout. */
  print(): void {
    const width = Math.max(...this.#rows.map((r) => r.name.length));
    const valueWidth = Math.max(...this.#rows.map((r) => r.value.length));
    for (const row of this.#rows) {
      console.log(
        `${row.name.padEnd(width)}  ${row.value.padStart(valueWidth)}${
          row.note ? `  (${row.note})` : ""
        }`,
      );
    }
    console.log("\n" + JSON.stringify(this.#json));
  }
}
