/**
 * The greeter's own figures, read from its metrics pages
 * (`--metrics-port`) and summed over its processes; 0 where there is no
 * page (the servers it is compared with have none).
 *
 * @module
 */

/**
 * Several families of one reading of each process's metrics page (the
 * greeter's, at `metricsPorts`), each summed over its series (whatever
 * their labels) and over the processes; NaN each when a page did not
 * answer.
 *
 * @example
 * ```ts ignore
 * import { metrics } from "./metrics_page.ts";
 * const [subscribers, delivered] = await metrics(
 *   ["greeter_subscribers", "greeter_events_delivered_total"],
 *   [9090],
 * );
 * ```
 */
export async function metrics(
  names: string[],
  metricsPorts: number[],
): Promise<number[]> {
  const sums = names.map(() => 0);
  for (const port of metricsPorts) {
    let text: string;
    try {
      text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    } catch {
      // A server buried under its row may not answer within the page's
      // deadline: its figures are unknown, not the row's end.
      return names.map(() => NaN);
    }
    names.forEach((name, i) => {
      // Every series of the family (a process over workers labels some by
      // worker: their heaps).
      for (
        const [, value] of text.matchAll(
          new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"),
        )
      ) sums[i] += Number(value);
    });
  }
  return sums;
}

/**
 * One series of the greeter's metrics pages at `metricsPorts`, summed over
 * the processes.
 *
 * @example
 * ```ts ignore
 * import { metric } from "./metrics_page.ts";
 * const heap = await metric("deno_heap_used_bytes", [9090]);
 * ```
 */
export async function metric(
  name: string,
  metricsPorts: number[],
): Promise<number> {
  return (await metrics([name], metricsPorts))[0];
}

/** The greeter's event counters, and when they were read ({@linkcode counters}). */
export interface Counters {
  /** `performance.now()` when the pages answered. */
  at: number;
  published: number;
  written: number;
  dropped: number;
}

/**
 * The greeter's event counters on the pages at `metricsPorts`, and when
 * they were read (0s where there is no page).
 *
 * @example
 * ```ts ignore
 * import { counters } from "./metrics_page.ts";
 * const before = await counters([9090]);
 * ```
 */
export async function counters(metricsPorts: number[]): Promise<Counters> {
  const [published, written, dropped] = await metrics([
    "greeter_events_published_total",
    "greeter_events_delivered_total",
    "greeter_events_dropped_total",
  ], metricsPorts);
  // A busy server renders its page late, then answers at once: the time of
  // the answer is the time of the figures.
  const at = performance.now();
  return { at, published, written, dropped };
}
