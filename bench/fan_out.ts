/**
 * How the bench measures a fan-out: subscribe a pool, warm it up, measure
 * one window of `BENCH_SECONDS` (what was published inside it and delivered
 * in time, latency, the servers' counters and CPU), wait until the servers
 * are quiet again; and a row that measures the greeter, then each server it
 * is compared with, and reports same-run ratios.
 *
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";
import type { Bench } from "./bench.ts";
import { counters } from "./metrics_page.ts";
import type { FanOutPeer, PeerStarter } from "./peers.ts";
import { SubscriberPool } from "./pool.ts";
import { format, type Latencies, type Report } from "./report.ts";
import { cpuOf, measureCosts } from "./resources.ts";
import { connectionsFor, SECONDS, WARM_UP_MS } from "./settings.ts";

/**
 * The subscribers of a fan-out, as {@linkcode measureFanOut} reads them:
 * {@linkcode SubscriberPool} over gRPC; another transport's pool has the
 * same face.
 */
export interface FanOutPool extends Latencies {
  /** Events received so far. */
  readonly events: number;
  /** Events received that were published inside the open window. */
  readonly windowEvents: number;
  /** The latest publish time received, ms since the Unix epoch. */
  readonly latestTime: number;
  /** Counts {@linkcode FanOutPool.windowEvents} from zero, for events published from `fromMs` on. */
  openWindow(fromMs: number): void;
  /** Events published from `toMs` on no longer count. */
  closeWindow(toMs: number): void;
  /** Forgets the latencies so far. */
  resetLatency(): void;
}

/** What {@linkcode subscribeAll} opens. */
export interface SubscribeAllOptions {
  /** The server, `host:port`. */
  target: string;
  /** `Subscribe` calls to open, {@linkcode PER_CONNECTION} per connection. */
  subscribers: number;
  /** Names the subscribe-rate row. */
  label: string;
  /** Connections to spread them over. Default: the bench's shape (`connectionsFor`). */
  connections?: number;
}

/**
 * Opens `subscribers` `Subscribe` calls on topic `bench`; reports the
 * subscribe rate; returns the pool (close it).
 *
 * @example
 * ```ts ignore
 * import { subscribeAll } from "./fan_out.ts";
 * import { Report } from "./report.ts";
 * const pool = await subscribeAll(new Report(), {
 *   target: "127.0.0.1:50051",
 *   subscribers: 1000,
 *   label: "greeter",
 * });
 * pool.close();
 * ```
 */
export async function subscribeAll(
  report: Report,
  { target, subscribers, label, connections }: SubscribeAllOptions,
): Promise<SubscriberPool> {
  const pool = new SubscriberPool(target, {
    subscribers,
    connections: connections ?? connectionsFor(subscribers),
    method: "Subscribe",
  });
  const start = performance.now();
  try {
    await pool.start();
  } catch (error) {
    pool.close(); // its connections must not weigh on what runs next
    throw error;
  }
  report.figure(
    `${label} subscribe rate (${
      subscribers.toLocaleString("en-US")
    } until all live)`,
    subscribers / ((performance.now() - start) / 1000),
    "subs/s",
  );
  return pool;
}

/**
 * Waits until `pool` has stopped receiving events published inside its
 * window, which ended at `endMs` (ms since the Unix epoch): once an event
 * published after it has arrived, and no event of the window for 1 s; at
 * most one more window (`BENCH_SECONDS`). An event later than that does
 * not count: a server that queues without bound must not score by
 * delivering its window a minute late.
 */
async function settle(pool: FanOutPool, endMs: number): Promise<void> {
  const deadline = performance.now() + SECONDS * 1000;
  let seen = -1;
  while (
    (pool.windowEvents !== seen || pool.latestTime < endMs) &&
    performance.now() < deadline
  ) {
    seen = pool.windowEvents;
    await delay(1000);
  }
}

/** One window {@linkcode measureFanOut} measures. */
export interface FanOutWindow {
  /** The subscribers, subscribed. */
  pool: FanOutPool;
  /** The servers that feed them. */
  peer: Pick<FanOutPeer, "pids" | "metricsPorts">;
  /** Names the rows. */
  name: string;
  /** What was offered, for the delivered row's note: `100000 offered`. */
  offered: string;
}

/** What {@linkcode measureFanOut} found, per second. */
export interface FanOutRates {
  /** Events published in the window and delivered in time (the client's count). */
  delivered: number;
  /**
   * Events that arrived during the window, a backlog from before it
   * included (the client's count): what the servers' CPU over the same
   * window wrote, however late.
   */
  received: number;
  /** Messages the servers handed to the transport (their count; NaN without metrics). */
  written: number;
  /** The servers' CPU, % of a core. */
  serverCpu: number;
  /** The first server process's main thread alone, % of a core. */
  mainThreadCpu: number;
}

/**
 * Lets the pool warm up, then measures one window of `BENCH_SECONDS`:
 * reports what was delivered of what was published inside the window (and
 * published, written and dropped, from the greeter's metrics, summed over
 * its processes), the latency and the CPU of the servers.
 *
 * @example
 * ```ts ignore
 * import { measureFanOut, subscribeAll } from "./fan_out.ts";
 * import { Report } from "./report.ts";
 * const report = new Report();
 * const pool = await subscribeAll(report, {
 *   target: "127.0.0.1:50051",
 *   subscribers: 1000,
 *   label: "greeter",
 * });
 * const { delivered } = await measureFanOut(report, {
 *   pool,
 *   peer: { pids: [1234], metricsPorts: [9090] },
 *   name: "greeter broadcast 1,000",
 *   offered: "100000 offered",
 * });
 * pool.close();
 * ```
 */
export async function measureFanOut(
  report: Report,
  { pool, peer: { pids, metricsPorts = [] }, name, offered }: FanOutWindow,
): Promise<FanOutRates> {
  await delay(WARM_UP_MS);
  pool.resetLatency();
  const countersBefore = await counters(metricsPorts);
  // After the metrics page answered: under overload it answers seconds
  // late, and what arrived meanwhile is not the window's.
  const before = pool.events;
  const done = measureCosts(pids);
  pool.openWindow(Date.now());
  await delay(SECONDS * 1000);
  const end = Date.now();
  pool.closeWindow(end);
  const grace = performance.now();
  const costs = done();
  const received = (pool.events - before) / costs.wall;
  report.latency(name, pool); // over the window alone
  const countersAfter = await counters(metricsPorts);
  // What was published inside the window, whenever it arrives: a backlog
  // from before the window must not count (it once read 853k/s of 500k/s).
  await settle(pool, end);
  const delivered = pool.windowEvents / costs.wall;
  report.figure(
    `${name}: delivered`,
    delivered,
    "events/s",
    `${offered}; published in the window, arrived within ${
      ((performance.now() - grace) / 1000).toFixed(1)
    } s after it; ${format(received)}/s arrived in it, backlog included`,
  );
  let written = NaN;
  if (metricsPorts.length > 0) {
    // The server's own counters, over the time between the two readings.
    const rate = (key: "published" | "written" | "dropped") =>
      (countersAfter[key] - countersBefore[key]) /
      ((countersAfter.at - countersBefore.at) / 1000);
    report.figure(
      `${name}: published`,
      rate("published"),
      "events/s",
      `what the server took in (the tick counts too)${
        metricsPorts.length > 1
          ? "; summed over the processes, each takes in every event"
          : ""
      }`,
    );
    written = rate("written");
    report.figure(
      `${name}: written`,
      written,
      "msg/s",
      "what the server handed to the transport",
    );
    report.figure(
      `${name}: dropped`,
      rate("dropped"),
      "events/s",
      "slow-consumer drops",
    );
  }
  report.costs(name, costs);
  return {
    delivered,
    received,
    written,
    serverCpu: costs.serverCpu,
    mainThreadCpu: costs.mainThreadCpu,
  };
}

/**
 * Waits until the processes `pids` use less than 10% of a core (over 500
 * ms; at most 30 s): a server that queued without bound keeps writing to
 * closed streams, and would take its CPU from the next row's server. One
 * still busy is reported as a row named after `label`.
 *
 * @example
 * ```ts ignore
 * import { quiesce } from "./fan_out.ts";
 * import { Report } from "./report.ts";
 * await quiesce(new Report(), { pids: [1234], label: "greeter broadcast 1,000" });
 * ```
 */
export async function quiesce(
  report: Report,
  { pids, label }: { pids: number[]; label: string },
): Promise<void> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    const before = cpuOf(pids);
    await delay(500);
    const busy = (cpuOf(pids) - before) / 0.5;
    if (busy < 0.1) return;
    if (performance.now() >= deadline) {
      report.row(
        `${label}: still busy after its row`,
        `${Math.round(busy * 100)} % of a core`,
        "30 s after its subscribers left (a fresh peer is stopped here)",
      );
      return;
    }
  }
}

/** One row of {@linkcode fanOutRow}. */
export interface FanOutRow {
  /** The row's name, without a server's label: `broadcast 1,000`. */
  name: string;
  /**
   * The servers measured, in order; the first is the one the others are
   * compared with (the greeter), its delivered rate over each other's.
   */
  contenders: PeerStarter<FanOutPeer>[];
  /** Measures one running server; returns its delivered rate. */
  run(peer: FanOutPeer): Promise<number>;
}

/**
 * One fan-out row: measures a fresh process of each contender, alone (it
 * is stopped before the next starts: a naive server buried by its row
 * kept writing to closed streams at 100% of a core for 30 s and more),
 * then reports the first's delivered rate against each other's, same run.
 * A contender that fails is reported as failed, with the greeters that
 * died, and the others still run.
 *
 * @example
 * ```ts ignore
 * import { Bench, greeterPeer } from "./bench.ts";
 * import { fanOutRow } from "./fan_out.ts";
 * import { running } from "./peers.ts";
 * await using bench = new Bench();
 * const greeter = await bench.spawnGreeter(["--interval", "10"]);
 * await using _ = greeter.process;
 * await fanOutRow(bench, {
 *   name: "tick fan-out 1,000 over 10 connections",
 *   contenders: [running(greeterPeer(greeter)), ...await bench.peers()],
 *   run: () => Promise.resolve(0), // measure `peer` here
 * });
 * ```
 */
export async function fanOutRow(
  bench: Bench,
  { name, contenders, run }: FanOutRow,
): Promise<void> {
  const { report } = bench;
  const delivered = new Map<string, number>();
  for (const starter of contenders) {
    try {
      await using stack = new AsyncDisposableStack();
      const peer = await starter.start(stack);
      delivered.set(peer.label, await run(peer));
    } catch (error) {
      report.row(
        `${starter.label} ${name}`,
        "failed",
        String(error).split("\n")[0],
      );
      console.error(`${starter.label} ${name} failed:`, error);
      for (const died of await bench.diedOnTheirOwn()) console.error(died);
    }
  }
  const reference = contenders[0]?.label;
  const ours = delivered.get(reference);
  if (ours === undefined) return;
  for (const [label, theirs] of delivered) {
    if (label === reference) continue;
    if (theirs === 0) {
      report.row(
        `${name}: ${reference} / ${label}`,
        "n/a",
        `${label} delivered none of the window's events in time`,
      );
      continue;
    }
    report.figure(
      `${name}: ${reference} / ${label}`,
      ours / theirs,
      "x",
      "delivered, same run",
    );
  }
}
