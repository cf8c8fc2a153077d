/**
 * One `/metrics` for a process whose servers run in several workers: the
 * main thread's exposition (the process's families: CPU, memory, the
 * engine, the events published, the workers themselves) and each worker's
 * (its calls, subscribers, connections) are summed series by series (same
 * name, same labels: a family one isolate alone holds, or labelled by
 * `worker`, is kept as is). A worker that dies leaves what it had counted
 * (counters, histograms, summaries: as last read) to the sums, so that
 * they never go back; its gauges leave with it.
 *
 * @module
 */

import { renderValue } from "./metrics.ts";

/** One family of an exposition: its header lines and its samples by series. */
interface Family {
  /** `# HELP` and `# TYPE` lines, as read. */
  header: string[];
  /** What `# TYPE` says (`untyped` when nothing does). */
  type: string;
  /** Sample values by series (the line less its value). */
  samples: Map<string, number>;
}

/** Families whose samples only go up while their source lives. */
const CUMULATIVE = new Set(["counter", "histogram", "summary"]);

/**
 * Reads an exposition (Prometheus text format 0.0.4) into families, in
 * their order. A sample names its family by the `# TYPE` line before it
 * (histograms' `_bucket`, `_sum`, `_count` go with theirs).
 */
function parse(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  let current: Family | undefined;
  let currentName = "";
  const family = (name: string) => {
    let found = families.get(name);
    if (!found) {
      found = { header: [], type: "untyped", samples: new Map() };
      families.set(name, found);
    }
    return found;
  };
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("# ")) {
      const [, kind, name, rest] = line.match(/^# (HELP|TYPE) (\S+) ?(.*)$/) ??
        [];
      if (!name) continue;
      current = family(name);
      currentName = name;
      current.header.push(line);
      if (kind === "TYPE") current.type = rest;
      continue;
    }
    const space = line.lastIndexOf(" ");
    const series = line.slice(0, space);
    const value = Number(line.slice(space + 1));
    const name = series.match(/^[^{ ]+/)?.[0] ?? series;
    const owner = current &&
        (name === currentName || name.startsWith(currentName + "_"))
      ? current
      : family(name);
    owner.samples.set(series, (owner.samples.get(series) ?? 0) + value);
  }
  return families;
}

/**
 * Sums the expositions of a process's main thread and its workers.
 *
 * @example
 * ```ts
 * import { SummedMetrics } from "./summed_metrics.ts";
 * const summed = new SummedMetrics();
 * summed.render("# TYPE up gauge\nup 1\n", new Map([
 *   [0, "# TYPE calls_total counter\ncalls_total 2\n"],
 *   [1, "# TYPE calls_total counter\ncalls_total 3\n"],
 * ]));
 * // "# TYPE up gauge\nup 1\n# TYPE calls_total counter\ncalls_total 5\n"
 * ```
 */
export class SummedMetrics {
  #ceilings: ReadonlyMap<string, number>;
  /** Each worker's exposition as last read, by worker. */
  #last = new Map<number, string>();
  /** What workers gone had counted, as last read. */
  #retired = new Map<string, Family>();

  /**
   * Sums under `ceilings`: a family named there is a limit of the process
   * (the workers' own shares of it, each up to it, sum to more): its sums
   * stop at that value.
   */
  constructor(ceilings: ReadonlyMap<string, number> = new Map()) {
    this.#ceilings = ceilings;
  }

  /**
   * The process's exposition: `own` (the main thread's families) and
   * `workers` (their expositions now, by worker) summed series by series,
   * with what workers gone had counted.
   */
  render(own: string, workers: ReadonlyMap<number, string>): string {
    for (const [index, text] of workers) this.#last.set(index, text);
    const summed = new Map<string, Family>();
    const add = (name: string, family: Family) => {
      let into = summed.get(name);
      if (!into) {
        into = { header: family.header, type: family.type, samples: new Map() };
        summed.set(name, into);
      }
      for (const [series, value] of family.samples) {
        into.samples.set(series, (into.samples.get(series) ?? 0) + value);
      }
    };
    for (const text of [own, ...workers.values()]) {
      for (const [name, family] of parse(text)) add(name, family);
    }
    for (const [name, family] of this.#retired) add(name, family);
    let text = "";
    for (const [name, family] of summed) {
      const ceiling = this.#ceilings.get(name) ?? Infinity;
      text += family.header.join("\n") + "\n";
      for (const [series, value] of family.samples) {
        text += `${series} ${renderValue(Math.min(value, ceiling))}\n`;
      }
    }
    return text;
  }

  /** Worker `index` is gone: what it had counted (as last read) stays in the sums. */
  retire(index: number): void {
    const text = this.#last.get(index);
    this.#last.delete(index);
    if (text === undefined) return;
    for (const [name, family] of parse(text)) {
      if (!CUMULATIVE.has(family.type)) continue;
      let into = this.#retired.get(name);
      if (!into) {
        into = { header: family.header, type: family.type, samples: new Map() };
        this.#retired.set(name, into);
      }
      for (const [series, value] of family.samples) {
        into.samples.set(series, (into.samples.get(series) ?? 0) + value);
      }
    }
  }
}
